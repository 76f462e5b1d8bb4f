package shim

import (
	"fmt"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// openIO makes the process's stdio and opens what feeds it and what it
// feeds: the output logs, the stdin and control fifos, the console socket.
// All of it is ready before the runtime runs: a process is never started
// that could not be fed or controlled.
func (s *shim) openIO() error {
	var err error
	if s.pio, err = newStdio(s.cfg.Stdin, s.cfg.Terminal); err != nil {
		return fmt.Errorf("shim: %v", err)
	}
	if s.cfg.LogPath != "" {
		if s.cri, err = openCRILog(s.cfg.LogPath); err != nil {
			return fmt.Errorf("shim: log path: %v", err)
		}
	}
	// With a terminal the stdout log exists from the start, and is fed
	// once the runtime has handed over the terminal.
	if s.stdout, err = openLog(proto.StdoutLog, s.cfg.LogMaxSize); err != nil {
		return fmt.Errorf("shim: %v", err)
	}
	s.stdout.cri = s.cri.stream("stdout")
	if !s.cfg.Terminal {
		s.stdout.copyFrom(s.pio.outR)
	}
	if s.stderr, err = openLog(proto.StderrLog, s.cfg.LogMaxSize); err != nil {
		return fmt.Errorf("shim: %v", err)
	}
	s.stderr.cri = s.cri.stream("stderr")
	s.stderr.copyFrom(s.pio.errR)
	if s.cfg.Stdin {
		if s.stdinFifo, err = openStdinFifo(); err != nil {
			s.finishLogs()
			return fmt.Errorf("shim: open %s: %v", proto.StdinFifo, err)
		}
	}
	if s.control, err = openControlFifo(); err != nil {
		// A daemon that made none has no use for it (a shim started by hand).
		s.log.WithError(err).Warn("no control fifo: close-stdin and resize will not work")
		s.control = nil
	}
	if s.cfg.Terminal {
		if s.sock, err = newConsoleSocket(); err != nil {
			s.finishLogs()
			return fmt.Errorf("shim: console socket: %v", err)
		}
	}
	return nil
}

// takeTerminal receives the master end of the process's terminal from the
// runtime, which has started process pid on it.
func (s *shim) takeTerminal(pid int) error {
	console, err := s.sock.master(drainTimeout)
	if err != nil {
		// The process runs on a terminal nobody holds: end it. ESRCH
		// (gone already) is as good.
		if kerr := unix.Kill(pid, unix.SIGKILL); kerr != nil && kerr != unix.ESRCH {
			s.log.WithError(kerr).WithField("pid", pid).Error("kill the process left without its terminal")
		}
		return fmt.Errorf("shim: receive the terminal from the runtime: %v", err)
	}
	s.console = console
	return nil
}

// closeConsoleSocket removes the console socket, once the runtime is done
// with it.
func (s *shim) closeConsoleSocket() {
	if s.sock == nil {
		return
	}
	if err := s.sock.Close(); err != nil {
		s.log.WithError(err).Warn("remove the console socket")
	}
	s.sock = nil
}

// serveIO starts feeding the started process: the terminal's output into
// the stdout log, the stdin fifo into its stdin, the control fifo's
// messages.
func (s *shim) serveIO() {
	if s.console != nil {
		startSize(s.log, s.console)
		s.stdout.copyFrom(s.console)
	}
	var stdin *stdinCopy
	if s.stdinFifo != nil {
		dst := s.pio.stdinW
		if s.console != nil {
			dst = s.console
		}
		stdin = startStdinCopy(s.log, s.stdinFifo, dst, s.console != nil)
	}
	if s.control != nil {
		go serveControl(s.log, s.control, stdin, s.console, s.cri)
	}
}

// finishLogs drains the output logs (up to drainTimeout) and closes them,
// logging what they lost.
func (s *shim) finishLogs() {
	deadline := time.Now().Add(drainTimeout)
	for name, c := range map[string]*logCopy{proto.StdoutLog: s.stdout, proto.StderrLog: s.stderr} {
		trimmed, dropped, err := c.finish(deadline)
		l := s.log.WithField("log", name)
		if err != nil {
			l.WithError(err).Warn("output log")
		}
		if trimmed > 0 {
			l.WithField("trimmed", trimmed).Info("output log at its bound: oldest bytes let go")
		}
		if dropped > 0 {
			l.WithField("dropped", dropped).Warn("output log full: bytes dropped")
		}
	}
	if s.cri != nil {
		if err := s.cri.Close(); err != nil {
			s.log.WithError(err).Warn("log path")
		}
	}
}
