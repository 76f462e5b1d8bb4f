package runtime

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/ctrfs/ctrfs/shim/proto"
)

// The CRI-format copy of a process's output (create/run/exec --log-path):
// the shim writes it, so it goes on while the daemon is down; reopen-log
// opens the path again after a rotation.

// checkLogPath validates a --log-path: absolute, one line of UTF-8, and
// not a directory already there.
func checkLogPath(verb, p string) error {
	if p == "" {
		return nil
	}
	if !filepath.IsAbs(p) {
		return Errorf(KindInvalid, "%s: --log-path %q must be absolute", verb, p)
	}
	if strings.ContainsAny(p, "\n\x00") {
		return Errorf(KindInvalid, "%s: --log-path holds a newline or NUL", verb)
	}
	return CheckUTF8(verb+" --log-path", p)
}

// checkLogDir tells, before any shim is started, that the log's directory
// is missing: the shim would fail the same way, later and less clearly.
func checkLogDir(verb, p string) error {
	if p == "" {
		return nil
	}
	st, err := os.Stat(filepath.Dir(p))
	if err != nil {
		return Errorf(KindNotFound, "%s: --log-path %q: its directory: %v", verb, p, err)
	}
	if !st.IsDir() {
		return Errorf(KindInvalid, "%s: --log-path %q: %s is not a directory", verb, p, filepath.Dir(p))
	}
	return nil
}

// LogPath is where the process's output is written in the CRI log
// format, "" for nowhere.
func (p *Process) LogPath() string { return p.logPath }

// ReopenLog makes the shim open the process's --log-path again: the
// kubelet's rotation moved the file away and wants a new one at the path.
func (p *Process) ReopenLog() error {
	if p.logPath == "" {
		return Errorf(KindInvalid, "reopen-log: process %q has no log path (it was not started with --log-path)", p.name)
	}
	if p.State() == ProcExited {
		return Errorf(KindBusy, "reopen-log: process %q has exited", p.name)
	}
	if err := checkLogDir("reopen-log", p.logPath); err != nil {
		return err
	}
	// The shim opens the path when it reads the order, later; the caller
	// (the kubelet's rotation, critest) expects the new file at the path
	// once the order is taken, so it is created here first, as the shim
	// would (O_APPEND: the shim's records go after anything already there).
	f, err := os.OpenFile(p.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return Errorf(KindInvalid, "reopen-log: %v", err)
	}
	f.Close()
	return p.control(proto.Control{Op: proto.ControlReopenLog})
}
