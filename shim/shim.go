// Package shim is ctrfs-shim: one per container process, it runs the OCI
// runtime, tells the daemon the pid (or the runtime's error), copies the
// process's output (pipes or a terminal) into bounded logs, feeds its stdin
// from a fifo, carries out close-stdin and resize, reaps it and writes its
// exit status.
// It shares nothing with the daemon but the files of package proto, so it
// outlives the daemon.
//
// A run goes through these steps, one file each:
//
//	setup.go   the process directory, the shim's own log and pid, the config
//	io.go      the output logs, the stdin and control fifos, the terminal
//	runc.go    the runtime's call, its pid or its error
//	exit.go    the pid published, the wait, the exit status written
//	report.go  the one report line to the daemon
package shim

import (
	"errors"
	"os"
	"os/signal"
	"time"

	runc "github.com/containerd/go-runc"
	"github.com/ctrfs/ctrfs/internal/procfs"
	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds the wait for the output pipes' EOF after the exit.
const drainTimeout = 2 * time.Second

// defaultLogMaxSize guards against a config without a bound (the daemon
// always sets one; 8 MiB is its default too).
const defaultLogMaxSize = 8 << 20

// Main runs the shim in the process state directory dir and returns the
// exit code: 0 once the exit status is written, 1 on failure.
func Main(dir string) int {
	return run(prepare(), dir)
}

// Spare is a shim started ahead of need: it does all it can before it knows
// its directory, then waits for the directory on stdin (see WaitForDir).
func Spare(stdin *os.File) int {
	p := prepare()
	warmUp()
	dir, ok := WaitForDir(stdin)
	if !ok {
		return 0
	}
	return run(p, dir)
}

// prepared is the part of the shim's set-up that does not depend on its
// directory, done before a spare shim waits.
type prepared struct {
	report    *os.File
	start     uint64 // the shim's own start time, for shim.pid
	startErr  error
	reaperErr error
	reaper    *Reaper
}

func prepare() *prepared {
	// Claim fd 3 before anything is opened: if it is missing, the first
	// file we open would get that number and receive the report.
	p := &prepared{report: reportPipe()}
	p.start, p.startErr = procfs.StartTime(os.Getpid())
	// As subreaper the shim becomes the parent of the container's init once
	// runc is done, so it can wait for it.
	p.reaperErr = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	// Catch, rather than ignore, the signals a session or a dead daemon may
	// send: an ignored signal stays ignored across exec, in runc and in the
	// container's processes; a caught one is reset to default there.
	signal.Notify(make(chan os.Signal, 1), unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	p.reaper = NewReaper()
	runc.Monitor = p.reaper
	// Load the local time zone now, not at the first log line.
	_ = time.Now().Format(time.RFC3339Nano)
	return p
}

// shim is one run: what its steps share. Each step fills in its part.
type shim struct {
	report *reporter
	reaper *Reaper

	// set up (setup.go)
	dir      string // the process directory, absolute; the working directory
	exitFifo int    // held until the end: the daemon sees POLLHUP when the shim is gone
	log      *logrus.Entry
	cfg      proto.Config

	// the process's input and output (io.go)
	pio            *stdio
	stdout, stderr *logCopy
	cri            *criLog        // the CRI-format log at Config.LogPath, nil without one
	stdinFifo      *os.File       // nil without a stdin
	control        *os.File       // nil when the daemon made none
	sock           *consoleSocket // nil without a terminal
	console        *os.File       // the terminal's master end, once received

	pid int // the process, once the runtime has started it (runc.go)
}

func run(p *prepared, dir string) int {
	s := &shim{report: &reporter{f: p.report}, reaper: p.reaper}
	if err := s.setUp(p, dir); err != nil {
		return s.fail(err)
	}
	if err := s.openIO(); err != nil {
		return s.fail(err)
	}
	if err := s.startProcess(); err != nil {
		return s.fail(err)
	}
	s.serveIO()
	exits, early, err := s.watchProcess()
	if err != nil {
		return s.fail(err)
	}
	return s.recordExit(s.waitExit(exits, early))
}

// fail logs err (once there is a log) and reports it to the daemon: the
// shim ends without a process to supervise.
func (s *shim) fail(err error) int {
	r := proto.Report{Error: err.Error()}
	var rf *runtimeFailure
	if errors.As(err, &rf) {
		r.CRIU = rf.criu
	}
	if s.log != nil {
		l := s.log
		if r.CRIU != "" {
			l = l.WithField(proto.RestoreLog, r.CRIU)
		}
		l.Error(r.Error)
	}
	s.report.send(s.log, r)
	return 1
}
