package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/ctrfs/ctrfs/internal/atomicfile"
	"github.com/ctrfs/ctrfs/internal/safeio"
	"github.com/ctrfs/ctrfs/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

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
	// Image, instead of Bundle, runs the image of this reference or digest
	// from the image store, with a bundle made in the state directory
	// (image.go); Env (K=V), Workdir, User and Args are added to its config.
	Image   string
	Env     []string
	Workdir string
	User    string
	Args    []string
	// UserGroups says whether the user's groups of the image's /etc/group
	// are added to its additional gids: "" or "image" (they are), "none"
	// (they are not; Kubernetes' Strict supplemental groups policy).
	UserGroups string
	// LogMaxSize bounds the output logs of init and, unless an exec says
	// otherwise, of the execs (0: no bound); nil: the daemon's.
	LogMaxSize *int64
	// LogPath, when set, is an absolute path where init's shim writes its
	// output again in the CRI log format (logpath.go).
	LogPath string
	// Config, with Image, is the caller's whole OCI config.json (an
	// absolute path), taken instead of the generated one: ctrfs sets only
	// root.path (imageconfig.go).
	Config string
	// ImageMounts, with Image, mount images of the store read-only into
	// the container (imagemount.go).
	ImageMounts []ImageMount
}

// reservedIDs are names the mount's root ("ctl", "version", "events",
// "images", "ps") or the state directory ("runc", "lock") already use.
var reservedIDs = map[string]bool{"ctl": true, "version": true, "events": true, "images": true, "ps": true, runtimeRootDir: true, lockFile: true}

var labelKeyPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_./-]{0,127}$`)

// reservedRuntimeArgs are the runtime's global flags that ctrfs sets itself.
var reservedRuntimeArgs = []string{"--root", "--log", "--log-format"}

// Check validates everything in the request that can be checked without
// touching the host: the parser calls it so a whole write is checked before
// any of it runs.
func (req *CreateRequest) Check() error {
	if err := checkLogMaxSize(req.LogMaxSize); err != nil {
		return err
	}
	if err := CheckName("container id", req.ID); err != nil {
		return err
	}
	if err := checkLogPath(req.verb(), req.LogPath); err != nil {
		return err
	}
	if reservedIDs[req.ID] {
		return Errorf(KindInvalid, "container id %q is reserved: the mount's root or the state directory uses that name", req.ID)
	}
	if err := req.checkImage(); err != nil {
		return err
	}
	if err := req.checkCallerConfig(); err != nil {
		return err
	}
	if req.Image == "" && !filepath.IsAbs(req.Bundle) {
		return Errorf(KindInvalid, "bundle path %q must be absolute", req.Bundle)
	}
	for k, v := range req.Labels {
		if !labelKeyPattern.MatchString(k) {
			return Errorf(KindInvalid, "invalid label key %q: must match %s", k, labelKeyPattern)
		}
		if strings.ContainsAny(v, "\n\x00") {
			return Errorf(KindInvalid, "label %q: value holds a newline or NUL", k)
		}
		if err := CheckUTF8("label "+k, v); err != nil {
			return err
		}
	}
	for _, s := range append([]string{req.Bundle, req.Runtime, req.CheckpointDir}, req.RuntimeArgs...) {
		if err := CheckUTF8(req.verb(), s); err != nil {
			return err
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

// maxBundleConfig caps a bundle's config.json. Real specs are a few KiB; a
// long seccomp profile brings one to a few hundred KiB.
const maxBundleConfig = 4 << 20

// readBundle reads and parses the bundle's config.json, which the bundle's
// owner controls: it must be a regular file of at most maxBundleConfig
// bytes, and a symlink only if it stays inside the bundle (never to
// /dev/zero, never out). A FIFO is refused at once, never waited on, and
// the read ends with ctx.
func readBundle(ctx context.Context, bundle string) ([]byte, *specs.Spec, fileID, error) {
	dir, err := safeio.OpenDir(-1, bundle, 0)
	if err != nil {
		return nil, nil, fileID{}, Errorf(KindInvalid, "bundle %q is not a directory: %w", bundle, err)
	}
	defer dir.Close()
	id, err := idOf(dir)
	if err != nil {
		return nil, nil, fileID{}, Errorf(KindInternal, "bundle %q: %w", bundle, err)
	}
	raw, err := safeio.ReadFile(ctx, int(dir.Fd()), "config.json", safeio.Beneath, maxBundleConfig)
	if err != nil {
		why := unreadable(err)
		kind := KindOf(why)
		if kind == KindNotFound { // the bundle is what is wrong
			kind = KindInvalid
		}
		return nil, nil, fileID{}, Errorf(kind, "bundle %q: config.json: %w", bundle, why)
	}
	spec, err := parseBundle(raw)
	if err != nil {
		return nil, nil, fileID{}, Errorf(KindInvalid, "bundle %q: %v", bundle, err)
	}
	return raw, spec, id, nil
}

// parseBundle parses a bundle's config.json and checks what ctrfs needs of it.
func parseBundle(raw []byte) (*specs.Spec, error) {
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, Errorf(KindInvalid, "config.json is not valid JSON: %v", err)
	}
	if spec.Process == nil {
		return nil, Errorf(KindInvalid, "config.json has no process")
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, Errorf(KindInvalid, "config.json has no root.path")
	}
	return &spec, nil
}

// unreadable says why a file a user pointed at cannot be read, as an
// error of its kind: a missing file is not found, a hostile one (a FIFO,
// a device, too large, a link out) invalid, a read past the deadline a
// timeout, a limit of the host (EMFILE, ENOMEM) internal.
func unreadable(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Errorf(KindNotFound, "does not exist")
	case errors.Is(err, safeio.ErrNotRegular), errors.Is(err, safeio.ErrTooLarge), errors.Is(err, safeio.ErrOutside),
		errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EISDIR):
		return Errorf(KindInvalid, "%v", err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return Errorf(KindInvalid, "not read in time (%v)", err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return Errorf(KindInvalid, "%v", err)
	}
	return Errorf(KindInternal, "%v", err)
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
	// The bundle is read under the order's deadline too.
	ctx, cancel := orderContext(ctx, createTimeout)
	defer cancel()
	if err := req.Check(); err != nil {
		return nil, err
	}
	if err := r.reserve(req.ID); err != nil {
		return nil, err
	}
	defer r.unreserve(req.ID)
	dir := filepath.Join(r.cfg.StateDir, req.ID)
	if _, err := os.Lstat(dir); err == nil {
		return nil, Errorf(KindExists, "container %q: state directory %s is in the way", req.ID, dir)
	}
	// From the first change to the host on, every failure undoes it all.
	changed, rtPath := false, r.cfg.Runtime
	fail := func(err error) (*Container, error) {
		if changed {
			r.undoCreate(req.ID, rtPath)
		}
		return nil, err
	}
	var image string
	if req.Image != "" {
		changed = true
		bundle, digest, err := r.makeImageBundle(&req)
		if err != nil {
			return fail(err)
		}
		req.Bundle, image = bundle, digest
		// What the image options said is in the bundle's config.json now.
		req.Image, req.Env, req.Workdir, req.User, req.Args, req.Config, req.UserGroups, req.ImageMounts = "", nil, "", "", nil, "", "", nil
	}
	plan, err := r.planCreate(ctx, req)
	if err != nil {
		return fail(err)
	}
	if plan.restoreDir != nil {
		// Held until the shim has run the runtime (launchInit returns).
		defer plan.restoreDir.Close()
	}
	req, rtPath = plan.req, plan.rtPath
	c, err := r.containerOf(plan)
	if err != nil {
		return fail(err)
	}
	c.rec.Image = image
	changed = true
	if err := os.MkdirAll(c.init.dir, 0o700); err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, specCopyFile), plan.raw, 0o600); err != nil {
		return fail(err)
	}
	tShim := time.Now()
	if err := r.launchInit(ctx, c, plan); err != nil {
		return fail(err)
	}
	if plan.restore != nil {
		if err := r.restoredCgroups(c); err != nil {
			return fail(err)
		}
	}
	if err := r.register(c, req.Start); err != nil {
		return fail(err)
	}
	c.log.WithFields(logrus.Fields{"pid": c.init.Pid(), "took": time.Since(c.rec.Created).String(), "shim_took": time.Since(tShim).String()}).Info("created")
	return c, nil
}

// createPlan is what a create works out before it touches the host.
type createPlan struct {
	req     CreateRequest
	raw     []byte // the bundle's config.json
	spec    *specs.Spec
	rtName  string // the runtime as asked for
	rtPath  string // and found
	restore *proto.Restore
	// restoredFrom is the checkpoint's path, restoreDir the checkpoint's
	// directory, held open while the shim restores from it (its
	// restore.Path is this fd through /proc).
	restoredFrom string
	restoreDir   *os.File
	// bundleID is the bundle directory's identity, as read.
	bundleID fileID
}

// planCreate checks the request, reads the bundle and finds the runtime
// and the checkpoint to restore, if any.
func (r *Runtime) planCreate(ctx context.Context, req CreateRequest) (*createPlan, error) {
	if err := req.Check(); err != nil {
		return nil, err
	}
	raw, spec, bundleID, err := readBundle(ctx, req.Bundle)
	if err != nil {
		return nil, err
	}
	plan := &createPlan{raw: raw, spec: spec, rtName: req.Runtime, bundleID: bundleID}
	if plan.rtName == "" {
		plan.rtName = r.cfg.Runtime
	}
	rtPath, err := exec.LookPath(plan.rtName)
	if err != nil {
		return nil, Errorf(KindInvalid, "runtime %q not found", plan.rtName)
	}
	if plan.rtPath, err = filepath.Abs(rtPath); err != nil {
		return nil, err
	}
	if req.Checkpoint != "" {
		if plan.restore, plan.restoredFrom, plan.restoreDir, err = restoreFrom(ctx, &req, bundleID); err != nil {
			return nil, err
		}
		plan.restore.CgroupsMode = restoreCgroupsMode(plan.rtPath)
		plan.restore.CgroupRoot = restoreCgroupRoot(spec, req.ID, req.RuntimeArgs, plan.restore.CgroupsMode)
		req.Start = true // runc restore brings it back running
	}
	plan.req = req
	return plan, nil
}

// containerOf builds the container of plan in memory, with its init.
func (r *Runtime) containerOf(plan *createPlan) (*Container, error) {
	req, spec := &plan.req, plan.spec
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(req.Bundle, rootfs)
	}
	rec := containerRecord{
		ID: req.ID, Bundle: filepath.Clean(req.Bundle), Rootfs: rootfs,
		Runtime: filepath.Base(plan.rtName), RuntimePath: plan.rtPath, RuntimeArgs: req.RuntimeArgs,
		NoPivot: req.NoPivot, Labels: req.Labels, Annotations: spec.Annotations,
		OCIVersion: spec.Version, Created: time.Now().UTC(), LogMaxSize: req.LogMaxSize,
	}
	if spec.Linux != nil {
		rec.Resources = spec.Linux.Resources
	}
	if plan.bundleID != (fileID{}) {
		id := plan.bundleID
		rec.BundleID = &id
	}
	if plan.restore != nil {
		rec.RestoredFrom = plan.restoredFrom
	}
	if req.TTY && !spec.Process.Terminal {
		return nil, Errorf(KindInvalid, "%s: --tty: bundle %q says \"terminal\": false in config.json; init runs on a terminal when the bundle says \"terminal\": true", req.verb(), req.Bundle)
	}
	procSpec, err := processSpecOf(plan.raw)
	if err != nil { // readBundle parsed it already: not expected
		return nil, Errorf(KindInvalid, "bundle %q: config.json: %w", req.Bundle, err)
	}
	c := r.newContainer(rec, plan.raw)
	stdio := proto.Config{Stdin: req.Stdin, Terminal: spec.Process.Terminal, LogPath: req.LogPath}
	c.init = newProcess(c, initProcess, filepath.Join(c.dir, initProcess), procSpec, stdio)
	c.addProcess(c.init)
	return c, nil
}

// launchInit starts init's shim, which runs the runtime's create (run,
// restore), and reads init's pid.
func (r *Runtime) launchInit(ctx context.Context, c *Container, plan *createPlan) error {
	req := &plan.req
	action := proto.ActionCreate
	switch {
	case plan.restore != nil:
		action = proto.ActionRestore
	case req.Start:
		action = proto.ActionRun
	}
	if err := checkLogDir(req.verb(), req.LogPath); err != nil {
		return err
	}
	_, err := r.shims.launch(ctx, c.init.dir, proto.Config{
		ID: req.ID, Process: initProcess, Action: action, Bundle: c.rec.Bundle,
		Runtime: plan.rtPath, RuntimeRoot: r.runtimeRoot, RuntimeArgs: req.RuntimeArgs,
		NoPivot: req.NoPivot, LogMaxSize: shimLogMax(r.logMaxSize(nil, req.LogMaxSize)), Restore: plan.restore,
		Stdin: c.init.stdin, Terminal: c.init.tty, LogPath: req.LogPath,
	})
	if err != nil && plan.restore != nil {
		// The shim reports the errors of restore.log apart.
		msg, logErrors := restoreFailure(err)
		return Errorf(KindRuntime, "restore: %s", explainCRIU(msg, logErrors, proto.RestoreLog))
	}
	if err != nil {
		return Errorf(KindRuntime, "create: %w", err)
	}
	if err := c.init.readPidFile(); err != nil {
		return Errorf(KindInternal, "create: %w", err)
	}
	return nil
}

// register settles the made container (created, or with started running),
// records it, lists it, publishes its events and watches its shim.
func (r *Runtime) register(c *Container, started bool) error {
	c.happen(eventCreate)
	if started {
		now := time.Now().UTC()
		c.rec.Started = &now
		c.happen(OrderStart)
	}
	// state.json last: its presence marks a finished create (see Load).
	if err := writeJSONAtomic(filepath.Join(c.dir, recordFile), c.rec); err != nil {
		return err
	}
	// The events go out before the exit fifo is watched: from then on an
	// exit may be published at any moment, and it must come after them.
	r.mu.Lock()
	r.containers[c.id] = c
	r.mu.Unlock()
	c.publish(Event{Time: c.rec.Created, Type: EventCreate, Process: initProcess, Pid: c.init.Pid()})
	if started {
		c.publish(Event{Type: EventStart, Process: initProcess, Pid: c.init.Pid()})
	}
	if err := c.watchShim(c.init); err != nil {
		// The shim runs but cannot be watched: nothing would ever record
		// its exit. Undo it all, as for any failed create.
		r.mu.Lock()
		delete(r.containers, c.id)
		r.mu.Unlock()
		c.publish(Event{Type: EventDelete})
		return err
	}
	go c.watchOOM(r)
	return nil
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
