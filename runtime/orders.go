package runtime

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// orderTimeout bounds one runtime command run for an order.
const orderTimeout = 60 * time.Second

// shimExitWait bounds how long a delete waits for a killed container's
// shim to record the exit.
const shimExitWait = 15 * time.Second

// begin takes the order lock and checks the order against the state (see
// lifecycle); the order's step is taken by transition once the runtime has
// done it.
func (c *Container) begin(ctx context.Context, order Order) (context.Context, func(), error) {
	if err := c.ops.lockCtx(ctx, fmt.Sprintf("%s: container %q", order, c.id)); err != nil {
		return nil, nil, err
	}
	c.mu.RLock()
	state := c.state
	c.mu.RUnlock()
	if err := state.check(order, c.id); err != nil {
		c.ops.Unlock()
		return nil, nil, err
	}
	c.order, c.began = order, state
	ctx, cancel := orderContext(ctx, orderTimeout)
	return ctx, func() { cancel(); c.ops.Unlock() }, nil
}

// orderContext is the context an order runs under: the writer's values but
// never its cancellation, since an order abandoned halfway (a runc create
// without its shim watched, a delete without its directory removed) would
// leave half-made state; bounded by d instead.
func orderContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}

// failed publishes an error event for an order the runtime refused, and
// returns err.
func (c *Container) failed(order Order, err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, string(order)+": ") { // most errors do not name their order
		msg = string(order) + ": " + msg
	}
	c.publish(Event{Type: EventError, Message: msg})
	return err
}

// Start runs the user's program of a created container.
func (c *Container) Start(ctx context.Context) error {
	ctx, end, err := c.begin(ctx, OrderStart)
	if err != nil {
		return err
	}
	defer end()
	// Declared after end, so it runs before: the held events go out while
	// the order lock is still held.
	release := c.holdEvents()
	defer release()
	if err := c.cli.start(ctx, c.id); err != nil {
		return c.failed(OrderStart, err)
	}
	now := time.Now().UTC()
	c.mu.Lock()
	c.rec.Started = &now
	rec := c.rec
	c.mu.Unlock()
	c.transition()
	c.publish(Event{Type: EventStart, Process: initProcess, Pid: c.init.Pid()})
	if err := writeJSONAtomic(filepath.Join(c.dir, recordFile), rec); err != nil {
		c.log.WithError(err).Warn("cannot record the start time")
	}
	return nil
}

// Pause freezes every process of a running container.
func (c *Container) Pause(ctx context.Context) error {
	ctx, end, err := c.begin(ctx, OrderPause)
	if err != nil {
		return err
	}
	defer end()
	if err := c.cli.pause(ctx, c.id); err != nil {
		return c.failed(OrderPause, err)
	}
	c.transition()
	c.publish(Event{Type: EventPause})
	c.saveStateTime()
	return nil
}

// Resume thaws a paused container.
func (c *Container) Resume(ctx context.Context) error {
	ctx, end, err := c.begin(ctx, OrderResume)
	if err != nil {
		return err
	}
	defer end()
	if err := c.cli.resume(ctx, c.id); err != nil {
		return c.failed(OrderResume, err)
	}
	c.transition()
	c.publish(Event{Type: EventResume})
	c.saveStateTime()
	return nil
}

// Kill sends sig to init, or with all to every process of the container.
// The state changes with the exit, if one follows.
func (c *Container) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	ctx, end, err := c.begin(ctx, OrderKill)
	if err != nil {
		return err
	}
	defer end()
	if err := c.cli.kill(ctx, c.id, sig, all); err != nil {
		return c.failed(OrderKill, err)
	}
	return nil
}

// Delete removes a container: created or stopped ones, or with force any.
// It takes the container, not its id, so that a stale handle on a deleted
// container can never delete a new one that reuses the id.
func (r *Runtime) Delete(ctx context.Context, c *Container, force bool) error {
	id := c.id
	ctx, end, err := c.begin(ctx, deleteOrder(force))
	if err != nil {
		return err
	}
	defer end()
	state := c.began
	if state == Paused {
		// Signals to a frozen container wait until it thaws. Whether they
		// worked is seen below: the runtime's delete fails, or init's
		// shim does not end in time.
		if err := c.cli.kill(ctx, id, syscall.SIGKILL, true); err != nil {
			c.log.WithError(err).Warn("delete: cannot kill the paused container")
		}
		if err := c.cli.resume(ctx, id); err != nil {
			c.log.WithError(err).Warn("delete: cannot thaw the killed container")
		}
	}
	deadline := time.After(shimExitWait)
	if err := c.deleteRuntime(ctx, state, force, deadline); err != nil {
		return c.failed(OrderDelete, err)
	}
	select {
	case <-c.init.Done():
	case <-deadline:
		return Errorf(KindInternal, "delete: container %q: its shim did not exit in %s", id, shimExitWait)
	}
	// The execs die with init (the kernel kills a pid namespace with its
	// init); one that outlives it (a container without a pid namespace of
	// its own) is killed. Their shims must be gone before their directories.
	for _, p := range c.execs() {
		select {
		case <-p.Done():
			continue
		case <-time.After(time.Second):
		}
		// An error says it is gone already, or cannot be signalled: the
		// wait below tells which.
		_ = p.signal(syscall.SIGKILL)
		select {
		case <-p.Done():
		case <-deadline:
			return Errorf(KindInternal, "delete: container %q: the shim of process %q did not exit in %s", id, p.name, shimExitWait)
		}
	}
	c.transition()
	// The directory goes before the id is free again, so a new create of
	// the same id never finds it in the way.
	r.dropImageBundle(id)
	r.removeDir(c.dir)
	c.stopOOMWatch(r)
	c.statLRU.forget(&c.statFiles)
	r.mu.Lock()
	delete(r.containers, id)
	r.mu.Unlock()
	c.publish(Event{Type: EventDelete})
	c.log.Info("deleted")
	return nil
}

// deleteRuntime has the runtime delete the container. A running one is
// killed first and its exit learned from init's shim, then deleted as a
// stopped container: `runc delete -f` of a running container signals it and
// then polls for 100 ms before it looks again, ten times a plain delete.
// If the kill does not end init in time, the runtime's forced delete
// still gets its say.
func (c *Container) deleteRuntime(ctx context.Context, state State, force bool, deadline <-chan time.Time) error {
	if state == Running && force {
		if err := c.init.signal(syscall.SIGKILL); err == nil || errors.Is(err, errGone) {
			select {
			case <-c.init.Done():
				if err := c.cli.delete(ctx, c.id, false); err == nil {
					return nil
				}
			case <-time.After(time.Second):
			case <-deadline:
			}
		}
	}
	return c.cli.delete(ctx, c.id, force || state != Stopped)
}
