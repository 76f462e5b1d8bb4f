package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// ErrWouldBlock is a non-blocking write or read that could not move a byte
// now (EAGAIN).
var ErrWouldBlock = errors.New("would block")

// StdinWriter writes to a process's stdin: into the stdin fifo its shim
// holds and copies to the process. One is opened per open file of
// processes/NAME/stdin, so the bytes of one writer stay in its order.
type StdinWriter struct {
	p  *Process
	mu sync.Mutex
	f  *os.File // the fifo, opened at the first write
}

// OpenStdin returns a writer to the process's stdin. It opens nothing yet:
// a writer that never writes costs nothing, and the errors come with the
// write that meets them.
func (p *Process) OpenStdin() *StdinWriter { return &StdinWriter{p: p} }

// Write writes data to the process's stdin. It blocks while the fifo is full
// (the process does not read), until ctx is done; with nonblock it writes
// what fits now, or fails with ErrWouldBlock. It returns how much went in.
// A process without stdin, with its stdin closed, or gone fails with a
// KindClosed error.
func (w *StdinWriter) Write(ctx context.Context, data []byte, nonblock bool) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	p := w.p
	if !p.stdin {
		return 0, Errorf(KindClosed, "stdin: process %q has no stdin (it was not started with --stdin)", p.name)
	}
	p.mu.RLock()
	closed, exited := p.stdinClosed, p.exit != nil
	p.mu.RUnlock()
	switch {
	case exited:
		return 0, Errorf(KindClosed, "stdin: process %q has exited", p.name)
	case closed:
		return 0, Errorf(KindClosed, "stdin: process %q: stdin is closed", p.name)
	}
	if w.f == nil {
		fd, err := unix.Open(filepath.Join(p.dir, proto.StdinFifo), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		switch {
		case err == unix.ENOENT:
			// The shim removes the fifo once stdin is closed.
			p.mu.Lock()
			p.stdinClosed = true
			p.mu.Unlock()
			return 0, Errorf(KindClosed, "stdin: process %q: stdin is closed", p.name)
		case err == unix.ENXIO:
			return 0, Errorf(KindClosed, "stdin: process %q has exited", p.name)
		case err != nil:
			return 0, Errorf(KindInternal, "stdin: process %q: %v", p.name, err)
		}
		w.f = os.NewFile(uintptr(fd), proto.StdinFifo) // non-blocking: Go's poller waits
	}
	var n int
	var err error
	if nonblock {
		n, err = w.writeNow(data)
	} else {
		n, err = w.writeAll(ctx, data)
	}
	switch {
	case err == nil:
		return n, nil
	case errors.Is(err, ErrWouldBlock):
		return n, err
	case errors.Is(err, unix.EPIPE):
		// The shim let go of the fifo: stdin was closed, or the shim ended.
		if p.State() == ProcExited {
			return n, Errorf(KindClosed, "stdin: process %q has exited", p.name)
		}
		return n, Errorf(KindClosed, "stdin: process %q: stdin is closed", p.name)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return n, err
	}
	return n, Errorf(KindInternal, "stdin: process %q: %v", p.name, err)
}

// writeNow writes what fits without waiting.
func (w *StdinWriter) writeNow(data []byte) (int, error) {
	rc, err := w.f.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		n, werr = unix.Write(int(fd), data)
		return true
	})
	if err == nil {
		err = werr
	}
	if n < 0 {
		n = 0
	}
	if err == unix.EAGAIN {
		if n > 0 {
			return n, nil
		}
		return 0, ErrWouldBlock
	}
	return n, err
}

// writeAll writes all of data, waiting for room, until ctx is done.
func (w *StdinWriter) writeAll(ctx context.Context, data []byte) (int, error) {
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		w.f.SetWriteDeadline(time.Now())
		close(woken)
	})
	n, err := w.f.Write(data)
	if !stop() {
		// ctx ended and the deadline was set: clear it for the next write.
		<-woken
		w.f.SetWriteDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = ctx.Err()
		}
	}
	return n, err
}

// Close lets go of the fifo.
func (w *StdinWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	return nil
}
