package runtime

// State is a container's lifecycle state. Orders are checked against it
// before the runtime is run, so an impossible order gets a clear EBUSY
// instead of a runtime error.
type State string

const (
	Created State = "created"
	Running State = "running"
	Paused  State = "paused"
	Stopped State = "stopped"
)

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
)

// allowed lists, for each order, the states it may be given in. delete
// with --force is allowed in every state and is not listed here.
var allowed = map[Order][]State{
	OrderStart:  {Created},
	OrderPause:  {Running},
	OrderResume: {Paused},
	OrderKill:   {Created, Running, Paused},
	OrderDelete: {Created, Stopped},
	// The cgroups exist from create to the exit.
	OrderUpdate: {Created, Running, Paused},
	// runc refuses to checkpoint a created container; CRIU can dump a
	// frozen one.
	OrderCheckpoint: {Running, Paused},
	// runc execs into a running container only: not a created one (its
	// init has not run the user's program) nor a frozen one.
	OrderExec: {Running},
}

// check returns nil when order may be given to container id in state s.
func (s State) check(order Order, id string) error {
	for _, ok := range allowed[order] {
		if s == ok {
			return nil
		}
	}
	switch order {
	case OrderStart:
		return Errorf(KindBusy, "start: container %q is %s, not created", id, s)
	case OrderPause:
		return Errorf(KindBusy, "pause: container %q is %s, not running", id, s)
	case OrderResume:
		return Errorf(KindBusy, "resume: container %q is %s, not paused", id, s)
	case OrderKill:
		return Errorf(KindBusy, "kill: container %q is stopped", id)
	case OrderDelete:
		return Errorf(KindBusy, "delete: container %q is %s (stop it first, or use --force)", id, s)
	case OrderUpdate:
		return Errorf(KindBusy, "update: container %q is stopped: it has no cgroups to update", id)
	case OrderCheckpoint:
		return Errorf(KindBusy, "checkpoint: container %q is %s, not running or paused", id, s)
	case OrderExec:
		return Errorf(KindBusy, "exec: container %q is %s, not running", id, s)
	}
	return Errorf(KindInvalid, "unknown order %q", order)
}

// ProcState is a process's lifecycle state.
type ProcState string

const (
	ProcRunning ProcState = "running"
	ProcExited  ProcState = "exited"
)
