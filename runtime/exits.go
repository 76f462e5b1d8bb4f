package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
)

// How an exit is learnt: from the shim's report through the exit fifo, from
// its exit-status file once it is gone, or, if it died without writing one,
// by concluding what can be known.

// watchShim has the monitor watch p's shim through its exit fifo.
func (c *Container) watchShim(p *Process) error {
	return c.rt.mon.watchFifo(filepath.Join(p.dir, proto.ExitFifo),
		func(data []byte) { c.shimReported(p, data) },
		func() { c.shimGone(p) })
}

// shimReported is called by the monitor, in its own goroutine, with what
// p's shim wrote into the exit fifo: the exit status, as soon as the
// process has exited. It is recorded at once: every exit watcher waits on
// this path, and the shim's exitStatus file may take a millisecond more.
func (c *Container) shimReported(p *Process, data []byte) {
	var st proto.ExitStatus
	if err := json.Unmarshal(data, &st); err != nil || st.ExitedAt.IsZero() {
		c.log.WithField("data", string(data)).Warn("the shim wrote something other than an exit status; waiting for its file")
		return
	}
	c.recordExit(p, &exitRecord{ExitStatus: st})
}

// shimGone is called by the monitor, in its own goroutine, when p's shim
// has exited. Unless the shim reported the exit already, it records the
// exit the shim wrote, or, if the shim died without writing one, the truth
// as far as it can be known (see concludeLostExit), which can take seconds
// and so goes on in a goroutine of its own. Then p is Done.
func (c *Container) shimGone(p *Process) {
	if rec := p.exitRecord(); rec != nil {
		// Reported through the fifo. The file is there too, unless the
		// shim died in between: then the daemon writes it, so that a
		// restart concludes the same.
		if _, err := os.Stat(filepath.Join(p.dir, proto.ExitStatusFile)); errors.Is(err, os.ErrNotExist) {
			if err := p.writeExitFile(rec); err != nil {
				c.log.WithError(err).Warn("cannot record the exit status")
			}
		}
		p.markDone()
		return
	}
	rec, err := p.readExitFile()
	if err != nil {
		c.log.WithError(err).Warn("unreadable exit status")
	}
	if rec != nil {
		c.recordExit(p, rec)
		p.markDone()
		return
	}
	go func() {
		rec := c.concludeLostExit(p)
		if err := p.writeExitFile(rec); err != nil {
			c.log.WithError(err).Warn("cannot record the exit status")
		}
		c.recordExit(p, rec)
		p.markDone()
	}()
}

// recordExit marks p exited with rec and, for init, the container stopped,
// then publishes the exit: whoever sees the event reads the new state.
func (c *Container) recordExit(p *Process, rec *exitRecord) {
	if !p.setExit(rec) {
		return
	}
	c.times.pids.advance(rec.ExitedAt)
	if p == c.init {
		go c.statLRU.forget(&c.statFiles) // the cgroups are gone; not on the exit path
		c.mu.Lock()
		at := rec.ExitedAt
		c.exited = &at
		c.transitionLocked(eventExit, c.state, "", at)
		c.mu.Unlock()
	}
	c.happened(p.exitEvent(rec))
	c.log.WithFields(logrus.Fields{"process": p.name, "status": p.ExitText(), "reason": rec.Reason}).Info("exited")
}

// concludeLostExit decides what to record when a shim died without writing
// the exit status. If the process still runs, nothing supervises it any
// more: ctrfs kills it — for init, the container, so that "stopped" is
// true — and records that kill. If it is already gone, its status is lost:
// "unknown", never a made-up number. A failed kill is not an answer in
// itself: whether the process is gone is, and that is what is recorded.
func (c *Container) concludeLostExit(p *Process) *exitRecord {
	h, err := p.open()
	if err != nil {
		return &exitRecord{
			ExitStatus: exitStatusNow(0, 0),
			Unknown:    true,
			Reason:     "the shim died before recording the exit status",
		}
	}
	defer h.close()
	kill := func() {
		// Through the pidfd, checked against pid reuse; errGone: it
		// died meanwhile, as wanted.
		if err := h.signal(syscall.SIGKILL); err != nil && !errors.Is(err, errGone) {
			c.log.WithError(err).WithField("process", p.name).Warn("cannot kill the orphaned process")
		}
	}
	what := "process"
	if p == c.init {
		what = "container"
		c.log.Warn("shim died while the container ran; killing the container")
		ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
		defer cancel()
		if err := c.cli.kill(ctx, c.id, syscall.SIGKILL, true); err != nil {
			c.log.WithError(err).Warn("runtime kill failed; killing init alone")
			kill()
		}
		if c.cgroups().frozen() {
			// A frozen process cannot die.
			if err := c.cli.resume(ctx, c.id); err != nil {
				c.log.WithError(err).Warn("cannot thaw the container to let it die")
			}
		}
	} else {
		c.log.WithField("process", p.name).Warn("shim died while the process ran; killing the process")
		kill()
	}
	const killWait = 10 * time.Second
	if !h.wait(killWait) {
		return &exitRecord{
			ExitStatus: exitStatusNow(0, 0),
			Unknown:    true,
			Reason:     "the shim died and the orphaned process could not be killed",
		}
	}
	return &exitRecord{
		ExitStatus: exitStatusNow(128+int(syscall.SIGKILL), int(syscall.SIGKILL)),
		Reason:     "the shim died; ctrfs killed the " + what + " it could no longer supervise",
	}
}

func exitStatusNow(status, signal int) proto.ExitStatus {
	return proto.ExitStatus{Status: status, Signal: signal, ExitedAt: time.Now().UTC()}
}
