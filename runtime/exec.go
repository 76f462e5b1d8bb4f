package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
)

// Process returns the process with this name (init included), or nil.
func (c *Container) Process(name string) *Process {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.procs[name]
}

// Processes returns init and every exec, sorted by name.
func (c *Container) Processes() []*Process {
	c.mu.RLock()
	out := make([]*Process, 0, len(c.procs))
	for _, p := range c.procs {
		out = append(out, p)
	}
	c.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// execs returns every process but init.
func (c *Container) execs() []*Process {
	var out []*Process
	for _, p := range c.Processes() {
		if p != c.init {
			out = append(out, p)
		}
	}
	return out
}

// addProcess lists p.
func (c *Container) addProcess(p *Process) {
	c.mu.Lock()
	if c.procs == nil {
		c.procs = map[string]*Process{}
	}
	c.procs[p.name] = p
	c.mu.Unlock()
}

// Exec starts one more process in the running container, through a shim of
// its own (`runc exec --detach`). The name must be free: a process keeps
// its name, exited or not, until it is removed. On failure nothing is left
// behind.
func (c *Container) Exec(ctx context.Context, req ExecRequest) (*Process, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	ctx, end, err := c.begin(ctx, OrderExec)
	if err != nil {
		return nil, err
	}
	defer end()
	if c.Process(req.Name) != nil {
		return nil, Errorf(KindExists, "exec: container %q already has a process %q", c.id, req.Name)
	}
	spec, ps, err := buildExecSpec(c.init.Spec(), &req)
	if err != nil {
		return nil, err
	}
	if err := checkLogDir("exec", req.LogPath); err != nil {
		return nil, err
	}
	dir := filepath.Join(c.dir, req.Name)
	if _, err := os.Lstat(dir); err == nil {
		return nil, Errorf(KindExists, "exec: process %q: %s is in the way", req.Name, dir)
	}
	cfg := proto.Config{
		ID: c.id, Process: req.Name, Action: proto.ActionExec, Bundle: c.rec.Bundle,
		Runtime: c.rec.RuntimePath, RuntimeRoot: c.rt.runtimeRoot, RuntimeArgs: c.rec.RuntimeArgs,
		LogMaxSize: shimLogMax(c.rt.logMaxSize(req.LogMaxSize, c.rec.LogMaxSize)), Spec: spec, Stdin: req.Stdin, Terminal: ps.Terminal,
		LogPath: req.LogPath,
	}
	p := newProcess(c, req.Name, dir, spec, cfg)
	t0 := time.Now()
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, Errorf(KindInternal, "exec: %w", err)
	}
	if _, err := c.rt.shims.launch(ctx, dir, cfg); err != nil {
		c.undoExec(dir)
		if KindOf(err) == KindRuntime {
			err = Errorf(KindRuntime, "exec: %s: %w", req.Name, err)
			c.publish(Event{Type: EventError, Process: req.Name, Message: err.Error()})
			return nil, err
		}
		return nil, Errorf(KindInternal, "exec: %s: %w", req.Name, err)
	}
	if err := p.readPidFile(); err != nil {
		c.undoExec(dir)
		return nil, Errorf(KindInternal, "exec: %w", err)
	}
	c.addProcess(p)
	// The event goes out before the exit fifo is watched: the exit's
	// event, which may come at any moment from then on, must follow it.
	c.publish(Event{Type: EventExec, Process: req.Name, Pid: p.Pid()})
	if err := c.watchShim(p); err != nil {
		// Without the watch its exit would never be seen: end it now.
		if kerr := p.signal(syscall.SIGKILL); kerr != nil && !errors.Is(kerr, errGone) {
			c.log.WithError(kerr).WithField("process", req.Name).Warn("exec: cannot kill a process whose shim is not watched")
		}
		c.recordExit(p, damaged(err))
		p.markDone()
	}
	c.log.WithFields(logrus.Fields{"process": req.Name, "pid": p.Pid(), "took": time.Since(t0).String()}).Info("exec")
	return p, nil
}

// undoExec takes back a failed exec: its shim and what it started (the
// shim leads a process group of its own), and its directory.
func (c *Container) undoExec(dir string) {
	c.rt.killShimGroup(dir)
	c.rt.removeDir(dir)
}

// RemoveProcess forgets an exec that has exited, and removes its
// directory, output logs included. The name is free again afterwards.
// init lasts as long as the container.
func (c *Container) RemoveProcess(name string) error {
	c.ops.Lock()
	defer c.ops.Unlock()
	deleted := c.Deleted()
	p := c.Process(name)
	if deleted || p == nil {
		return Errorf(KindNotFound, "remove: no process %q in container %q", name, c.id)
	}
	if p == c.init {
		return Errorf(KindBusy, "remove: init lasts as long as container %q: delete the container", c.id)
	}
	if p.State() != ProcExited {
		return Errorf(KindBusy, "remove: process %q is running (kill it first)", name)
	}
	// Its shim may still be draining the output into the directory: the
	// directory goes, and the name is free, only once the shim is gone.
	select {
	case <-p.Done():
	case <-time.After(shimExitWait):
		return Errorf(KindBusy, "remove: process %q: its shim has not finished in %s", name, shimExitWait)
	}
	c.mu.Lock()
	delete(c.procs, name)
	c.mu.Unlock()
	c.rt.removeDir(p.dir)
	c.log.WithField("process", name).Info("process removed")
	return nil
}
