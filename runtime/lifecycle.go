package runtime

import (
	"strings"
	"time"

	"github.com/sirupsen/logrus"
)

// State is a container's lifecycle state. Orders are checked against it
// before the runtime is run, so an impossible order gets a clear EBUSY
// instead of a runtime error.
type State string

const (
	Created State = "created"
	Running State = "running"
	Paused  State = "paused"
	Stopped State = "stopped"

	// deleted is the last state: the container is gone and its id may name
	// a new one. The files know the four states above only; through a
	// handle kept open, a deleted container reads as stopped (see State).
	deleted State = "deleted"
	// none is the state of a container being made, before its create (or
	// its load) settles it.
	none State = ""
	// asFound, as a step's target, is the state a load found on disk.
	asFound State = "as found"
)

// live are the states a container is in between its create and its exit.
var live = []State{Created, Running, Paused}

// Order is something a user asks of a container.
type Order string

const (
	OrderStart  Order = "start"
	OrderPause  Order = "pause"
	OrderResume Order = "resume"
	OrderKill   Order = "kill"
	OrderDelete Order = "delete"
	// OrderUpdate changes the resource limits (runc update).
	OrderUpdate Order = "update"
	// OrderCheckpoint checkpoints the container with CRIU (runc checkpoint).
	OrderCheckpoint Order = "checkpoint"
	OrderExec       Order = "exec"

	orderForceDelete Order = "delete --force"
	// The steps that are not orders: they happen.
	eventCreate Order = "create" // a create finished (run: then a start)
	eventLoad   Order = "load"   // a daemon found the container on disk
	eventExit   Order = "exit"   // init exited
)

// step is one row of the lifecycle: from which states a step may start, and
// to which state it leads.
type step struct {
	from []State
	to   State // "" leaves the state as it is
	// why is what a refusal says after `container "x" is STATE`; by
	// default ", not FROM" (nothing when FROM is every live state: "is
	// stopped" says it all).
	why string
}

// lifecycle is the container's state machine: every state change is one of
// these steps, taken by transition, and every refusal of an order is
// generated from its row. Stopped is final but for a delete; deleted is
// final.
var lifecycle = map[Order]step{
	eventCreate: {from: []State{none}, to: Created},
	eventLoad:   {from: []State{none}, to: asFound},
	OrderStart:  {from: []State{Created}, to: Running},
	OrderPause:  {from: []State{Running}, to: Paused},
	OrderResume: {from: []State{Paused}, to: Running},
	// The exit the kill causes is a step of its own.
	OrderKill: {from: live},
	// The cgroups exist from create to the exit.
	OrderUpdate: {from: live, why: ": it has no cgroups to update"},
	// runc refuses to checkpoint a created container; CRIU can dump a
	// frozen one. With --exit, the exit follows as a step of its own.
	OrderCheckpoint: {from: []State{Running, Paused}},
	// runc execs into a running container only: not a created one (its
	// init has not run the user's program) nor a frozen one.
	OrderExec:        {from: []State{Running}},
	eventExit:        {from: live, to: Stopped},
	OrderDelete:      {from: []State{Created, Stopped}, to: deleted, why: " (stop it first, or use --force)"},
	orderForceDelete: {from: []State{Created, Running, Paused, Stopped}, to: deleted},
}

// loadable are the states a load may find.
var loadable = []State{Created, Running, Paused, Stopped}

// deleteOrder is the row of a delete, with or without --force.
func deleteOrder(force bool) Order {
	if force {
		return orderForceDelete
	}
	return OrderDelete
}

// verb is the ctl verb of o, which its messages start with.
func (o Order) verb() string {
	v, _, _ := strings.Cut(string(o), " ")
	return v
}

func (st step) allows(s State) bool { return stateIn(s, st.from) }

func stateIn(s State, list []State) bool {
	for _, ok := range list {
		if s == ok {
			return true
		}
	}
	return false
}

// check returns nil when order o may be given to container id in state s,
// and otherwise the refusal, worded from o's row.
func (s State) check(o Order, id string) error {
	st, ok := lifecycle[o]
	switch {
	case !ok:
		return Errorf(KindInvalid, "unknown order %q", o)
	case st.allows(s):
		return nil
	case s == deleted:
		return Errorf(KindNotFound, "%s: no such container %q", o.verb(), id)
	}
	why := st.why
	if why == "" && !sameStates(st.from, live) {
		names := make([]string, len(st.from))
		for i, f := range st.from {
			names[i] = string(f)
		}
		why = ", not " + strings.Join(names, " or ")
	}
	return Errorf(KindBusy, "%s: container %q is %s%s", o.verb(), id, s, why)
}

func sameStates(a, b []State) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !stateIn(s, b) {
			return false
		}
	}
	return true
}

// transitionLocked is the one place a container's state changes: it takes
// step o, begun when the container was in state began, to the state o's row
// leads to (for a load, found). c.mu must be held.
//
// A step whose row does not allow the current state is never taken. If the
// state changed since the step began, that is the race the table expects:
// every change but the exit is serialised by ops, so the exit came while an
// order ran (a pause that froze an exiting container), and stopped stays.
// If it did not change, the step should never have been tried: a bug in
// ctrfs, logged loudly. at is when the step happened: the state's time.
func (c *Container) transitionLocked(o Order, began, found State, at time.Time) {
	cur := c.state
	st, ok := lifecycle[o]
	to := st.to
	if to == asFound {
		to = found
		if !stateIn(found, loadable) {
			ok = false
		}
	}
	fields := logrus.Fields{"order": string(o), "from": string(cur), "began": string(began), "to": string(to)}
	switch {
	case !ok || (!st.allows(cur) && cur == began):
		c.log.WithFields(fields).Error("impossible transition not taken: a bug in ctrfs")
	case !st.allows(cur):
		c.log.WithFields(fields).Debug("the state changed while the order ran; it stays")
	case to != "":
		c.state = to
		at = at.UTC()
		c.rec.StateChanged = &at
		if c.rt != nil { // nil in unit tests of the table
			c.rt.times.changed.advance(at)
		}
	}
}

// transition takes the step of the order under way (see begin), once the
// runtime has done it.
func (c *Container) transition() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transitionLocked(c.order, c.began, "", time.Now())
}

// happen takes a step that is no order: it begins and ends at once.
func (c *Container) happen(o Order) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transitionLocked(o, c.state, "", time.Now())
}

// settle sets the state a load found.
func (c *Container) settle(found State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.transitionLocked(eventLoad, c.state, found, c.loadedStateTime(found))
}

// ProcState is a process's lifecycle state.
type ProcState string

const (
	ProcRunning ProcState = "running"
	ProcExited  ProcState = "exited"
)
