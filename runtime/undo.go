package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// undoCreate takes back everything a create made, whether it failed, timed
// out, or was cut short by a daemon crash: the shim and all it started (its
// whole process group: the shim leads a session of its own), the runtime's
// container, and the directory.
func (r *Runtime) undoCreate(id, runtimePath string) {
	dir := filepath.Join(r.cfg.StateDir, id)
	r.killShimGroup(filepath.Join(dir, initProcess))
	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	if err := newRuntimeCLI(runtimePath, r.runtimeRoot, nil).delete(ctx, id, true); err != nil {
		// Most often the create failed before runc made the container,
		// and runc says it does not exist: nothing was left behind.
		log := r.log.WithError(err).WithField("id", id)
		if strings.Contains(err.Error(), "does not exist") {
			log.Debug("undo create: nothing for the runtime to delete")
		} else {
			log.Warn("undo create: the runtime could not delete the container")
		}
	}
	r.dropImageBundle(id)
	r.removeDir(dir)
}

// shimKillWait bounds the wait for a killed shim to be gone.
const shimKillWait = 5 * time.Second

// killShimGroup kills the process group of the shim of the process
// directory dir, if it runs, and waits a little for the shim to be gone.
func (r *Runtime) killShimGroup(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, proto.ShimPidFile))
	if err != nil {
		return // no shim was started, or it died before writing its pid
	}
	pid, start, err := proto.ParsePidFile(b)
	if err != nil {
		r.log.WithError(err).WithField("dir", dir).Warn("cannot kill the shim: unreadable pid file")
		return
	}
	h, err := openPid(pid, start)
	if err != nil {
		return // gone already
	}
	defer h.close()
	// The shim leads its own session and process group, whose id is its
	// pid: the group holds runc and what it started. While h says the
	// shim lives, the group's id is still its.
	if err := unix.Kill(-pid, unix.SIGKILL); err != nil && err != unix.ESRCH {
		r.log.WithError(err).WithField("pid", pid).Warn("cannot kill the shim's process group")
	}
	if !h.wait(shimKillWait) {
		r.log.WithField("pid", pid).Warnf("the killed shim is still there after %s", shimKillWait)
	}
}

// removeDir removes a container's directory. It is first renamed out of the
// id's way, so that neither a removal that fails half-way nor a crash in the
// middle can leave something that blocks the id or looks like a container;
// Load sweeps what is left of such names.
func (r *Runtime) removeDir(dir string) {
	gone := filepath.Join(filepath.Dir(dir), fmt.Sprintf(".%s.deleting-%d", filepath.Base(dir), time.Now().UnixNano()))
	if err := os.Rename(dir, gone); err != nil {
		if os.IsNotExist(err) {
			return
		}
		gone = dir
	}
	if err := os.RemoveAll(gone); err != nil {
		r.log.WithError(err).WithField("dir", gone).Warn("cannot remove a state directory")
	}
}
