package runtime

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/internal/procfs"
	"github.com/ctrfs/ctrfs/internal/safeio"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// checkpointFlightFile is <state>/<id>/checkpointing.json: a checkpoint in
// flight. It is written before the temporary directory is made and before
// the runtime starts, and removed once the checkpoint is in place or
// undone; a daemon killed in between finds it at load and undoes the
// order (undoCheckpoint): the runtime's process group killed, the
// temporary directory removed.
const checkpointFlightFile = "checkpointing.json"

// checkpointFlight is checkpointing.json.
type checkpointFlight struct {
	// Dir is the --dir of the order; "" for <bundle>/checkpoints.
	Dir string `json:"dir,omitempty"`
	// Tmp is the temporary directory's name in it.
	Tmp string `json:"tmp"`
	// MadeDir says the order made <bundle>/checkpoints.
	MadeDir bool `json:"made_dir,omitempty"`
	// Was is the container's state when the order began (running or
	// paused): CRIU freezes a running container while it dumps, and one
	// killed meanwhile leaves it frozen, so the undo thaws it if it ran.
	Was State `json:"was,omitempty"`
	// Pid and Start are the runtime's process (the leader of its process
	// group, CRIU among it) and its start time: the pid-reuse guard.
	Pid   int    `json:"pid,omitempty"`
	Start uint64 `json:"start,omitempty"`
}

func (fl *checkpointFlight) record(dir string) error {
	return writeJSONAtomic(filepath.Join(dir, checkpointFlightFile), fl)
}

func (fl *checkpointFlight) done(dir string) {
	os.Remove(filepath.Join(dir, checkpointFlightFile))
}

// runCheckpoint runs `runc checkpoint` into image (a path through
// /proc/PID/fd), in a process group of its own whose leader is recorded
// in fl, as go-runc would run it otherwise.
func (c *Container) runCheckpoint(ctx context.Context, image string, req *CheckpointRequest, fl *checkpointFlight) error {
	r := c.cli.r
	args := []string{"--root", r.Root, "--log-format", "json"}
	args = append(args, r.ExtraArgs...)
	args = append(args, "checkpoint", "--image-path", image, "--work-path", image)
	if !req.Exit {
		args = append(args, "--leave-running")
	}
	if req.TCP {
		args = append(args, "--tcp-established")
	}
	if req.UnixSockets {
		args = append(args, "--ext-unix-sk")
	}
	if req.Shell {
		args = append(args, "--shell-job")
	}
	for _, ns := range req.EmptyNS {
		args = append(args, "--empty-ns", ns)
	}
	args = append(args, c.id)
	cmd := exec.Command(r.Command, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return runtimeError("checkpoint", err)
	}
	fl.Pid = cmd.Process.Pid
	fl.Start, _ = procfs.StartTime(fl.Pid)
	if err := fl.record(c.dir); err != nil {
		c.log.WithError(err).Warn("checkpoint: cannot record the runtime's pid")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		// The whole group: CRIU too.
		unix.Kill(-fl.Pid, unix.SIGKILL)
		err = <-done
	}
	if err == nil {
		return nil
	}
	return runtimeError("checkpoint", errors.New(err.Error()+": "+out.String()))
}

// undoCheckpoint undoes a checkpoint that a killed daemon left in flight
// in the container's directory dir: it kills the runtime's process group
// if it still runs (the recorded start time guards against a reused pid:
// a pid in use as a group id is never given to a new process, so the
// group is the runtime's unless its leader's pid now names another
// process), and removes the temporary directory, through directory fds.
func (r *Runtime) undoCheckpoint(dir string, rec containerRecord) {
	var fl checkpointFlight
	err := readJSON(filepath.Join(dir, checkpointFlightFile), &fl)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	log := r.log.WithField("id", rec.ID)
	if err != nil {
		log.WithError(err).Warn("unreadable record of a checkpoint in flight; removing it")
		os.Remove(filepath.Join(dir, checkpointFlightFile))
		return
	}
	log.WithField("tmp", fl.Tmp).Warn("checkpoint cut short by a crash; undoing it")
	if fl.Pid > 0 {
		start, err := procfs.StartTime(fl.Pid)
		if err != nil || start == fl.Start {
			unix.Kill(-fl.Pid, unix.SIGKILL)
			// The group's processes hold files in the temporary
			// directory: give them a moment to go.
			for i := 0; i < 100 && unix.Kill(-fl.Pid, 0) == nil; i++ {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
	// Whether or not the runtime's pid got recorded (the runtime may
	// freeze the container before the daemon writes it down), a container
	// that ran before the order must not stay frozen by it.
	if fl.Was == Running {
		r.thawAfterCheckpoint(rec, log)
	}
	if fl.Tmp != "" && !strings.ContainsRune(fl.Tmp, '/') && strings.Contains(fl.Tmp, ".tmp-") {
		var bundle, d *os.File
		if fl.Dir == "" {
			if bundle, err = openBundleAs(rec.Bundle, rec.bundleID()); err == nil {
				d, err = safeio.OpenDir(int(bundle.Fd()), checkpointsDirName, safeio.Strict)
			}
		} else {
			d, err = safeio.OpenDir(-1, fl.Dir, 0)
		}
		if err == nil {
			if err := safeio.RemoveAllAt(int(d.Fd()), fl.Tmp); err != nil {
				log.WithError(err).Warn("cannot remove what a checkpoint left")
			}
			d.Close()
			if fl.MadeDir && bundle != nil {
				unix.Unlinkat(int(bundle.Fd()), checkpointsDirName, unix.AT_REMOVEDIR) // only if empty
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			log.WithError(err).Warn("cannot open the directory of a checkpoint cut short")
		}
		if bundle != nil {
			bundle.Close()
		}
	}
	fl.done(dir)
}

// thawAfterCheckpoint resumes a container that a checkpoint cut short
// left frozen (it ran before the order): runc resume, which thaws the
// cgroup where runc (from the freezer) finds it paused, and else refuses,
// which is then no news.
func (r *Runtime) thawAfterCheckpoint(rec containerRecord, log *logrus.Entry) {
	ctx, cancel := context.WithTimeout(context.Background(), thawTimeout)
	defer cancel()
	if err := newRuntimeCLI(rec.RuntimePath, r.runtimeRoot, rec.RuntimeArgs).resume(ctx, rec.ID); err != nil {
		log.WithError(err).Debug("not thawed after a checkpoint cut short (not frozen?)")
		return
	}
	log.Warn("thawed the container a checkpoint cut short had left frozen")
}

// thawTimeout bounds the runtime's resume at load.
const thawTimeout = 30 * time.Second

// thawAfterFailedCheckpoint resumes a container that a failed checkpoint
// left frozen (a runtime killed at the order's deadline, a CRIU that died
// mid-dump), if it ran before the order: as the undo at load does after a
// crash.
func (c *Container) thawAfterFailedCheckpoint(was State) {
	if was != Running || !c.cgroups().frozen() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), thawTimeout)
	defer cancel()
	if err := c.cli.resume(ctx, c.id); err != nil {
		c.log.WithError(err).Warn("cannot thaw the container a failed checkpoint left frozen")
		return
	}
	c.log.Warn("thawed the container a failed checkpoint had left frozen")
}
