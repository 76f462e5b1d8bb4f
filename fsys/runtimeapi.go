package fsys

import (
	"context"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/runtime"
)

// What fsys asks of the runtime, and nothing more: the daemon serves
// package runtime's types through it (see New), and the tests serve an
// in-process fake, so that the file system's own behaviour is tested
// without runc. Values (State, Status, Stats, Event, the requests, errors)
// are runtime's own types.

// Runtime is the set of containers.
type Runtime interface {
	Get(id string) (Container, bool)
	List() []Container
	Create(ctx context.Context, req runtime.CreateRequest) error
	Delete(ctx context.Context, c Container, force bool) error
	// Subscribe opens a stream of the events of container id ("" for all).
	Subscribe(id string, notify func()) Subscription
	// Observe calls fn with every event, in order, as it is published.
	Observe(fn func(runtime.Event))
	RuntimeVersion() string
	// Times are the mount's own: the daemon's start, the last change of
	// any container, the last event.
	Times() runtime.RootTimes
}

// Container is one container: what its files show, and its orders.
type Container interface {
	ID() string
	State() runtime.State
	Status() runtime.Status
	Deleted() bool
	Pid() int
	Pids() ([]int, error)
	OOMCount() uint64
	Stats() (*runtime.Stats, error)
	Labels() map[string]string
	Bundle() string
	RuntimeName() string
	Spec() []byte
	Times() runtime.Times        // when its files last changed
	Process(name string) Process // nil if there is none
	Processes() []Process
	RemoveProcess(name string) error
	Checkpoints() ([]string, error)
	CheckpointConfig(name string) ([]byte, error)
	DeleteCheckpoint(name string) error

	Start(ctx context.Context) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	Exec(ctx context.Context, req runtime.ExecRequest) error
	Update(ctx context.Context, req runtime.UpdateRequest) error
	Checkpoint(ctx context.Context, req runtime.CheckpointRequest) error
}

// Process is a container's init or one of its execs.
type Process interface {
	Name() string
	Pid() int
	State() runtime.ProcState
	ExitText() string
	Spec() []byte
	Times() runtime.ProcTimes // its start and exit
	// Exited is closed once the exit is recorded; Done once the output
	// is complete too.
	Exited() <-chan struct{}
	Done() <-chan struct{}
	OpenOutput(stream string) (OutputReader, error)
	OpenLog(stream string) (OutputLog, error)
	OutputStat(stream string) (size int64, mtime time.Time, err error)
	OutputLost(stream string) (int64, error)
	OpenStdin() StdinWriter

	Signal(ctx context.Context, sig syscall.Signal) error
	CloseStdin() error
	Resize(cols, rows uint16) error
	ReopenLog() error
}

// OutputReader reads one open of a process's stdout or stderr (see
// runtime.OutputReader).
type OutputReader interface {
	Read(buf []byte) (int, error) // runtime.ErrWouldBlock at the end while the process runs
	Readable() bool
	Ready() <-chan struct{} // closed at the next change
	Close() error
}

// OutputLog reads a process's stdout or stderr as a file (see
// runtime.OutputLog).
type OutputLog interface {
	ReadAt(buf []byte, off int64) (n int, at int64, err error)
	Ready() <-chan struct{} // closed at the next change
	Exited() bool           // the stream is complete
	Close() error
}

// StdinWriter writes one open of a process's stdin (see runtime.StdinWriter).
type StdinWriter interface {
	Write(ctx context.Context, data []byte, nonblock bool) (int, error)
	Writable() bool
	WhenWritable(stop <-chan struct{}) <-chan struct{}
	Close() error
}

// Subscription is one reader's queue of events (see runtime.Subscription).
type Subscription interface {
	Take(max int) (lines []byte, ended bool)
	Pending() bool
	Ready() <-chan struct{}
	Close()
}

// The adapters below only convert what runtime's methods return (Go has
// no covariant results): *runtime.Container for Container and so on. They
// are values holding the pointer, so two adapters of one container are
// equal, as map keys of stable nodes need.

type rtRuntime struct{ *runtime.Runtime }

func (r rtRuntime) Get(id string) (Container, bool) {
	c, ok := r.Runtime.Get(id)
	if !ok {
		return nil, false
	}
	return rtContainer{c}, true
}

func (r rtRuntime) List() []Container {
	return wrapAll(r.Runtime.List(), func(c *runtime.Container) Container { return rtContainer{c} })
}

func (r rtRuntime) Create(ctx context.Context, req runtime.CreateRequest) error {
	_, err := r.Runtime.Create(ctx, req)
	return err
}

func (r rtRuntime) Delete(ctx context.Context, c Container, force bool) error {
	return r.Runtime.Delete(ctx, c.(rtContainer).Container, force)
}

func (r rtRuntime) Subscribe(id string, notify func()) Subscription {
	return r.Runtime.Subscribe(id, notify)
}

type rtContainer struct{ *runtime.Container }

func (c rtContainer) Process(name string) Process {
	if p := c.Container.Process(name); p != nil {
		return rtProcess{p}
	}
	return nil
}

func (c rtContainer) Processes() []Process {
	return wrapAll(c.Container.Processes(), func(p *runtime.Process) Process { return rtProcess{p} })
}

func (c rtContainer) Exec(ctx context.Context, req runtime.ExecRequest) error {
	_, err := c.Container.Exec(ctx, req)
	return err
}

type rtProcess struct{ *runtime.Process }

func (p rtProcess) OpenOutput(stream string) (OutputReader, error) {
	r, err := p.Process.OpenOutput(stream)
	if err != nil {
		return nil, err
	}
	return r, nil
}

func (p rtProcess) OpenLog(stream string) (OutputLog, error) {
	l, err := p.Process.OpenLog(stream)
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (p rtProcess) OpenStdin() StdinWriter { return p.Process.OpenStdin() }

// wrapAll wraps each of runtime's values for fsys.
func wrapAll[R, I any](rs []R, wrap func(R) I) []I {
	out := make([]I, len(rs))
	for i, r := range rs {
		out[i] = wrap(r)
	}
	return out
}

var (
	_ Runtime      = rtRuntime{}
	_ Container    = rtContainer{}
	_ Process      = rtProcess{}
	_ OutputReader = (*runtime.OutputReader)(nil)
	_ OutputLog    = (*runtime.OutputLog)(nil)
	_ StdinWriter  = (*runtime.StdinWriter)(nil)
	_ Subscription = (*runtime.Subscription)(nil)
)
