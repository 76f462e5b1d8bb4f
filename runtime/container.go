package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// orderTimeout bounds one runtime command run for an order.
const orderTimeout = 60 * time.Second

// Container is one container and its processes. Reads (state, status, pids)
// come from memory and the cgroup files; orders run the runtime one at a
// time per container.
type Container struct {
	rt   *Runtime
	id   string
	dir  string
	spec []byte // the bundle's config.json as at create
	cli  *runtimeCLI
	log  logrus.FieldLogger
	bus  *bus

	// evMu orders this container's events: an event that happens on its
	// own (an exit, an OOM) while a start is in flight is held back until
	// the start's own event is out, so a watcher never sees a process
	// exit before it started.
	evMu    sync.Mutex
	holding bool
	held    []Event

	ops sync.Mutex // serialises orders; reads never take it

	mu      sync.RWMutex
	rec     containerRecord
	state   State
	exited  *time.Time
	cg      cgroupDirs
	init    *Process
	procs   map[string]*Process // init and every exec, by name
	deleted bool

	oom oomWatch

	// statFiles keeps the cgroup files the stats file reads open, while
	// statLRU (the runtime's) lets it.
	statFiles statFiles
	statLRU   *statLRU
}

// Deleted reports whether the container has been deleted (its id may
// name a new container by now).
func (c *Container) Deleted() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.deleted
}

// ID is the container id.
func (c *Container) ID() string { return c.id }

// State is the lifecycle state, from memory.
func (c *Container) State() State {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state
}

// Init is the container's init process.
func (c *Container) Init() *Process { return c.init }

// Spec is the OCI spec the container was created from (JSON).
func (c *Container) Spec() []byte { return c.spec }

// Bundle is the bundle path.
func (c *Container) Bundle() string { return c.rec.Bundle }

// RuntimeName is the runtime's name ("runc").
func (c *Container) RuntimeName() string { return c.rec.Runtime }

// Labels are the --label pairs given at create.
func (c *Container) Labels() map[string]string { return c.rec.Labels }

// Pid is init's host pid, or 0 once the container is stopped.
func (c *Container) Pid() int {
	if c.State() == Stopped {
		return 0
	}
	return c.init.Pid()
}

// Pids lists every process of the container from its cgroup, ascending;
// none once it is stopped.
func (c *Container) Pids() ([]int, error) {
	if c.State() == Stopped {
		return nil, nil
	}
	return c.cgroups().pids()
}

// cgroups finds the container's cgroup directories on first use (from init's
// /proc/PID/cgroup, while init lives) and remembers them: they are not
// needed to create a container, so they are not looked up on that path.
func (c *Container) cgroups() cgroupDirs {
	c.mu.RLock()
	cg := c.cg
	c.mu.RUnlock()
	if cg.procs != "" || !c.init.alive() {
		return cg
	}
	cg, err := cgroupDirsOf(c.init.Pid())
	if err != nil || !c.init.alive() { // the pid may have been reused meanwhile
		return cgroupDirs{}
	}
	c.mu.Lock()
	c.cg = cg
	c.mu.Unlock()
	return cg
}

// Status is the container's status file.
type Status struct {
	ID          string            `json:"id"`
	State       State             `json:"state"`
	Pid         int               `json:"pid"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Runtime     string            `json:"runtime"`
	RuntimePath string            `json:"runtime_path"`
	RuntimeArgs []string          `json:"runtime_args"`
	OCIVersion  string            `json:"oci_version"`
	Created     time.Time         `json:"created"`
	Started     *time.Time        `json:"started,omitempty"`
	Exited      *time.Time        `json:"exited,omitempty"`
	ExitStatus  json.RawMessage   `json:"exit_status,omitempty"`
	ExitReason  string            `json:"exit_reason,omitempty"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// Resources are the limits as ctrfs applied them: the bundle's
	// linux.resources with every update merged in (the kernel's own
	// figures are in stats).
	Resources *specs.LinuxResources `json:"resources"`
	// RestoredFrom is the checkpoint directory the container was
	// restored from, if it was.
	RestoredFrom string `json:"restored_from,omitempty"`
}

// Status gathers the status from memory.
func (c *Container) Status() Status {
	c.mu.RLock()
	rec, state, exited := c.rec, c.state, c.exited
	c.mu.RUnlock()
	s := Status{
		ID: c.id, State: state, Bundle: rec.Bundle, Rootfs: rec.Rootfs,
		Runtime: rec.Runtime, RuntimePath: rec.RuntimePath, RuntimeArgs: rec.RuntimeArgs,
		OCIVersion: rec.OCIVersion, Created: rec.Created, Started: rec.Started, Exited: exited,
		Labels: rec.Labels, Annotations: rec.Annotations, Resources: rec.Resources,
		RestoredFrom: rec.RestoredFrom,
	}
	if s.Resources == nil {
		s.Resources = &specs.LinuxResources{}
	}
	if s.RuntimeArgs == nil {
		s.RuntimeArgs = []string{}
	}
	if s.Labels == nil {
		s.Labels = map[string]string{}
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if state != Stopped {
		s.Pid = c.init.Pid()
	}
	if ex := c.init.exitRecord(); ex != nil && state == Stopped {
		if ex.Unknown {
			s.ExitStatus = json.RawMessage("null")
		} else {
			s.ExitStatus = json.RawMessage(strconv.Itoa(ex.Status))
		}
		s.ExitReason = ex.Reason
	}
	return s
}

// setState moves to state to; stopped is final, and a deleted container
// changes no more.
func (c *Container) setState(to State) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Stopped || c.deleted {
		return
	}
	c.state = to
}

// begin takes the order lock and checks the order against the state.
func (c *Container) begin(ctx context.Context, order Order) (context.Context, func(), error) {
	c.ops.Lock()
	c.mu.RLock()
	state, deleted := c.state, c.deleted
	c.mu.RUnlock()
	if deleted {
		c.ops.Unlock()
		return nil, nil, Errorf(KindNotFound, "%s: no such container %q", order, c.id)
	}
	if err := state.check(order, c.id); err != nil {
		c.ops.Unlock()
		return nil, nil, err
	}
	ctx, cancel := orderContext(ctx, orderTimeout)
	return ctx, func() { cancel(); c.ops.Unlock() }, nil
}

// publish sends an event of this container now (from an order).
func (c *Container) publish(e Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	c.send(e)
}

// happened publishes an event that happened on its own, unless a start is
// in flight: then it waits for the start's own event (see evMu).
func (c *Container) happened(e Event) {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	if c.holding {
		c.held = append(c.held, e)
		return
	}
	c.send(e)
}

func (c *Container) send(e Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	e.ID = c.id
	c.bus.publish(e)
}

// holdEvents holds back events that happen on their own until the
// returned release is called.
func (c *Container) holdEvents() (release func()) {
	c.evMu.Lock()
	c.holding = true
	c.evMu.Unlock()
	return func() {
		c.evMu.Lock()
		defer c.evMu.Unlock()
		c.holding = false
		for _, e := range c.held {
			c.send(e)
		}
		c.held = nil
	}
}

// failed publishes an error event for an order the runtime refused, and
// returns err.
func (c *Container) failed(order Order, err error) error {
	c.publish(Event{Type: EventError, Message: string(order) + ": " + err.Error()})
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
	c.setState(Running)
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
	c.setState(Paused)
	c.publish(Event{Type: EventPause})
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
	c.setState(Running)
	c.publish(Event{Type: EventResume})
	return nil
}

// Kill sends sig to init, or with all to every process of the container.
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
	if p == c.init {
		go c.statLRU.forget(&c.statFiles) // the cgroups are gone; not on the exit path
		c.mu.Lock()
		at := rec.ExitedAt
		c.exited = &at
		if !c.deleted {
			c.state = Stopped
		}
		c.mu.Unlock()
	}
	c.happened(p.exitEvent(rec))
	c.log.WithFields(logrus.Fields{"process": p.name, "status": p.ExitText(), "reason": rec.Reason}).Info("exited")
}

// concludeLostExit decides what to record when a shim died without writing
// the exit status. If the process still runs, nothing supervises it any
// more: ctrfs kills it — for init, the container, so that "stopped" is
// true — and records that kill. If it is already gone, its status is lost:
// "unknown", never a made-up number.
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

// orderContext is the context an order runs under: the writer's values but
// never its cancellation, since an order abandoned halfway (a runc create
// without its shim watched, a delete without its directory removed) would
// leave half-made state; bounded by d instead.
func orderContext(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), d)
}
