package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
)

// exitRecord is a process's exitStatus file: the shim's proto.ExitStatus,
// or, when the shim died without writing one, the daemon's own conclusion
// (Unknown or Reason set), written so that a restart concludes the same.
type exitRecord struct {
	proto.ExitStatus
	Unknown bool   `json:"unknown,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Process is one process of a container, supervised by its own shim: the
// container's init, or one started by exec.
type Process struct {
	c     *Container
	name  string
	dir   string
	spec  []byte // the OCI process spec, JSON
	stdin bool   // it was given a stdin (the stdin fifo)
	tty   bool   // it runs on a terminal
	// logPath is where its shim writes the CRI-format log ("": nowhere).
	logPath string

	mu          sync.RWMutex
	pid         int
	start       uint64    // start time, against pid reuse
	started     time.Time // when it started (times.go)
	exit        *exitRecord
	exited      chan struct{} // closed once exit is set
	done        chan struct{} // closed once, besides, the shim is gone
	stdinClosed bool          // close-stdin was sent, or the fifo is gone

	// versionErr says the process directory was written in a shim
	// protocol version this daemon does not know (a daemon downgraded
	// under running shims): its files are not read, lest they be misread.
	versionErr error
}

// newProcess makes the process of dir; cfg is its proto.Config (of which
// only the stdio and, on load, the version matter).
func newProcess(c *Container, name, dir string, spec []byte, cfg proto.Config) *Process {
	p := &Process{c: c, name: name, dir: dir, spec: spec, stdin: cfg.Stdin, tty: cfg.Terminal, logPath: cfg.LogPath, exited: make(chan struct{}), done: make(chan struct{})}
	if err := proto.CheckVersion(cfg.Version); err != nil {
		p.versionErr = fmt.Errorf("%s: %w", proto.ConfigFile, err)
		c.log.WithField("process", name).WithError(err).Error("process written by an unknown shim protocol version: taken as exited, status unknown")
	}
	return p
}

// Name is the process name ("init" for the container's init).
func (p *Process) Name() string { return p.name }

// Spec is the OCI process spec it runs, as JSON.
func (p *Process) Spec() []byte { return p.spec }

// Terminal reports whether the process runs on a terminal.
func (p *Process) Terminal() bool { return p.tty }

// HasStdin reports whether the process was given a stdin.
func (p *Process) HasStdin() bool { return p.stdin }

// IsInit reports whether this is the container's init.
func (p *Process) IsInit() bool { return p == p.c.init }

// Pid is the host pid (it stays known after the exit).
func (p *Process) Pid() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.pid
}

// State is running until the exit is recorded.
func (p *Process) State() ProcState {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.exit != nil {
		return ProcExited
	}
	return ProcRunning
}

// ExitText is what the exit file shows: "" while running, the status
// ("0", "137"), or "unknown" when it cannot be known.
func (p *Process) ExitText() string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	switch {
	case p.exit == nil:
		return ""
	case p.exit.Unknown:
		return "unknown"
	default:
		return strconv.Itoa(p.exit.Status)
	}
}

// Done is closed once the process's exit is recorded.
func (p *Process) Done() <-chan struct{} { return p.done }

func (p *Process) exitRecord() *exitRecord {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.exit
}

func (p *Process) setPid(pid int, start uint64) {
	p.mu.Lock()
	p.pid, p.start = pid, start
	p.mu.Unlock()
}

// alive reports whether the process still runs (guarded against pid reuse).
func (p *Process) alive() bool {
	p.mu.RLock()
	pid, start, exited := p.pid, p.start, p.exit != nil
	p.mu.RUnlock()
	return !exited && alive(pid, start)
}

// setExit records the exit once; it reports whether this call did. Done
// is closed apart, by markDone, once the exit event is out and the shim is
// gone: whoever waits on Done (a delete, a reader at the end of the output)
// then acts after that event, and with the shim's files complete.
func (p *Process) setExit(rec *exitRecord) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exit != nil {
		return false
	}
	p.exit = rec
	close(p.exited)
	return true
}

// Exited is closed once the exit is recorded: from the shim's report, a
// moment before the shim has drained the output and gone (Done).
func (p *Process) Exited() <-chan struct{} { return p.exited }

// finished reports whether p is Done: exited, its output complete, its
// shim gone.
func (p *Process) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Process) markDone() {
	close(p.done)
	// Readers waiting at the end of its logs look again, and find EOF.
	p.c.rt.logs.wakeDir(p.dir)
}

// exitEvent is the exit event of this process.
func (p *Process) exitEvent(rec *exitRecord) Event {
	e := Event{Time: rec.ExitedAt, Type: EventExit, Process: p.name, Pid: p.Pid(), Reason: rec.Reason}
	if !rec.Unknown {
		status := rec.Status
		e.Status = &status
	}
	return e
}

// readPidFile loads the pid file the shim wrote.
func (p *Process) readPidFile() error {
	if p.versionErr != nil {
		return p.versionErr
	}
	b, mtime, err := readFileTime(p.pidPath())
	if err != nil {
		return err
	}
	pid, start, err := proto.ParsePidFile(b)
	if err != nil {
		return err
	}
	p.setPid(pid, start)
	p.noteStarted(mtime)
	return nil
}

// readExitFile loads the exitStatus file; (nil, nil) when there is none yet.
func (p *Process) readExitFile() (*exitRecord, error) {
	if p.versionErr != nil {
		return nil, p.versionErr
	}
	var rec exitRecord
	err := readJSON(filepath.Join(p.dir, proto.ExitStatusFile), &rec)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rec.ExitedAt.IsZero() {
		rec.ExitedAt = time.Now()
	}
	return &rec, nil
}

func (p *Process) writeExitFile(rec *exitRecord) error {
	return writeJSONAtomic(filepath.Join(p.dir, proto.ExitStatusFile), rec)
}

// noteClosedStdin marks stdin closed when its fifo is gone (the shim removes
// it at close-stdin): how a restarted daemon learns it.
func (p *Process) noteClosedStdin() {
	if p.stdin && !fileExists(filepath.Join(p.dir, proto.StdinFifo)) {
		p.mu.Lock()
		p.stdinClosed = true
		p.mu.Unlock()
	}
}
