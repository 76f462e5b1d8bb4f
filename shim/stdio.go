package shim

import (
	"io"
	"os"
	"os/exec"
	"time"

	runc "github.com/containerd/go-runc"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// stdio is the runtime's runc.IO: real pipe ends, so exec.Cmd hands them to
// runc as they are (no copying goroutine) and runc to the container.
//
// Without a terminal the process's stdout and stderr are two pipes whose
// read ends the shim copies into the logs, and its stdin is /dev/null or,
// when asked for, a pipe the shim feeds from the stdin fifo. With a
// terminal the process's stdio is the terminal, not these: only the
// runtime's own messages come through them, and both go to the stderr log.
type stdio struct {
	stdin      *os.File // the child's stdin: /dev/null or stdinR
	stdinW     *os.File // the shim's end of the stdin pipe, or nil
	outR, outW *os.File // nil with a terminal
	errR, errW *os.File
}

// pipeSize is what the output pipes are grown to: fewer, bigger copies
// when a process writes a lot. Pages are only used while data waits.
const pipeSize = 1 << 20

func newStdio(withStdin, terminal bool) (*stdio, error) {
	s := &stdio{}
	var err error
	if withStdin && !terminal {
		if s.stdin, s.stdinW, err = os.Pipe(); err != nil {
			return nil, err
		}
	} else if s.stdin, err = os.Open(os.DevNull); err != nil {
		return nil, err
	}
	if !terminal {
		if s.outR, s.outW, err = os.Pipe(); err != nil {
			s.Close()
			return nil, err
		}
		growPipe(s.outW)
	}
	if s.errR, s.errW, err = os.Pipe(); err != nil {
		s.Close()
		return nil, err
	}
	growPipe(s.errW)
	return s, nil
}

// growPipe asks for a bigger pipe buffer; the default one is kept if the
// host's limit says no.
func growPipe(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

func (s *stdio) Set(c *exec.Cmd) {
	c.Stdin, c.Stderr = s.stdin, s.errW
	c.Stdout = s.errW
	if s.outW != nil {
		c.Stdout = s.outW
	}
}

// CloseAfterStart closes the child's ends; go-runc calls it after the
// runtime started, the shim after the runtime returned. Closing twice is
// harmless, and the errors of closing are dropped: nothing was written
// through these ends by the shim, so nothing can be lost.
func (s *stdio) CloseAfterStart() error {
	for _, f := range []*os.File{s.stdin, s.outW, s.errW} {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

// Close closes every end (on a failed start); as CloseAfterStart, it has
// nothing to lose.
func (s *stdio) Close() error {
	s.CloseAfterStart()
	for _, f := range []*os.File{s.stdinW, s.outR, s.errR} {
		if f != nil {
			f.Close()
		}
	}
	return nil
}

func (s *stdio) Stdin() io.WriteCloser { return nil }
func (s *stdio) Stdout() io.ReadCloser { return s.outR }
func (s *stdio) Stderr() io.ReadCloser { return s.errR }

// consoleSocket is the socket on which the runtime hands over the master
// end of the terminal it made for the process (--console-socket).
type consoleSocket struct {
	s   *runc.Socket
	got chan consoleResult
}

type consoleResult struct {
	f   *os.File
	err error
}

func newConsoleSocket() (*consoleSocket, error) {
	s, err := runc.NewTempConsoleSocket()
	if err != nil {
		return nil, err
	}
	c := &consoleSocket{s: s, got: make(chan consoleResult, 1)}
	go func() {
		m, err := s.ReceiveMaster()
		if err != nil {
			c.got <- consoleResult{err: err}
			return
		}
		f, err := pollable(m)
		c.got <- consoleResult{f, err}
	}()
	return c, nil
}

// pollable returns the master end as a non-blocking *os.File, so the
// copies can be woken by deadlines like the pipes.
func pollable(m interface {
	Fd() uintptr
	Close() error
}) (*os.File, error) {
	defer m.Close()
	fd, err := unix.FcntlInt(m.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), "console"), nil
}

// master waits for the master end; the runtime has sent it by the time it
// returned successfully, so the wait is short.
func (c *consoleSocket) master(timeout time.Duration) (*os.File, error) {
	select {
	case r := <-c.got:
		return r.f, r.err
	case <-time.After(timeout):
		return nil, os.ErrDeadlineExceeded
	}
}

// Path is the socket's path, for --console-socket.
func (c *consoleSocket) Path() string { return c.s.Path() }

// Close removes the socket (and ends a receive still waiting).
func (c *consoleSocket) Close() error { return c.s.Close() }

// setWinsize sets the terminal's window size; the kernel sends SIGWINCH to
// its foreground process group.
func setWinsize(console *os.File, cols, rows uint16) error {
	rc, err := console.SyscallConn()
	if err != nil {
		return err
	}
	var ioErr error
	err = rc.Control(func(fd uintptr) {
		ioErr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Col: cols, Row: rows})
	})
	if err == nil {
		err = ioErr
	}
	return err
}

// startSize gives a terminal the runtime left at 0x0 (a bundle without
// consoleSize) the classic 80x24: programs that ask the size of a 0x0
// terminal fail (busybox `stty size`). With `create` this is done before
// the process runs; with `run` it may already be running.
func startSize(log *logrus.Entry, console *os.File) {
	rc, err := console.SyscallConn()
	if err != nil {
		log.WithError(err).Warn("terminal: read the starting size")
		return
	}
	var ws *unix.Winsize
	var ioErr error
	if err = rc.Control(func(fd uintptr) { ws, ioErr = unix.IoctlGetWinsize(int(fd), unix.TIOCGWINSZ) }); err == nil {
		err = ioErr
	}
	if err != nil {
		log.WithError(err).Warn("terminal: read the starting size")
		return
	}
	if ws.Col != 0 || ws.Row != 0 {
		return
	}
	if err := setWinsize(console, 80, 24); err != nil {
		log.WithError(err).Warn("terminal: set the starting size")
	}
}
