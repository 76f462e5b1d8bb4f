package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ctrfs/ctrfs/internal/criulog"
	"github.com/ctrfs/ctrfs/internal/safeio"
	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// Checkpoints are kept as containerd 0.2 kept them: <dir>/NAME/ holds
// config.json (CheckpointInfo) and the CRIU images, dir being
// <bundle>/checkpoints unless the user gives another.
const (
	checkpointsDirName   = "checkpoints"
	checkpointConfigFile = "config.json"
	// dumpLog is CRIU's log of a checkpoint, in the checkpoint's directory.
	dumpLog = "dump.log"
)

// CheckpointRequest is what `checkpoint NAME [opts]` (or mkdir) asks.
type CheckpointRequest struct {
	Name string
	// Dir is the directory to put NAME/ in; "" for <bundle>/checkpoints.
	Dir string
	// Exit stops the container once checkpointed; else it keeps running.
	Exit        bool
	TCP         bool // allow established TCP connections
	UnixSockets bool // allow external unix sockets
	Shell       bool // allow a shell job (a terminal)
	// EmptyNS are namespaces restored empty (runc knows only "network").
	EmptyNS []string
}

// Check validates the request without touching the host.
func (req *CheckpointRequest) Check() error {
	if err := CheckName("checkpoint name", req.Name); err != nil {
		return err
	}
	if req.Dir != "" && (!filepath.IsAbs(req.Dir) || strings.ContainsRune(req.Dir, 0)) {
		return Errorf(KindInvalid, "checkpoint directory %q must be an absolute path", req.Dir)
	}
	if err := CheckUTF8("checkpoint --dir", req.Dir); err != nil {
		return err
	}
	for _, ns := range req.EmptyNS {
		if ns != "network" {
			return Errorf(KindInvalid, "--empty-ns %q: runc restores only the network namespace empty", ns)
		}
	}
	return nil
}

// CheckpointInfo is a checkpoint's config.json, with containerd 0.2's
// field names.
type CheckpointInfo struct {
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	Exit        bool      `json:"exit"`
	TCP         bool      `json:"tcp"`
	UnixSockets bool      `json:"unixSockets"`
	Shell       bool      `json:"shell"`
	EmptyNS     []string  `json:"emptyNS,omitempty"`
}

// CheckpointDir is where the container's checkpoints are by default:
// <bundle>/checkpoints (the checkpoints/ directory of the tree).
func (c *Container) CheckpointDir() string {
	return filepath.Join(c.rec.Bundle, checkpointsDirName)
}

// Caps on what a checkpoint directory, which the bundle's owner controls,
// makes the daemon read: a checkpoint's config.json is a few hundred
// bytes, CRIU's dump.log rarely more than a few hundred KiB.
const (
	maxCheckpointConfig = 64 << 10
	maxDumpLog          = 4 << 20
	// checkpointReadTimeout bounds a read of a checkpoint's config.json
	// outside an order (ls, cat in checkpoints/).
	checkpointReadTimeout = 10 * time.Second
)

// openBundle opens the container's bundle directory, following the path
// given at create (the user who created it chose it), and checks that it
// is the directory the container was created with.
func (c *Container) openBundle() (*os.File, error) {
	return openBundleAs(c.rec.Bundle, c.rec.bundleID())
}

// bundleID is the bundle's recorded identity, zero when none is.
func (rec *containerRecord) bundleID() fileID {
	if rec.BundleID == nil {
		return fileID{}
	}
	return *rec.BundleID
}

// openCheckpointsDir opens <bundle>/checkpoints, which must be a real
// directory of the bundle, not a symlink: the bundle's owner may be
// anyone, and ctrfs (root) deletes in it. With create it is made when
// missing, and made says so. The bundle's fd is returned too (to remove
// what was made); the caller closes both.
func (c *Container) openCheckpointsDir(create bool) (bundle, dir *os.File, made bool, err error) {
	bundle, err = c.openBundle()
	if err != nil {
		return nil, nil, false, err
	}
	if create {
		if err := unix.Mkdirat(int(bundle.Fd()), checkpointsDirName, 0o755); err == nil {
			made = true
		} else if !errors.Is(err, unix.EEXIST) {
			bundle.Close()
			return nil, nil, false, &os.PathError{Op: "mkdir", Path: c.CheckpointDir(), Err: err}
		}
	}
	dir, err = safeio.OpenDir(int(bundle.Fd()), checkpointsDirName, safeio.Strict)
	if err != nil {
		if made {
			unix.Unlinkat(int(bundle.Fd()), checkpointsDirName, unix.AT_REMOVEDIR)
		}
		bundle.Close()
		return nil, nil, false, err
	}
	return bundle, dir, made, nil
}

// checkpointDirError is the error of a checkpoints directory that cannot
// be opened.
func checkpointDirError(what, dir string, err error) error {
	if sw := swappedBundle(what, err); sw != nil {
		return sw
	}
	why := unreadable(err)
	if KindOf(why) == KindInvalid {
		return Errorf(KindInvalid, "%s: %s: %v (it must be a directory of the bundle, not a symlink)", what, dir, why)
	}
	return Errorf(KindOf(why), "%s: %s: %v", what, dir, why)
}

// Checkpoint saves the container's processes with CRIU (runc checkpoint)
// into a new checkpoint; the container keeps running unless req.Exit. The
// checkpoint is made under a temporary name and renamed into place once
// complete, so a failure leaves nothing behind. All of it happens through
// a directory fd: the runtime is given the temporary directory as
// /proc/PID/fd/N, which no symlink swapped in by the bundle's owner can
// redirect. The order is recorded in the state directory while it runs,
// so that a daemon killed meanwhile undoes it at its next start.
func (c *Container) Checkpoint(ctx context.Context, req CheckpointRequest) error {
	if err := req.Check(); err != nil {
		return err
	}
	ctx, end, err := c.begin(ctx, OrderCheckpoint)
	if err != nil {
		return err
	}
	defer end()
	// With --exit the container's exit comes while this order runs: it
	// is held back until the checkpoint event is out.
	release := c.holdEvents()
	defer release()

	var bundle, dir *os.File
	var madeDir bool
	where := req.Dir
	if where == "" {
		where = c.CheckpointDir()
		if bundle, dir, madeDir, err = c.openCheckpointsDir(true); err != nil {
			return checkpointDirError("checkpoint", where, err)
		}
		defer bundle.Close()
	} else if dir, err = safeio.OpenDir(-1, where, 0); err != nil {
		return Errorf(KindNotFound, "checkpoint: directory %s does not exist", where)
	}
	defer dir.Close()
	dfd := int(dir.Fd())
	final := filepath.Join(where, req.Name)
	undoDir := func() {
		if madeDir {
			unix.Unlinkat(int(bundle.Fd()), checkpointsDirName, unix.AT_REMOVEDIR) // only if empty
		}
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, req.Name, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		undoDir()
		return Errorf(KindExists, "checkpoint: %s already exists", final)
	}
	if _, err := exec.LookPath("criu"); err != nil {
		undoDir()
		return c.failed(OrderCheckpoint, Errorf(KindRuntime,
			"checkpoint: criu is not installed, and runc checkpoints with it (apt-get install criu)"))
	}
	fl := &checkpointFlight{Dir: req.Dir, Tmp: fmt.Sprintf(".%s.tmp-%d", req.Name, time.Now().UnixNano()), MadeDir: madeDir, Was: c.State()}
	if err := fl.record(c.dir); err != nil {
		undoDir()
		return Errorf(KindInternal, "checkpoint: cannot record the order: %v", err)
	}
	tmp, err := makeCheckpointTmp(dfd, fl.Tmp, CheckpointInfo{
		Name: req.Name, Created: time.Now().UTC(), Exit: req.Exit, TCP: req.TCP,
		UnixSockets: req.UnixSockets, Shell: req.Shell, EmptyNS: req.EmptyNS,
	})
	undo := func() {
		safeio.RemoveAllAt(dfd, fl.Tmp)
		undoDir()
		fl.done(c.dir)
	}
	if err != nil {
		undo()
		return Errorf(KindInternal, "checkpoint: %v", err)
	}
	defer tmp.Close()
	if err := c.runCheckpoint(ctx, safeio.FdPath(tmp), &req, fl); err != nil {
		log, _ := safeio.ReadFile(ctx, int(tmp.Fd()), dumpLog, safeio.Strict, maxDumpLog)
		msg := explainCRIU(err.Error(), criulog.Errors(log), dumpLog)
		c.thawAfterFailedCheckpoint(fl.Was)
		undo()
		return c.failed(OrderCheckpoint, Errorf(KindRuntime, "%s", msg))
	}
	if err := unix.Renameat2(dfd, fl.Tmp, dfd, req.Name, unix.RENAME_NOREPLACE); err != nil {
		undo()
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return Errorf(KindExists, "checkpoint: %s was made meanwhile", final)
		}
		return Errorf(KindInternal, "checkpoint: %v", err)
	}
	fl.done(c.dir)
	c.publish(Event{Type: EventCheckpoint, Checkpoint: req.Name})
	c.log.WithField("checkpoint", final).Info("checkpointed")
	if req.Exit {
		// runc has killed the container: wait for the exit to be recorded,
		// so that state reads stopped once this order returns.
		select {
		case <-c.init.Done():
		case <-time.After(shimExitWait):
			c.log.Warn("checkpoint --exit: the exit was not recorded in time")
		}
	}
	return nil
}

// makeCheckpointTmp makes the temporary directory of a checkpoint below
// dfd, with its config.json, and opens it.
func makeCheckpointTmp(dfd int, name string, info CheckpointInfo) (*os.File, error) {
	if err := unix.Mkdirat(dfd, name, 0o755); err != nil {
		return nil, &os.PathError{Op: "mkdir", Path: name, Err: err}
	}
	tmp, err := safeio.OpenDir(dfd, name, safeio.Strict)
	if err != nil {
		return nil, err
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	fd, err := unix.Openat(int(tmp.Fd()), checkpointConfigFile, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		tmp.Close()
		return nil, &os.PathError{Op: "create", Path: checkpointConfigFile, Err: err}
	}
	f := os.NewFile(uintptr(fd), checkpointConfigFile)
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tmp.Close()
		return nil, err
	}
	return tmp, nil
}

// Checkpoints lists the names of the checkpoints in CheckpointDir, sorted:
// directories holding a regular config.json (not those still being made,
// nothing reached through a symlink).
func (c *Container) Checkpoints() ([]string, error) {
	bundle, dir, _, err := c.openCheckpointsDir(false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, checkpointDirError("checkpoints", c.CheckpointDir(), err)
	}
	defer bundle.Close()
	defer dir.Close()
	ents, err := dir.ReadDir(-1)
	if err != nil {
		return nil, Errorf(KindInternal, "checkpoints: %v", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || CheckName("checkpoint name", e.Name()) != nil {
			continue
		}
		if safeio.IsRegularAt(int(dir.Fd()), filepath.Join(e.Name(), checkpointConfigFile)) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// CheckpointConfig is the config.json of checkpoint name in CheckpointDir:
// a regular file, reached without a symlink, at most maxCheckpointConfig
// bytes.
func (c *Container) CheckpointConfig(name string) ([]byte, error) {
	if err := CheckName("checkpoint name", name); err != nil {
		return nil, err
	}
	bundle, dir, _, err := c.openCheckpointsDir(false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, Errorf(KindNotFound, "no checkpoint %q in %s", name, c.CheckpointDir())
		}
		return nil, checkpointDirError("checkpoint "+name, c.CheckpointDir(), err)
	}
	defer bundle.Close()
	defer dir.Close()
	return readCheckpointConfig(int(dir.Fd()), c.CheckpointDir(), name)
}

func readCheckpointConfig(dfd int, where, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), checkpointReadTimeout)
	defer cancel()
	b, err := safeio.ReadFile(ctx, dfd, filepath.Join(name, checkpointConfigFile), safeio.Strict, maxCheckpointConfig)
	if err != nil {
		why := unreadable(err)
		if KindOf(why) == KindNotFound {
			return nil, Errorf(KindNotFound, "no checkpoint %q in %s", name, where)
		}
		return nil, Errorf(KindOf(why), "checkpoint %q in %s: %s: %v", name, where, checkpointConfigFile, why)
	}
	return b, nil
}

// DeleteCheckpoint removes checkpoint name from CheckpointDir: renamed out
// of the way first, so that a removal that fails half-way leaves no
// half a checkpoint under its name, then removed through directory fds,
// so that a symlink inside never leads the removal out of the bundle.
func (c *Container) DeleteCheckpoint(name string) error {
	if err := CheckName("checkpoint name", name); err != nil {
		return err
	}
	bundle, dir, _, err := c.openCheckpointsDir(false)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Errorf(KindNotFound, "no checkpoint %q in %s", name, c.CheckpointDir())
		}
		return checkpointDirError("delete checkpoint "+name, c.CheckpointDir(), err)
	}
	defer bundle.Close()
	defer dir.Close()
	dfd := int(dir.Fd())
	if _, err := readCheckpointConfig(dfd, c.CheckpointDir(), name); err != nil {
		return err
	}
	gone := fmt.Sprintf(".%s.deleting-%d", name, time.Now().UnixNano())
	if err := unix.Renameat(dfd, name, dfd, gone); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return Errorf(KindNotFound, "no checkpoint %q in %s", name, c.CheckpointDir())
		}
		return Errorf(KindInternal, "delete checkpoint %q: %v", name, err)
	}
	if err := safeio.RemoveAllAt(dfd, gone); err != nil {
		return Errorf(KindInternal, "delete checkpoint %q: %v", name, err)
	}
	c.log.WithField("checkpoint", filepath.Join(c.CheckpointDir(), name)).Info("checkpoint deleted")
	return nil
}

// restoreFrom finds the checkpoint a create asks to restore from: in the
// bundle's checkpoints/ (a real directory, no symlink below the bundle) or
// in the directory the user named. The checkpoint's directory is opened
// (O_PATH, no symlink followed) and held: the runtime is given it as
// /proc/PID/fd/N, which no swap by the bundle's owner between this check
// and the restore can redirect. The caller closes held once the shim has
// run the runtime; from is the checkpoint's path, to show.
func restoreFrom(ctx context.Context, req *CreateRequest, bundleID fileID) (rest *proto.Restore, from string, held *os.File, err error) {
	rest, from, held, err = findCheckpoint(ctx, req, bundleID)
	if err != nil {
		return nil, "", nil, err
	}
	if _, err := exec.LookPath("criu"); err != nil {
		held.Close()
		return nil, "", nil, Errorf(KindRuntime, "restore: criu is not installed, and runc restores with it (apt-get install criu)")
	}
	return rest, from, held, nil
}

func findCheckpoint(ctx context.Context, req *CreateRequest, bundleID fileID) (*proto.Restore, string, *os.File, error) {
	dir := req.CheckpointDir
	var f *os.File
	var err error
	if dir == "" {
		dir = filepath.Join(req.Bundle, checkpointsDirName)
		var bundle *os.File
		if bundle, err = openBundleAs(req.Bundle, bundleID); err == nil {
			f, err = safeio.OpenDir(int(bundle.Fd()), checkpointsDirName, safeio.Strict)
			bundle.Close()
		}
	} else {
		f, err = safeio.OpenDir(-1, dir, 0)
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", nil, Errorf(KindNotFound, "restore: no checkpoint %q in %s", req.Checkpoint, dir)
		}
		return nil, "", nil, checkpointDirError("restore", dir, err)
	}
	defer f.Close()
	path := filepath.Join(dir, req.Checkpoint)
	cp, err := safeio.OpenPathDir(int(f.Fd()), req.Checkpoint, safeio.Strict)
	var b []byte
	if err == nil {
		b, err = safeio.ReadFile(ctx, int(cp.Fd()), checkpointConfigFile, safeio.Strict, maxCheckpointConfig)
	}
	var info CheckpointInfo
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil {
		if cp != nil {
			cp.Close()
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, "", nil, Errorf(KindNotFound, "restore: no checkpoint %q in %s", req.Checkpoint, dir)
		}
		return nil, "", nil, Errorf(KindInvalid, "restore: checkpoint %s: unreadable %s: %v", path, checkpointConfigFile, err)
	}
	return &proto.Restore{Path: safeio.FdPath(cp), TCP: info.TCP, UnixSockets: info.UnixSockets, Shell: info.Shell, EmptyNS: info.EmptyNS}, path, cp, nil
}

// runcLogFile is runc's pointer to CRIU's log ("log file: dump.log"),
// which names a file that is gone once a failed checkpoint is undone.
var runcLogFile = regexp.MustCompile(`\s*log file: \S+`)

// explainCRIU makes the message of a failed checkpoint or restore: runc's
// error, then why CRIU failed: `criu check`'s reason when CRIU cannot work
// on this host at all, else the errors of its log (logName).
func explainCRIU(runcMsg, logErrors, logName string) string {
	msg := oneLine(runcLogFile.ReplaceAllString(runcMsg, ""))
	if note := criuCheckNote(); note != "" {
		return msg + "; " + note
	}
	if logErrors != "" {
		msg += "; " + logName + ": " + logErrors
	}
	return msg
}

// criuCheckTimeout bounds `criu check`.
const criuCheckTimeout = 20 * time.Second

// criuCheckNote runs `criu check` after a failed checkpoint or restore and
// says, when it fails, that CRIU cannot work on this host at all, with its
// reason; "" when it passes (the failure was about this container).
func criuCheckNote() string {
	ctx, cancel := context.WithTimeout(context.Background(), criuCheckTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "criu", "check").CombinedOutput()
	if err == nil {
		return ""
	}
	why := criulog.Errors(out)
	if why == "" {
		why = oneLine(string(out))
	}
	if why == "" {
		why = err.Error()
	}
	return "criu check fails on this host, so CRIU cannot work here (a kernel it does not support?): " + why
}
