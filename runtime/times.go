package runtime

import (
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
)

// When the files last changed: the file system shows these as the files'
// mtimes (docs/files.md, "Times and sizes"). They are kept in memory as
// things happen, so a stat costs no runtime command and no disk access;
// those that must outlive a daemon restart are in state.json (the state's
// last change, the last update), oom.json (the last OOM kill), the shim's
// exitStatus (the exit) and the pid file's own mtime (the start).

// Times are when a container's files last changed.
type Times struct {
	Created time.Time // the create: its directory and the files fixed then
	State   time.Time // the last transition (create, start, pause, resume, exit)
	Pid     time.Time // init's pid appeared (the create) or went (the exit)
	Pids    time.Time // the last start or exit of any of its processes
	OOM     time.Time // the last OOM kill counted; the create before any
	Status  time.Time // the last change of what status shows (but lost)
	Events  time.Time // its last event; since a restart, the latest of the above until one comes
}

// ProcTimes are when a process started and exited (zero while it runs).
type ProcTimes struct {
	Started, Exited time.Time
}

// RootTimes are the mount's own: the daemon's start, the last change of any
// container (create, transition, delete: ps and the root directory) and
// the last event.
type RootTimes struct {
	Started, Changed, Events time.Time
}

// atomicTime is a time kept as Unix nanoseconds, read without a lock.
type atomicTime struct{ ns atomic.Int64 }

// advance moves the time to t unless it is later already.
func (a *atomicTime) advance(t time.Time) {
	n := t.UnixNano()
	for {
		cur := a.ns.Load()
		if n <= cur || a.ns.CompareAndSwap(cur, n) {
			return
		}
	}
}

func (a *atomicTime) get() time.Time {
	n := a.ns.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// containerTimes are the times a container keeps beside its record.
type containerTimes struct {
	event atomicTime // its last event
	pids  atomicTime // the last start or exit of one of its processes
}

// runtimeTimes are the runtime's own.
type runtimeTimes struct {
	started time.Time
	changed atomicTime // the last change of any container
}

// latest is the latest of ts, ignoring the unset ones.
func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

func orZero(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// Times are when the container's files last changed.
func (c *Container) Times() Times {
	c.mu.RLock()
	rec, exited, state := c.rec, c.exited, c.state
	c.mu.RUnlock()
	t := Times{Created: rec.Created}
	t.State = latest(rec.Created, orZero(rec.StateChanged))
	t.Pid = rec.Created
	if exited != nil && state.shown() == Stopped {
		t.Pid = *exited
	}
	t.Pids = latest(rec.Created, orZero(rec.Started), c.times.pids.get())
	t.OOM = latest(rec.Created, c.oomTime())
	t.Status = latest(t.State, orZero(rec.Updated))
	t.Events = latest(t.Status, t.OOM, t.Pids, c.times.event.get())
	return t
}

// loadedStateTime is when the state a load found was reached, as far as
// the state directory tells: the exit, or the latest of the create, the
// start and the last recorded change (pause, resume).
func (c *Container) loadedStateTime(found State) time.Time {
	if found == Stopped && c.exited != nil {
		return *c.exited
	}
	return latest(c.rec.Created, orZero(c.rec.Started), orZero(c.rec.StateChanged))
}

// Times are when the process started and exited.
func (p *Process) Times() ProcTimes {
	p.mu.RLock()
	defer p.mu.RUnlock()
	t := ProcTimes{Started: p.started}
	if t.Started.IsZero() {
		t.Started = p.c.rec.Created // never changes after the create
	}
	if p.exit != nil {
		t.Exited = p.exit.ExitedAt
	}
	return t
}

// noteStarted records when the process started: when the shim wrote its pid
// file (mtime), so that a restarted daemon finds the same time.
func (p *Process) noteStarted(mtime time.Time) {
	p.mu.Lock()
	p.started = mtime.UTC()
	p.mu.Unlock()
	p.c.times.pids.advance(mtime)
}

// loadStartTime finds the start of a process loaded as exited, whose pid
// file is not read: its pid file's mtime, if it has one.
func (p *Process) loadStartTime() {
	if fi, err := os.Stat(p.pidPath()); err == nil {
		p.noteStarted(fi.ModTime())
	}
	if rec := p.exitRecord(); rec != nil {
		p.c.times.pids.advance(rec.ExitedAt)
	}
}

func (p *Process) pidPath() string { return filepath.Join(p.dir, proto.PidFile) }

// readFileTime reads a file and its mtime, in the calls os.ReadFile makes.
func readFileTime(path string) ([]byte, time.Time, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, time.Time{}, err
	}
	b, err := io.ReadAll(f)
	return b, fi.ModTime(), err
}

// saveStateTime writes state.json with the state's time, after a pause or
// a resume (a start writes it anyway), so that a restarted daemon shows the
// same mtime. Under the order lock, as every writer of state.json. A failed
// write costs only that time: it is logged.
func (c *Container) saveStateTime() {
	c.mu.RLock()
	rec := c.rec
	c.mu.RUnlock()
	if err := writeJSONAtomic(filepath.Join(c.dir, recordFile), rec); err != nil {
		c.log.WithError(err).Warn("cannot record the time of the state")
	}
}

// Times are the mount's own times.
func (r *Runtime) Times() RootTimes {
	t := RootTimes{Started: r.times.started, Changed: r.times.changed.get(), Events: r.events.last.get()}
	t.Changed = latest(t.Started, t.Changed)
	t.Events = latest(t.Started, t.Events)
	return t
}
