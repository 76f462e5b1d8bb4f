package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	runc "github.com/containerd/go-runc"
	"github.com/ctrfs/ctrfs/internal/criulog"
	"github.com/ctrfs/ctrfs/internal/errmsg"
	"github.com/ctrfs/ctrfs/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// startProcess has the runtime start the process and, with a terminal,
// takes the terminal's master end.
func (s *shim) startProcess() error {
	pid, err := s.runRuntime()
	// Else our copies of the write ends keep EOF away. It reports no
	// error: closing the child's ends can lose nothing.
	s.pio.CloseAfterStart()
	if err == nil && s.sock != nil {
		err = s.takeTerminal(pid)
	}
	s.closeConsoleSocket()
	if err != nil {
		s.finishLogs()
		return err
	}
	s.pid = pid
	return nil
}

// runtimeFailure is the runtime's own account of its failure: its message
// and, for a restore, the errors of CRIU's log (proto.Report.CRIU).
type runtimeFailure struct {
	msg  string
	criu string
}

func (e *runtimeFailure) Error() string { return e.msg }

// runRuntime asks the runtime to create, run, restore or exec the process
// and returns its pid. Its error is a *runtimeFailure where the runtime
// failed.
func (s *shim) runRuntime() (int, error) {
	cfg := &s.cfg
	logPath := filepath.Join(s.dir, proto.RuntimeLog)
	var logFrom int64 // only this call's lines name its error
	if st, err := os.Stat(logPath); err == nil {
		logFrom = st.Size()
	}
	pidPath := filepath.Join(s.dir, proto.RuntimePidFile)
	s.removeStale(pidPath) // never read a stale one
	r := &runc.Runc{
		Command:   cfg.Runtime,
		Root:      cfg.RuntimeRoot,
		Log:       logPath,
		LogFormat: runc.JSON,
		ExtraArgs: cfg.RuntimeArgs,
	}
	var cs runc.ConsoleSocket
	if s.sock != nil {
		cs = s.sock
	}
	var err error
	switch cfg.Action {
	case proto.ActionExec:
		var spec specs.Process
		if err := json.Unmarshal(cfg.Spec, &spec); err != nil {
			return 0, fmt.Errorf("shim: process spec: %v", err)
		}
		err = r.Exec(context.Background(), cfg.ID, spec, &runc.ExecOpts{
			IO: s.pio, PidFile: pidPath, Detach: true, ConsoleSocket: cs,
		})
	case proto.ActionRun:
		opts := &runc.CreateOpts{IO: s.pio, PidFile: pidPath, NoPivot: cfg.NoPivot, ConsoleSocket: cs, Detach: true}
		_, err = r.Run(context.Background(), cfg.ID, cfg.Bundle, opts)
	case proto.ActionRestore:
		// CRIU's work files and restore.log go to the process directory,
		// not into the checkpoint, which may be restored again.
		s.removeStale(filepath.Join(s.dir, proto.RestoreLog))
		ctx, cerr := criuConfig(context.Background(), s.dir, cfg.Restore)
		if cerr != nil {
			return 0, cerr
		}
		_, err = r.Restore(ctx, cfg.ID, cfg.Bundle, &runc.RestoreOpts{
			CheckpointOpts: runc.CheckpointOpts{
				ImagePath: cfg.Restore.Path, WorkDir: s.dir,
				AllowOpenTCP: cfg.Restore.TCP, AllowExternalUnixSockets: cfg.Restore.UnixSockets,
				AllowTerminal: cfg.Restore.Shell, EmptyNamespaces: cfg.Restore.EmptyNS,
				Cgroups: runc.CgroupMode(cfg.Restore.CgroupsMode),
			},
			IO: s.pio, Detach: true, PidFile: pidPath, NoPivot: cfg.NoPivot, ConsoleSocket: cs,
			NoSubreaper: true, // the shim is the subreaper; runc exits at once
		})
	default:
		opts := &runc.CreateOpts{IO: s.pio, PidFile: pidPath, NoPivot: cfg.NoPivot, ConsoleSocket: cs}
		err = r.Create(context.Background(), cfg.ID, cfg.Bundle, opts)
	}
	if err != nil {
		f := &runtimeFailure{msg: lastRuntimeError(logPath, logFrom)}
		if f.msg == "" {
			f.msg = errmsg.OneLine(err.Error())
		}
		if cfg.Action == proto.ActionRestore {
			f.criu = criulog.FileErrors(filepath.Join(s.dir, proto.RestoreLog))
		}
		return 0, f
	}
	data, err := os.ReadFile(pidPath)
	if err != nil {
		return 0, fmt.Errorf("shim: runtime pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("shim: runtime pid file: bad pid %q", data)
	}
	return pid, nil
}

// removeStale removes a file a former call left, lest it be taken for this
// call's. One that cannot be removed is logged; the call goes on, since the
// runtime replaces its pid file, and CRIU its log, when it writes them.
func (s *shim) removeStale(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.WithError(err).Warn("remove a stale file")
	}
}

// lastRuntimeError returns the last error message runc logged (JSON lines)
// in the file at path from offset on, on one line, or "" (also when the
// log cannot be read: the caller has the runtime's exit to say instead).
func lastRuntimeError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close() // read only: nothing to lose
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	return errmsg.LastRuntimeError(data)
}
