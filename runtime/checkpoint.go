package runtime

import (
	"context"
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

// Checkpoint saves the container's processes with CRIU (runc checkpoint)
// into a new checkpoint; the container keeps running unless req.Exit. The
// checkpoint is made under a temporary name and renamed into place once
// complete, so a failure leaves nothing behind.
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

	dir := req.Dir
	if dir == "" {
		dir = c.CheckpointDir()
	}
	final := filepath.Join(dir, req.Name)
	if _, err := os.Lstat(final); err == nil {
		return Errorf(KindExists, "checkpoint: %s already exists", final)
	}
	if _, err := exec.LookPath("criu"); err != nil {
		return c.failed(OrderCheckpoint, Errorf(KindRuntime,
			"checkpoint: criu is not installed, and runc checkpoints with it (apt-get install criu)"))
	}
	madeDir := false
	if req.Dir == "" {
		if err := os.Mkdir(dir, 0o755); err == nil {
			madeDir = true
		} else if !os.IsExist(err) {
			return Errorf(KindInternal, "checkpoint: %v", err)
		}
	} else if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Errorf(KindNotFound, "checkpoint: directory %s does not exist", dir)
	}
	tmp, err := os.MkdirTemp(dir, "."+req.Name+".tmp-")
	if err != nil {
		return Errorf(KindInternal, "checkpoint: %v", err)
	}
	undo := func() {
		os.RemoveAll(tmp)
		if madeDir {
			os.Remove(dir) // only if empty
		}
	}
	info := CheckpointInfo{
		Name: req.Name, Created: time.Now().UTC(), Exit: req.Exit, TCP: req.TCP,
		UnixSockets: req.UnixSockets, Shell: req.Shell, EmptyNS: req.EmptyNS,
	}
	if err := writeJSONAtomic(filepath.Join(tmp, checkpointConfigFile), info); err == nil {
		err = os.Chmod(filepath.Join(tmp, checkpointConfigFile), 0o644)
	}
	if err != nil {
		undo()
		return Errorf(KindInternal, "checkpoint: %v", err)
	}
	if err := c.cli.checkpoint(ctx, c.id, tmp, &req); err != nil {
		msg := explainCRIU(err.Error(), criulog.FileErrors(filepath.Join(tmp, dumpLog)), dumpLog)
		undo()
		return c.failed(OrderCheckpoint, Errorf(KindRuntime, "%s", msg))
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE); err != nil {
		undo()
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return Errorf(KindExists, "checkpoint: %s was made meanwhile", final)
		}
		return Errorf(KindInternal, "checkpoint: %v", err)
	}
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

// Checkpoints lists the names of the checkpoints in CheckpointDir, sorted:
// directories holding a config.json (not those still being made).
func (c *Container) Checkpoints() ([]string, error) {
	ents, err := os.ReadDir(c.CheckpointDir())
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, Errorf(KindInternal, "checkpoints: %v", err)
	}
	var out []string
	for _, e := range ents {
		if !e.IsDir() || CheckName("checkpoint name", e.Name()) != nil {
			continue
		}
		if fileExists(filepath.Join(c.CheckpointDir(), e.Name(), checkpointConfigFile)) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// CheckpointConfig is the config.json of checkpoint name in CheckpointDir.
func (c *Container) CheckpointConfig(name string) ([]byte, error) {
	if err := CheckName("checkpoint name", name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(c.CheckpointDir(), name, checkpointConfigFile))
	if os.IsNotExist(err) {
		return nil, Errorf(KindNotFound, "no checkpoint %q in %s", name, c.CheckpointDir())
	}
	if err != nil {
		return nil, Errorf(KindInternal, "checkpoint %q: %v", name, err)
	}
	return b, nil
}

// DeleteCheckpoint removes checkpoint name from CheckpointDir: renamed out
// of the way first, so that a removal that fails half-way leaves no
// half a checkpoint under its name.
func (c *Container) DeleteCheckpoint(name string) error {
	if _, err := c.CheckpointConfig(name); err != nil {
		return err
	}
	dir := filepath.Join(c.CheckpointDir(), name)
	gone := filepath.Join(c.CheckpointDir(), fmt.Sprintf(".%s.deleting-%d", name, time.Now().UnixNano()))
	if err := os.Rename(dir, gone); err != nil {
		if os.IsNotExist(err) {
			return Errorf(KindNotFound, "no checkpoint %q in %s", name, c.CheckpointDir())
		}
		return Errorf(KindInternal, "delete checkpoint %q: %v", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return Errorf(KindInternal, "delete checkpoint %q: %v", name, err)
	}
	c.log.WithField("checkpoint", dir).Info("checkpoint deleted")
	return nil
}

// restoreFrom finds the checkpoint a create asks to restore from.
func restoreFrom(req *CreateRequest) (*proto.Restore, error) {
	dir := req.CheckpointDir
	if dir == "" {
		dir = filepath.Join(req.Bundle, checkpointsDirName)
	}
	path := filepath.Join(dir, req.Checkpoint)
	var info CheckpointInfo
	if err := readJSON(filepath.Join(path, checkpointConfigFile), &info); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, Errorf(KindNotFound, "restore: no checkpoint %q in %s", req.Checkpoint, dir)
		}
		return nil, Errorf(KindInvalid, "restore: checkpoint %s: unreadable %s: %v", path, checkpointConfigFile, err)
	}
	if _, err := exec.LookPath("criu"); err != nil {
		return nil, Errorf(KindRuntime, "restore: criu is not installed, and runc restores with it (apt-get install criu)")
	}
	return &proto.Restore{Path: path, TCP: info.TCP, UnixSockets: info.UnixSockets, Shell: info.Shell, EmptyNS: info.EmptyNS}, nil
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
