package runtime

import (
	"fmt"
	"io"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
)

// TestLifecycleTable checks every order in every state: allowed, and to
// which state it leads, or refused with the text and kind users see.
func TestLifecycleTable(t *testing.T) {
	const id = "x"
	busy := func(f string, args ...any) string { return fmt.Sprintf(f, args...) }
	states := []State{Created, Running, Paused, Stopped, deleted}
	// For each order and state: the state it leads to ("" = unchanged) or
	// the refusal. A deleted container is no such container to every order.
	type want struct {
		to  State
		err string
	}
	ok := func(to State) want { return want{to: to} }
	no := func(f string, args ...any) want { return want{err: busy(f, args...)} }
	table := map[Order]map[State]want{
		OrderStart: {
			Created: ok(Running),
			Running: no(`start: container "x" is running, not created`),
			Paused:  no(`start: container "x" is paused, not created`),
			Stopped: no(`start: container "x" is stopped, not created`),
		},
		OrderPause: {
			Created: no(`pause: container "x" is created, not running`),
			Running: ok(Paused),
			Paused:  no(`pause: container "x" is paused, not running`),
			Stopped: no(`pause: container "x" is stopped, not running`),
		},
		OrderResume: {
			Created: no(`resume: container "x" is created, not paused`),
			Running: no(`resume: container "x" is running, not paused`),
			Paused:  ok(Running),
			Stopped: no(`resume: container "x" is stopped, not paused`),
		},
		OrderKill: {
			Created: ok(""), Running: ok(""), Paused: ok(""),
			Stopped: no(`kill: container "x" is stopped`),
		},
		OrderUpdate: {
			Created: ok(""), Running: ok(""), Paused: ok(""),
			Stopped: no(`update: container "x" is stopped: it has no cgroups to update`),
		},
		OrderCheckpoint: {
			Created: no(`checkpoint: container "x" is created, not running or paused`),
			Running: ok(""), Paused: ok(""),
			Stopped: no(`checkpoint: container "x" is stopped, not running or paused`),
		},
		OrderExec: {
			Created: no(`exec: container "x" is created, not running`),
			Running: ok(""),
			Paused:  no(`exec: container "x" is paused, not running`),
			Stopped: no(`exec: container "x" is stopped, not running`),
		},
		OrderDelete: {
			Created: ok(deleted),
			Running: no(`delete: container "x" is running (stop it first, or use --force)`),
			Paused:  no(`delete: container "x" is paused (stop it first, or use --force)`),
			Stopped: ok(deleted),
		},
		orderForceDelete: {
			Created: ok(deleted), Running: ok(deleted), Paused: ok(deleted), Stopped: ok(deleted),
		},
	}
	for o, rows := range table {
		for _, s := range states {
			t.Run(fmt.Sprintf("%s/%s", o, s), func(t *testing.T) {
				w, listed := rows[s]
				if s == deleted {
					w = want{err: fmt.Sprintf("%s: no such container %q", o.verb(), id)}
				} else if !listed {
					t.Fatalf("test table misses %s in %s", o, s)
				}
				err := s.check(o, id)
				switch {
				case w.err == "" && err != nil:
					t.Fatalf("check = %v, want allowed", err)
				case w.err != "" && (err == nil || err.Error() != w.err):
					t.Fatalf("check = %v, want %q", err, w.err)
				case w.err != "":
					kind := KindBusy
					if s == deleted {
						kind = KindNotFound
					}
					if KindOf(err) != kind {
						t.Errorf("kind = %v, want %v", KindOf(err), kind)
					}
					return
				}
				c, hook := testContainer(s)
				c.order, c.began = o, s
				c.transition()
				to := w.to
				if to == "" {
					to = s
				}
				if c.state != to {
					t.Errorf("%s from %s leads to %s, want %s", o, s, c.state, to)
				}
				if len(hook.AllEntries()) != 0 {
					t.Errorf("log: %v", hook.AllEntries())
				}
			})
		}
	}
	if len(table) != len(lifecycle)-3 { // create, load and exit are no orders
		t.Errorf("the test covers %d orders, the lifecycle has %d rows", len(table), len(lifecycle))
	}
}

// TestLifecycleEvents checks the steps that are no orders.
func TestLifecycleEvents(t *testing.T) {
	c, _ := testContainer(none)
	c.happen(eventCreate)
	if c.state != Created {
		t.Errorf("create: %s, want created", c.state)
	}
	for _, s := range live {
		c, _ := testContainer(s)
		c.happen(eventExit)
		if c.state != Stopped {
			t.Errorf("exit from %s: %s, want stopped", s, c.state)
		}
	}
	for _, s := range loadable {
		c, hook := testContainer(none)
		c.settle(s)
		if c.state != s || len(hook.AllEntries()) != 0 {
			t.Errorf("load of %s: %s (log %v)", s, c.state, hook.AllEntries())
		}
	}
}

// TestLifecycleImpossible: a step its row does not allow, in a state that
// did not change under it, is a bug: logged as an error, never taken.
func TestLifecycleImpossible(t *testing.T) {
	for _, tc := range []struct {
		name  string
		from  State
		apply func(c *Container)
	}{
		{"resume of a running container", Running, func(c *Container) {
			c.order, c.began = OrderResume, Running
			c.transition()
		}},
		{"exit of a stopped container", Stopped, func(c *Container) { c.happen(eventExit) }},
		{"exit of a deleted container", deleted, func(c *Container) { c.happen(eventExit) }},
		{"create of a running container", Running, func(c *Container) { c.happen(eventCreate) }},
		{"start from deleted", deleted, func(c *Container) { c.happen(OrderStart) }},
		{"load of a deleted state", none, func(c *Container) { c.settle(deleted) }},
		{"unknown step", Running, func(c *Container) { c.happen("fly") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, hook := testContainer(tc.from)
			tc.apply(c)
			if c.state != tc.from {
				t.Errorf("state %s, want %s untouched", c.state, tc.from)
			}
			e := hook.LastEntry()
			if e == nil || e.Level != logrus.ErrorLevel || e.Data["from"] != string(tc.from) || e.Data["order"] == nil {
				t.Errorf("log = %v, want one error naming order and from", hook.AllEntries())
			}
		})
	}
}

// TestLifecycleRace: the exit, the one change not serialised by ops, may
// come while an order runs; the order's target is then dropped quietly and
// the container stays stopped, but a delete still deletes it.
func TestLifecycleRace(t *testing.T) {
	for _, tc := range []struct {
		order       Order
		began, want State
	}{
		{OrderPause, Running, Stopped},
		{OrderResume, Paused, Stopped},
		{OrderStart, Created, Stopped},
		{OrderDelete, Created, deleted},
		{orderForceDelete, Running, deleted},
		{orderForceDelete, Paused, deleted},
	} {
		c, hook := testContainer(tc.began)
		c.order, c.began = tc.order, tc.began
		c.happen(eventExit)
		c.transition()
		if c.state != tc.want {
			t.Errorf("%s begun in %s, exit meanwhile: %s, want %s", tc.order, tc.began, c.state, tc.want)
		}
		for _, e := range hook.AllEntries() {
			if e.Level <= logrus.WarnLevel {
				t.Errorf("%s: logged %s: %s", tc.order, e.Level, e.Message)
			}
		}
	}
}

func testContainer(s State) (*Container, *logtest.Hook) {
	log, hook := logtest.NewNullLogger()
	log.Out = io.Discard
	log.SetLevel(logrus.DebugLevel)
	return &Container{id: "x", state: s, log: log}, hook
}
