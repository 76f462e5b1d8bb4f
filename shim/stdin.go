package shim

import (
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// stdinCopy feeds the process's stdin from the stdin fifo, into which the
// daemon writes what users write to processes/NAME/stdin.
//
// The shim holds the fifo O_RDWR, so it never reads EOF when a writer
// comes and goes: the input ends only when close-stdin is asked on the
// control fifo. Then every byte already in the fifo is still delivered
// (the daemon's write returned only once its bytes were in the fifo, so
// "write, then close-stdin" keeps its order), the fifo is removed (a
// restarted daemon knows stdin is closed by its absence), and the input is
// ended: the pipe closed, or on a terminal the EOF character typed.
type stdinCopy struct {
	log     *logrus.Entry
	fifo    *os.File
	dst     *os.File // the stdin pipe's write end, or the terminal's master
	tty     bool
	closing atomic.Bool
	done    chan struct{}
}

// openStdinFifo opens the stdin fifo the daemon made, O_RDWR (no EOF, no
// blocking open) and non-blocking, so a deadline can wake its reader.
func openStdinFifo() (*os.File, error) {
	fd, err := unix.Open(proto.StdinFifo, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), proto.StdinFifo), nil
}

func startStdinCopy(log *logrus.Entry, fifo, dst *os.File, tty bool) *stdinCopy {
	s := &stdinCopy{log: log, fifo: fifo, dst: dst, tty: tty, done: make(chan struct{})}
	go s.run()
	return s
}

// close asks for the end of the input, after what the fifo holds; it
// returns at once.
func (s *stdinCopy) close() {
	if s.closing.Swap(true) {
		return
	}
	// Wakes the reader, now and for good. The fifo is non-blocking, so
	// deadlines work on it; were it closed, the reader would be gone too.
	if err := s.fifo.SetReadDeadline(time.Now()); err != nil {
		s.log.WithError(err).Warn("stdin: wake the reader to close")
	}
}

func (s *stdinCopy) run() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	var dstErr error
	lastNL := true
	deliver := func(p []byte) {
		if len(p) == 0 {
			return
		}
		lastNL = p[len(p)-1] == '\n'
		// Once the process is gone its stdin is too: what still comes is
		// read and dropped, so a writer never blocks on a full fifo.
		if dstErr == nil {
			if _, dstErr = s.dst.Write(p); dstErr != nil {
				s.log.WithError(dstErr).Info("stdin: the process takes no more input; dropping what comes")
			}
		}
	}
	for {
		n, err := s.fifo.Read(buf)
		deliver(buf[:n])
		if err != nil {
			break
		}
	}
	if !s.closing.Load() {
		// The fifo failed: nothing more will come.
		s.log.Warn("stdin: the fifo failed; the process gets no more input")
		return
	}
	// Drain without waiting: what the fifo holds was written before the
	// close was asked. Through Control, not Read: a raw Read checks the
	// deadline that woke the loop above and returns at once, which lost
	// up to a fifo's worth (64 KiB) of input. The fd is non-blocking, so
	// the loop ends at EAGAIN. The errors of SyscallConn and Control only
	// say the fifo is closed, which it is not until below.
	if rc, err := s.fifo.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			for {
				n, err := unix.Read(int(fd), buf)
				if err == unix.EINTR {
					continue
				}
				if n <= 0 || err != nil {
					return
				}
				deliver(buf[:n])
			}
		})
	}
	// The fifo's absence is how a restarted daemon knows stdin is closed.
	if err := os.Remove(proto.StdinFifo); err != nil {
		s.log.WithError(err).Warn("stdin: remove the fifo; a restarted daemon will think stdin open")
	}
	s.fifo.Close() // our read end: nothing written through it to lose
	if !s.tty {
		if err := s.dst.Close(); err != nil {
			s.log.WithError(err).Warn("stdin: close the pipe")
		}
		return
	}
	if dstErr == nil {
		if _, err := s.dst.Write(eofKeys(s.dst, lastNL)); err != nil {
			s.log.WithError(err).Warn("stdin: type EOF on the terminal")
		}
	}
}

// eofKeys is what ends the input on a terminal: its EOF character (Ctrl-D
// unless changed), which ends a read at the start of a line; after a line
// without its newline, a first one only hands over that line, so it is
// typed twice.
func eofKeys(console *os.File, lastNL bool) []byte {
	eof := byte(4)
	if rc, err := console.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			if t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS); err == nil && t.Cc[unix.VEOF] != 0 {
				eof = t.Cc[unix.VEOF]
			}
		})
	}
	if lastNL {
		return []byte{eof}
	}
	return []byte{eof, eof}
}

// errNoStdin is the answer to close-stdin for a process without stdin.
var errNoStdin = errors.New("the process has no stdin")
