// Package runtime supervises containers: it creates them through one shim
// per process, keeps their state in memory and in the state directory,
// watches the shims, and runs the OCI runtime for orders. It knows nothing
// of FUSE.
package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// DefaultLogMaxSize bounds each output log of a process.
const DefaultLogMaxSize = 8 << 20

// MinLogMaxSize is the smallest bound taken: a log is trimmed in whole
// 4 KiB blocks, so a smaller one would keep next to nothing.
const MinLogMaxSize = 64 << 10

// createTimeout bounds a create: starting the shim and the runtime's create.
const createTimeout = 2 * time.Minute

// Config configures a Runtime.
type Config struct {
	// StateDir is the state directory (default /run/ctrfs).
	StateDir string
	// Runtime is the default OCI runtime, a name looked up in $PATH or a path.
	Runtime string
	// ShimPath is the ctrfs-shim binary.
	ShimPath string
	// LogMaxSize bounds each of a process's stdout and stderr logs.
	LogMaxSize int64
	// EventBuffer is how many unread events a subscriber may hold before
	// it is told it overflowed (default DefaultSubscriberBuffer).
	EventBuffer int
	Log         logrus.FieldLogger
}

// Runtime is the set of containers.
type Runtime struct {
	cfg         Config
	runtimeRoot string
	version     string
	mon         *monitor
	events      *bus
	statLRU     *statLRU
	oomNotify   oomInotify // cgroup v2 only
	logs        *logWatch
	shims       *shimLauncher
	lock        *os.File // flock on <state>/lock: one daemon per state dir
	log         logrus.FieldLogger

	mu         sync.RWMutex
	containers map[string]*Container
	pending    map[string]bool // ids whose create or delete is under way
}

// New prepares the state directory and checks the runtime and the shim.
func New(cfg Config) (*Runtime, error) {
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.LogMaxSize <= 0 {
		cfg.LogMaxSize = DefaultLogMaxSize
	}
	if cfg.LogMaxSize < MinLogMaxSize {
		return nil, fmt.Errorf("--log-max-size %d: at least %d bytes", cfg.LogMaxSize, MinLogMaxSize)
	}
	if cfg.Runtime == "" {
		cfg.Runtime = "runc"
	}
	if cfg.EventBuffer <= 0 {
		cfg.EventBuffer = DefaultSubscriberBuffer
	}
	path, err := exec.LookPath(cfg.Runtime)
	if err != nil {
		return nil, fmt.Errorf("OCI runtime %q not found (install it: apt-get install -y runc)", cfg.Runtime)
	}
	if _, err := os.Stat(cfg.ShimPath); err != nil {
		return nil, fmt.Errorf("shim not found: %w (build it: make build)", err)
	}
	// Every path handed to a shim or the runtime must be absolute: they do
	// not run in the daemon's working directory.
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		return nil, err
	}
	if cfg.ShimPath, err = filepath.Abs(cfg.ShimPath); err != nil {
		return nil, err
	}
	if strings.ContainsRune(cfg.Runtime, '/') {
		if cfg.Runtime, err = filepath.Abs(cfg.Runtime); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(cfg.StateDir, runtimeRootDir)
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	lock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	mon, err := newMonitor()
	if err != nil {
		return nil, err
	}
	logs, err := newLogWatch()
	if err != nil {
		return nil, err
	}
	r := &Runtime{
		cfg: cfg, runtimeRoot: root, mon: mon, events: newBus(cfg.EventBuffer), logs: logs, log: cfg.Log, lock: lock,
		statLRU:    &statLRU{max: maxKeptStatFiles},
		shims:      &shimLauncher{path: cfg.ShimPath},
		containers: map[string]*Container{}, pending: map[string]bool{},
	}
	r.version = runtimeVersion(path)
	return r, nil
}

// lockStateDir takes an exclusive flock on <state>/lock, so that two daemons
// never act on one state directory (the second would undo the first one's
// creates in progress, and both would record every exit). The lock file
// names the holder's pid. The fd is close-on-exec: no shim holds the lock.
func lockStateDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(f.Name())
		f.Close()
		if err == unix.EWOULDBLOCK {
			return nil, fmt.Errorf("state directory %s is in use by another ctrfs (pid %s)", dir, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock state directory %s: %w", dir, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(fmt.Sprintf("%d\n", os.Getpid())), 0)
	return f, nil
}

// runtimeVersion asks the runtime its version, once, at start.
func runtimeVersion(path string) string {
	out, err := exec.Command(path, "--version").Output()
	name := filepath.Base(path)
	if err != nil {
		return name + " unknown"
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if v, ok := strings.CutPrefix(first, name+" version "); ok {
		return name + " " + strings.TrimSpace(v)
	}
	return strings.TrimSpace(first)
}

// RuntimeVersion is "NAME VERSION" of the default runtime.
func (r *Runtime) RuntimeVersion() string { return r.version }

// Get returns the container with this id.
func (r *Runtime) Get(id string) (*Container, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.containers[id]
	return c, ok
}

// List returns every container, sorted by id.
func (r *Runtime) List() []*Container {
	r.mu.RLock()
	out := make([]*Container, 0, len(r.containers))
	for _, c := range r.containers {
		out = append(out, c)
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// CreateRequest is what `create` and `run` ask for.
type CreateRequest struct {
	ID          string
	Bundle      string
	Start       bool // run: create and start at once
	Labels      map[string]string
	Runtime     string // empty: the daemon's default
	RuntimeArgs []string
	NoPivot     bool
	// Checkpoint, when set, restores the container from that checkpoint
	// (runc restore): it comes back running, whether created or run.
	Checkpoint string
	// CheckpointDir is where the checkpoint is; "" for <bundle>/checkpoints.
	CheckpointDir string
	// Stdin gives init a stdin fed from processes/init/stdin.
	Stdin bool
	// TTY asks for init on a terminal, which the bundle's config.json must
	// say too ("terminal": true): runc takes it from there. A bundle that
	// says so gets a terminal without the flag.
	TTY bool
}

// reservedIDs are names the mount's root ("ctl", "version", "events") or the
// state directory ("runc", "lock") already use.
var reservedIDs = map[string]bool{"ctl": true, "version": true, "events": true, runtimeRootDir: true, lockFile: true}

var labelKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$`)

// reservedRuntimeArgs are the runtime's global flags that ctrfs sets itself.
var reservedRuntimeArgs = []string{"--root", "--log", "--log-format"}

// Check validates everything in the request that can be checked without
// touching the host: the parser calls it so a whole write is checked before
// any of it runs.
func (req *CreateRequest) Check() error {
	if err := CheckName("container id", req.ID); err != nil {
		return err
	}
	if reservedIDs[req.ID] {
		return Errorf(KindInvalid, "container id %q is reserved: the mount's root or the state directory uses that name", req.ID)
	}
	if !filepath.IsAbs(req.Bundle) {
		return Errorf(KindInvalid, "bundle path %q must be absolute", req.Bundle)
	}
	for k, v := range req.Labels {
		if !labelKeyPattern.MatchString(k) {
			return Errorf(KindInvalid, "invalid label key %q: must match %s", k, labelKeyPattern)
		}
		if strings.ContainsAny(v, "\n\x00") {
			return Errorf(KindInvalid, "label %q: value holds a newline or NUL", k)
		}
	}
	for _, a := range req.RuntimeArgs {
		if !strings.HasPrefix(a, "--") || len(a) < 3 {
			return Errorf(KindInvalid, "runtime arg %q: must be a --flag", a)
		}
		name, _, _ := strings.Cut(a, "=")
		for _, r := range reservedRuntimeArgs {
			if name == r {
				return Errorf(KindInvalid, "runtime arg %q: ctrfs sets %s itself", a, r)
			}
		}
	}
	if strings.ContainsRune(req.Runtime, 0) {
		return Errorf(KindInvalid, "invalid runtime name")
	}
	if req.Checkpoint != "" {
		if err := CheckName("checkpoint name", req.Checkpoint); err != nil {
			return err
		}
	}
	if req.CheckpointDir != "" {
		if req.Checkpoint == "" {
			return Errorf(KindInvalid, "--checkpoint-dir without --checkpoint")
		}
		if !filepath.IsAbs(req.CheckpointDir) || strings.ContainsRune(req.CheckpointDir, 0) {
			return Errorf(KindInvalid, "checkpoint directory %q must be an absolute path", req.CheckpointDir)
		}
	}
	return nil
}

// readBundle reads and parses the bundle's config.json.
func readBundle(bundle string) ([]byte, *specs.Spec, error) {
	st, err := os.Stat(bundle)
	if err != nil || !st.IsDir() {
		return nil, nil, Errorf(KindInvalid, "bundle %q is not a directory", bundle)
	}
	raw, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, nil, Errorf(KindInvalid, "bundle %q has no readable config.json", bundle)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, nil, Errorf(KindInvalid, "bundle %q: config.json is not valid JSON: %v", bundle, err)
	}
	if spec.Process == nil {
		return nil, nil, Errorf(KindInvalid, "bundle %q: config.json has no process", bundle)
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, nil, Errorf(KindInvalid, "bundle %q: config.json has no root.path", bundle)
	}
	return raw, &spec, nil
}

// verb is the ctl verb of the request, for messages.
func (req *CreateRequest) verb() string {
	if req.Start {
		return "run"
	}
	return "create"
}

// reserve claims id for a create, or fails with EEXIST.
func (r *Runtime) reserve(id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[id]; ok || r.pending[id] {
		return Errorf(KindExists, "container %q already exists", id)
	}
	r.pending[id] = true
	return nil
}

func (r *Runtime) unreserve(id string) {
	r.mu.Lock()
	delete(r.pending, id)
	r.mu.Unlock()
}

// Create makes a container (and with req.Start starts it). On any failure
// nothing is left behind: no directory, no runtime state, no shim.
func (r *Runtime) Create(ctx context.Context, req CreateRequest) (*Container, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	raw, spec, err := readBundle(req.Bundle)
	if err != nil {
		return nil, err
	}
	rtName := req.Runtime
	if rtName == "" {
		rtName = r.cfg.Runtime
	}
	rtPath, err := exec.LookPath(rtName)
	if err != nil {
		return nil, Errorf(KindInvalid, "runtime %q not found", rtName)
	}
	if rtPath, err = filepath.Abs(rtPath); err != nil {
		return nil, err
	}
	var restore *proto.Restore
	if req.Checkpoint != "" {
		if restore, err = restoreFrom(&req); err != nil {
			return nil, err
		}
		req.Start = true // runc restore brings it back running
	}
	if err := r.reserve(req.ID); err != nil {
		return nil, err
	}
	defer r.unreserve(req.ID)

	dir := filepath.Join(r.cfg.StateDir, req.ID)
	if _, err := os.Lstat(dir); err == nil {
		return nil, Errorf(KindExists, "container %q: state directory %s is in the way", req.ID, dir)
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(req.Bundle, rootfs)
	}
	rec := containerRecord{
		ID: req.ID, Bundle: filepath.Clean(req.Bundle), Rootfs: rootfs,
		Runtime: filepath.Base(rtName), RuntimePath: rtPath, RuntimeArgs: req.RuntimeArgs,
		NoPivot: req.NoPivot, Labels: req.Labels, Annotations: spec.Annotations,
		OCIVersion: spec.Version, Created: time.Now().UTC(),
	}
	if spec.Linux != nil {
		rec.Resources = spec.Linux.Resources
	}
	if restore != nil {
		rec.RestoredFrom = restore.Path
	}
	if req.TTY && !spec.Process.Terminal {
		return nil, Errorf(KindInvalid, "%s: --tty: bundle %q says \"terminal\": false in config.json; init runs on a terminal when the bundle says \"terminal\": true", req.verb(), req.Bundle)
	}
	c := r.newContainer(rec, raw)
	procSpec, _ := processSpecOf(raw)
	stdio := proto.Config{Stdin: req.Stdin, Terminal: spec.Process.Terminal}
	c.init = newProcess(c, initProcess, filepath.Join(dir, initProcess), procSpec, stdio)
	c.addProcess(c.init)

	fail := func(err error) (*Container, error) {
		r.undoCreate(req.ID, rtPath)
		return nil, err
	}
	if err := os.MkdirAll(c.init.dir, 0o700); err != nil {
		return fail(err)
	}
	if err := writeFileAtomic(filepath.Join(dir, specCopyFile), raw, 0o600); err != nil {
		return fail(err)
	}
	action := proto.ActionCreate
	switch {
	case restore != nil:
		action = proto.ActionRestore
	case req.Start:
		action = proto.ActionRun
	}
	ctx, cancel := orderContext(ctx, createTimeout)
	defer cancel()
	tShim := time.Now()
	_, err = r.shims.launch(ctx, c.init.dir, proto.Config{
		ID: req.ID, Process: initProcess, Action: action, Bundle: rec.Bundle,
		Runtime: rtPath, RuntimeRoot: r.runtimeRoot, RuntimeArgs: req.RuntimeArgs,
		NoPivot: req.NoPivot, LogMaxSize: r.cfg.LogMaxSize, Restore: restore,
		Stdin: stdio.Stdin, Terminal: stdio.Terminal,
	})
	if err != nil && restore != nil {
		// The shim reports the errors of restore.log apart.
		msg, logErrors := restoreFailure(err)
		return fail(Errorf(KindRuntime, "restore: %s", explainCRIU(msg, logErrors, proto.RestoreLog)))
	}
	if err != nil {
		return fail(Errorf(KindRuntime, "create: %v", err))
	}
	if err := c.init.readPidFile(); err != nil {
		return fail(Errorf(KindInternal, "create: %v", err))
	}
	c.state = Created
	if req.Start {
		c.state = Running
		started := time.Now().UTC()
		c.rec.Started = &started
	}
	// state.json last: its presence marks a finished create (see Load).
	if err := writeJSONAtomic(filepath.Join(dir, recordFile), c.rec); err != nil {
		return fail(err)
	}
	// The events go out before the exit fifo is watched: from then on an
	// exit may be published at any moment, and it must come after them.
	r.mu.Lock()
	r.containers[req.ID] = c
	r.mu.Unlock()
	c.publish(Event{Time: rec.Created, Type: EventCreate, Process: initProcess, Pid: c.init.Pid()})
	if req.Start {
		c.publish(Event{Type: EventStart, Process: initProcess, Pid: c.init.Pid()})
	}
	if err := c.watchShim(c.init); err != nil {
		// The shim runs but cannot be watched: nothing would ever record
		// its exit. Undo it all, as for any failed create.
		r.mu.Lock()
		delete(r.containers, req.ID)
		r.mu.Unlock()
		c.publish(Event{Type: EventDelete})
		return fail(err)
	}
	go c.watchOOM(r)
	c.log.WithFields(logrus.Fields{"pid": c.init.Pid(), "took": time.Since(rec.Created).String(), "shim_took": time.Since(tShim).String()}).Info("created")
	return c, nil
}

func (r *Runtime) newContainer(rec containerRecord, spec []byte) *Container {
	c := &Container{
		rt: r, id: rec.ID, dir: filepath.Join(r.cfg.StateDir, rec.ID), spec: spec, rec: rec,
		cli: newRuntimeCLI(rec.RuntimePath, r.runtimeRoot, rec.RuntimeArgs),
		log: r.log.WithField("id", rec.ID), bus: r.events, statLRU: r.statLRU,
	}
	c.loadOOM()
	return c
}

// shimExitWait bounds how long a delete waits for a killed container's
// shim to record the exit.
const shimExitWait = 15 * time.Second

// Delete removes a container: created or stopped ones, or with force any.
// It takes the container, not its id, so that a stale handle on a deleted
// container can never delete a new one that reuses the id.
func (r *Runtime) Delete(ctx context.Context, c *Container, force bool) error {
	id := c.id
	c.ops.Lock()
	defer c.ops.Unlock()
	c.mu.RLock()
	state, deleted := c.state, c.deleted
	c.mu.RUnlock()
	if deleted {
		return Errorf(KindNotFound, "delete: no such container %q", id)
	}
	if !force {
		if err := state.check(OrderDelete, id); err != nil {
			return err
		}
	}
	ctx, cancel := orderContext(ctx, orderTimeout)
	defer cancel()
	if state == Paused {
		// Signals to a frozen container wait until it thaws.
		c.cli.kill(ctx, id, syscall.SIGKILL, true)
		c.cli.resume(ctx, id)
	}
	if err := c.cli.delete(ctx, id, force || state != Stopped); err != nil {
		return c.failed(OrderDelete, err)
	}
	deadline := time.After(shimExitWait)
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
		p.signal(syscall.SIGKILL)
		select {
		case <-p.Done():
		case <-deadline:
			return Errorf(KindInternal, "delete: container %q: the shim of process %q did not exit in %s", id, p.name, shimExitWait)
		}
	}
	c.mu.Lock()
	c.deleted = true
	c.mu.Unlock()
	// The directory goes before the id is free again, so a new create of
	// the same id never finds it in the way.
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

func exitStatusNow(status, signal int) proto.ExitStatus {
	return proto.ExitStatus{Status: status, Signal: signal, ExitedAt: time.Now().UTC()}
}
