package runtime

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
)

// Container is one container and its processes. Reads (state, status, pids)
// come from memory and the cgroup files; orders run the runtime one at a
// time per container.
//
// Lock order: ops before evMu before the event bus's locks (whose observer,
// the filesystem's, takes Runtime.mu); ops before mu. mu is a leaf: nothing
// else is locked, and nothing is run, while it is held. No lock but ops is
// held across a runtime command or a shim launch.
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
	holding bool    // guarded by evMu
	held    []Event // guarded by evMu

	// ops serialises orders; reads never take it. A wait for it ends
	// with the writer's interruption (see orderLock).
	ops   orderLock
	order Order // guarded by ops: the order under way
	began State // guarded by ops: the state it began in

	mu     sync.RWMutex // guards the fields below it
	rec    containerRecord
	state  State // changed by transitionLocked only
	exited *time.Time
	cg     cgroupDirs
	init   *Process
	procs  map[string]*Process // init and every exec, by name

	oom   oomWatch
	times containerTimes // when its files last changed (times.go)

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
	return c.state == deleted
}

// ID is the container id.
func (c *Container) ID() string { return c.id }

// State is the lifecycle state, from memory, as the files show it: a
// deleted container (seen through a handle kept open) reads as stopped.
func (c *Container) State() State {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.state.shown()
}

// shown is s as the files show it: they know no deleted.
func (s State) shown() State {
	if s == deleted {
		return Stopped
	}
	return s
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
	// LogMaxSize is the bound of init's output logs, and the execs'
	// unless they say otherwise (0: none, see logbound.go).
	LogMaxSize int64 `json:"log_max_size"`
	// Lost is how many bytes of init's stdout and stderr their logs let
	// go (punched out at the bound, or never written).
	Lost map[string]int64 `json:"lost"`
}

// Status gathers the status from memory.
func (c *Container) Status() Status {
	c.mu.RLock()
	rec, state, exited := c.rec, c.state.shown(), c.exited
	c.mu.RUnlock()
	s := Status{
		ID: c.id, State: state, Bundle: rec.Bundle, Rootfs: rec.Rootfs,
		Runtime: rec.Runtime, RuntimePath: rec.RuntimePath, RuntimeArgs: rec.RuntimeArgs,
		OCIVersion: rec.OCIVersion, Created: rec.Created, Started: rec.Started, Exited: exited,
		Labels: rec.Labels, Annotations: rec.Annotations, Resources: rec.Resources,
		RestoredFrom: rec.RestoredFrom, LogMaxSize: c.rt.logMaxSize(nil, rec.LogMaxSize), Lost: c.init.outputLost(),
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
