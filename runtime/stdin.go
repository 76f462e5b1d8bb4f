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
	p *Process

	writeMu sync.Mutex // one write at a time

	mu sync.Mutex
	f  *os.File // the fifo, opened at first need; nil after Close
}

// OpenStdin returns a writer to the process's stdin. It opens nothing yet:
// a writer that never writes costs nothing, and the errors come with the
// write that meets them.
func (p *Process) OpenStdin() *StdinWriter { return &StdinWriter{p: p} }

// fifo returns the open fifo, opening it at the first call, or the error a
// write would meet: a process without stdin, with its stdin closed, or
// gone.
func (w *StdinWriter) fifo() (*os.File, error) {
	p := w.p
	if !p.stdin {
		return nil, Errorf(KindClosed, "stdin: process %q has no stdin (it was not started with --stdin)", p.name)
	}
	p.mu.RLock()
	closed, exited := p.stdinClosed, p.exit != nil
	p.mu.RUnlock()
	switch {
	case exited:
		return nil, Errorf(KindClosed, "stdin: process %q has exited", p.name)
	case closed:
		return nil, Errorf(KindClosed, "stdin: process %q: stdin is closed", p.name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		return w.f, nil
	}
	f, err := openFifoWriter(p)
	if err == nil {
		w.f = f
	}
	return f, err
}

// openFifoWriter opens p's stdin fifo for writing, non-blocking: Go's
// poller waits for room.
func openFifoWriter(p *Process) (*os.File, error) {
	fd, err := unix.Open(filepath.Join(p.dir, proto.StdinFifo), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case err == unix.ENOENT:
		// The shim removes the fifo once stdin is closed.
		p.mu.Lock()
		p.stdinClosed = true
		p.mu.Unlock()
		return nil, Errorf(KindClosed, "stdin: process %q: stdin is closed", p.name)
	case err == unix.ENXIO: // no reader: the shim is gone
		return nil, Errorf(KindClosed, "stdin: process %q has exited", p.name)
	case err != nil:
		return nil, Errorf(KindInternal, "stdin: process %q: %v", p.name, err)
	}
	return os.NewFile(uintptr(fd), proto.StdinFifo), nil
}

// Write writes data to the process's stdin. It blocks while the fifo is full
// (the process does not read), until ctx is done; with nonblock it writes
// what fits now, or fails with ErrWouldBlock. It returns how much went in.
// A process without stdin, with its stdin closed, or gone fails with a
// KindClosed error.
func (w *StdinWriter) Write(ctx context.Context, data []byte, nonblock bool) (int, error) {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	f, err := w.fifo()
	if err != nil {
		return 0, err
	}
	var n int
	if nonblock {
		n, err = writeNow(f, data)
	} else {
		n, err = writeAll(ctx, f, data)
	}
	p := w.p
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
func writeNow(f *os.File, data []byte) (int, error) {
	rc, err := f.SyscallConn()
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
	n = max(n, 0)
	if err == unix.EAGAIN {
		if n > 0 {
			return n, nil
		}
		return 0, ErrWouldBlock
	}
	return n, err
}

// writeAll writes all of data, waiting for room, until ctx is done.
func writeAll(ctx context.Context, f *os.File, data []byte) (int, error) {
	woken := make(chan struct{})
	// SetWriteDeadline fails only on a closed file, whose write fails too.
	stop := context.AfterFunc(ctx, func() {
		f.SetWriteDeadline(time.Now())
		close(woken)
	})
	n, err := f.Write(data)
	if !stop() {
		// ctx ended and the deadline was set: clear it for the next write.
		<-woken
		f.SetWriteDeadline(time.Time{})
		if errors.Is(err, os.ErrDeadlineExceeded) {
			err = ctx.Err()
		}
	}
	return n, err
}

// Writable reports whether a write would not wait now: there is room in
// the fifo, or the write would fail at once.
func (w *StdinWriter) Writable() bool {
	f, err := w.fifo()
	if err != nil {
		return true
	}
	return hasRoom(f)
}

func hasRoom(f *os.File) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		return true
	}
	room := true
	rc.Control(func(fd uintptr) { room = pollOut(int(fd)) })
	return room
}

// pollOut reports whether a write to the fifo fd would not wait: room, or
// no reader left (POLLERR: the write fails at once). A failed poll says
// yes too: the write then tells the writer what is wrong.
func pollOut(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 0)
	return err != nil || n > 0
}

// WhenWritable returns a channel closed once Writable may have become true
// (the shim made room in the fifo, or the process exited), or stop is
// closed. It waits on a second descriptor of the fifo, so that a write in
// progress is left alone.
func (w *StdinWriter) WhenWritable(stop <-chan struct{}) <-chan struct{} {
	ch := make(chan struct{})
	if _, err := w.fifo(); err != nil {
		close(ch)
		return ch
	}
	g, err := openFifoWriter(w.p)
	if err != nil {
		close(ch)
		return ch
	}
	go func() {
		defer close(ch)
		defer g.Close()
		ended := make(chan struct{})
		defer close(ended)
		go func() {
			select {
			case <-stop:
			case <-w.p.Done():
			case <-ended:
				return
			}
			g.SetWriteDeadline(time.Now())
		}()
		rc, err := g.SyscallConn()
		if err != nil {
			return
		}
		// Returning false has Go's poller wait for the fifo to take bytes.
		rc.Write(func(fd uintptr) bool { return pollOut(int(fd)) })
	}()
	return ch
}

// Close lets go of the fifo.
func (w *StdinWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		w.f.Close() // what was written is in the fifo already: nothing to lose
		w.f = nil
	}
	return nil
}
