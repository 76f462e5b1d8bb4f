package fsys

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/runtime"
)

// fakeRuntime is an in-process Runtime for the tests of the file system:
// containers are records in memory, orders change them and publish their
// events to the observers as package runtime does, and every order is
// logged. Each fake embeds the interface it stands for, so a method that
// no test needs panics instead of needing a body.
type fakeRuntime struct {
	Runtime
	mu        sync.Mutex
	cs        map[string]*fakeContainer
	observers []func(runtime.Event)
	calls     []string // orders carried out, in order
}

func newFakeRuntime() *fakeRuntime { return &fakeRuntime{cs: map[string]*fakeContainer{}} }

func (r *fakeRuntime) RuntimeVersion() string { return "fake 1.0" }

func (r *fakeRuntime) Observe(fn func(runtime.Event)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.observers = append(r.observers, fn)
}

// publish tells the observers of e, as the runtime's event bus does.
func (r *fakeRuntime) publish(e runtime.Event) {
	r.mu.Lock()
	obs := append([]func(runtime.Event){}, r.observers...)
	r.mu.Unlock()
	for _, fn := range obs {
		fn(e)
	}
}

func (r *fakeRuntime) call(format string, args ...any) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *fakeRuntime) takeCalls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *fakeRuntime) Get(id string) (Container, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.cs[id]
	if !ok {
		return nil, false
	}
	return c, true
}

func (r *fakeRuntime) List() []Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Container
	for _, c := range r.cs {
		out = append(out, c)
	}
	return out
}

// add makes a running container with an init process.
func (r *fakeRuntime) add(id string) *fakeContainer {
	c := &fakeContainer{rt: r, id: id, state: runtime.State("running"), procs: map[string]*fakeProcess{}}
	c.procs["init"] = newFakeProcess("init")
	r.mu.Lock()
	r.cs[id] = c
	r.mu.Unlock()
	return c
}

func (r *fakeRuntime) Create(ctx context.Context, req runtime.CreateRequest) error {
	r.call("create %s %s", req.ID, req.Bundle)
	if _, ok := r.Get(req.ID); ok {
		return runtime.Errorf(runtime.KindExists, "create: container %q exists", req.ID)
	}
	r.add(req.ID)
	return nil
}

func (r *fakeRuntime) Delete(ctx context.Context, c Container, force bool) error {
	r.call("delete %s", c.ID())
	r.mu.Lock()
	delete(r.cs, c.ID())
	r.mu.Unlock()
	return nil
}

type fakeContainer struct {
	Container
	rt *fakeRuntime
	id string

	mu    sync.Mutex
	state runtime.State
	moved time.Time // the last state change
	procs map[string]*fakeProcess
	fail  error // what the next order fails with, if set
}

// fakeEpoch is when every fake container was created, and the daemon started.
var fakeEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (r *fakeRuntime) Times() runtime.RootTimes {
	return runtime.RootTimes{Started: fakeEpoch, Changed: fakeEpoch, Events: fakeEpoch}
}

func (c *fakeContainer) Times() runtime.Times {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.moved
	if st.IsZero() {
		st = fakeEpoch
	}
	return runtime.Times{Created: fakeEpoch, State: st, Pid: fakeEpoch, Pids: st, OOM: fakeEpoch, Status: st, Events: st}
}

func (p *fakeProcess) Times() runtime.ProcTimes { return runtime.ProcTimes{Started: fakeEpoch} }

func (c *fakeContainer) Labels() map[string]string { return map[string]string{"a": "b"} }

func (c *fakeContainer) ID() string    { return c.id }
func (c *fakeContainer) Deleted() bool { return false }

func (c *fakeContainer) State() runtime.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *fakeContainer) Process(name string) Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.procs[name]; ok {
		return p
	}
	return nil
}

// move is an order that takes the container from one state to another,
// publishing ev, or fails as the runtime does: EBUSY when the state is not
// from.
func (c *fakeContainer) move(verb string, from, to runtime.State, ev string) error {
	c.rt.call("%s %s", verb, c.id)
	c.mu.Lock()
	if err := c.fail; err != nil {
		c.fail = nil
		c.mu.Unlock()
		return err
	}
	if c.state != from {
		defer c.mu.Unlock()
		return runtime.Errorf(runtime.KindBusy, "%s: container %q is %s, not %s", verb, c.id, c.state, from)
	}
	c.state, c.moved = to, time.Now()
	c.mu.Unlock()
	c.rt.publish(runtime.Event{Type: ev, ID: c.id})
	return nil
}

func (c *fakeContainer) Start(ctx context.Context) error {
	return c.move("start", runtime.State("created"), runtime.State("running"), runtime.EventStart)
}

func (c *fakeContainer) Pause(ctx context.Context) error {
	return c.move("pause", runtime.State("running"), runtime.State("paused"), runtime.EventPause)
}

func (c *fakeContainer) Resume(ctx context.Context) error {
	return c.move("resume", runtime.State("paused"), runtime.State("running"), runtime.EventResume)
}

func (c *fakeContainer) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	c.rt.call("kill %s %d %v", c.id, sig, all)
	return nil
}

// fakeProcess is a process whose output the test writes.
type fakeProcess struct {
	Process
	name string

	mu     sync.Mutex
	out    []byte
	exited bool
	change chan struct{} // closed at the next change
	done   chan struct{}
}

func newFakeProcess(name string) *fakeProcess {
	return &fakeProcess{name: name, change: make(chan struct{}), done: make(chan struct{})}
}

func (p *fakeProcess) Name() string            { return p.name }
func (p *fakeProcess) Done() <-chan struct{}   { return p.done }
func (p *fakeProcess) Exited() <-chan struct{} { return p.done }

func (p *fakeProcess) State() runtime.ProcState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return runtime.ProcExited
	}
	return runtime.ProcRunning
}

// write appends to the process's stdout.
func (p *fakeProcess) write(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.out = append(p.out, s...)
	close(p.change)
	p.change = make(chan struct{})
}

// exit ends the process: its output is complete.
func (p *fakeProcess) exit() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exited = true
	close(p.done)
	close(p.change)
	p.change = make(chan struct{})
}

func (p *fakeProcess) OpenOutput(stream string) (OutputReader, error) {
	return &fakeOutput{p: p}, nil
}

// fakeOutput reads a fakeProcess's stdout as runtime.OutputReader reads
// a log: ErrWouldBlock at the end while the process runs, EOF after.
type fakeOutput struct {
	p   *fakeProcess
	mu  sync.Mutex
	pos int
}

func (r *fakeOutput) Read(buf []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	if r.pos < len(r.p.out) {
		n := copy(buf, r.p.out[r.pos:])
		r.pos += n
		return n, nil
	}
	if r.p.exited {
		return 0, io.EOF
	}
	return 0, runtime.ErrWouldBlock
}

func (r *fakeOutput) Readable() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.pos < len(r.p.out) || r.p.exited
}

func (r *fakeOutput) Ready() <-chan struct{} {
	r.p.mu.Lock()
	defer r.p.mu.Unlock()
	return r.p.change
}

func (r *fakeOutput) Close() error { return nil }

func (p *fakeProcess) OpenLog(stream string) (OutputLog, error) { return &fakeLog{p: p}, nil }

func (p *fakeProcess) OutputStat(stream string) (int64, time.Time, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.out)), time.Time{}, nil
}

func (p *fakeProcess) OutputLost(stream string) (int64, error) { return 0, nil }

// fakeLog reads a fakeProcess's stdout as a log that keeps everything.
type fakeLog struct{ p *fakeProcess }

func (l *fakeLog) ReadAt(buf []byte, off int64) (int, int64, error) {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	if off >= int64(len(l.p.out)) {
		return 0, off, nil
	}
	return copy(buf, l.p.out[off:]), off, nil
}

func (l *fakeLog) Ready() <-chan struct{} {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.p.change
}

func (l *fakeLog) Exited() bool {
	l.p.mu.Lock()
	defer l.p.mu.Unlock()
	return l.p.exited
}

func (l *fakeLog) Close() error { return nil }
