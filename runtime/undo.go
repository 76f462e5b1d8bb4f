package runtime

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
)

// undoCreate takes back everything a create made, whether it failed, timed
// out, or was cut short by a daemon crash: the shim and all it started (its
// whole process group: the shim leads a session of its own), the runtime's
// container, and the directory.
func (r *Runtime) undoCreate(id, runtimePath string) {
	dir := filepath.Join(r.cfg.StateDir, id)
	if b, err := os.ReadFile(filepath.Join(dir, initProcess, proto.ShimPidFile)); err == nil {
		if pid, start, err := parsePidFile(b); err == nil && alive(pid, start) {
			syscall.Kill(-pid, syscall.SIGKILL)
			for deadline := time.Now().Add(5 * time.Second); alive(pid, start) && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), orderTimeout)
	defer cancel()
	newRuntimeCLI(runtimePath, r.runtimeRoot, nil).delete(ctx, id, true)
	r.removeDir(dir)
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
