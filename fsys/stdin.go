package fsys

import (
	"context"
	"errors"
	"sync"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/runtime"
)

// stdinFile is processes/NAME/stdin: bytes written go to the process's
// stdin, in order. A write blocks while the process does not read (its
// pipe and the shim's fifo are full), or fails with EAGAIN under
// O_NONBLOCK. A process without stdin, with its stdin closed, or exited
// makes a write fail with EPIPE; the text says which, readable from the
// same open file (as from ctl) and as the last error of the process's ctl.
type stdinFile struct {
	p       Process
	lastErr *lastError // the process's ctl's
	n       *notifier
}

func (f *stdinFile) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindCtl)
	setTimes(a, f.p.Times().Started)
	return nil
}

// Setattr takes the truncation of a shell's `echo x > stdin`.
func (f *stdinFile) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return acceptTruncate(req, resp)
}

func (f *stdinFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindCtl, openWant(req.Flags)); err != nil {
		return nil, err
	}
	resp.Flags |= fuse.OpenDirectIO
	return &stdinHandle{f: f, w: f.p.OpenStdin(), stop: make(chan struct{})}, nil
}

type stdinHandle struct {
	f       *stdinFile
	w       StdinWriter
	waiters pollWaiters // this handle's own
	reg     pollRegistration
	stop    chan struct{}

	watchMu  sync.Mutex
	watching bool // a goroutine waits for room, to wake the pollers

	mu     sync.Mutex // guards the result, never held while a write waits
	result []byte
	base   int64 // file offset of the failed write
}

func (h *stdinHandle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	if err := allow(ctx, kindCtl, mayWrite); err != nil {
		return err
	}
	n, err := h.w.Write(ctx, req.Data, req.FileFlags&fuse.OpenNonblock != 0)
	if n > 0 || err == nil {
		// A write that moved some bytes reports them; what stopped it, if
		// anything, stops the next one too.
		resp.Size = n
		return nil
	}
	switch {
	case errors.Is(err, runtime.ErrWouldBlock):
		// The writer (Go's os.File, epoll) now waits for POLLOUT, and the
		// kernel polls again only when woken: wake it once there is room.
		h.watchRoom()
		return fuse.Errno(syscall.EAGAIN)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fuse.Errno(syscall.EINTR)
	}
	msg := describe(err)
	h.f.lastErr.set(msg)
	h.mu.Lock()
	h.result, h.base = []byte("error: "+msg+"\n"), req.Offset
	h.mu.Unlock()
	return errnoOf(err)
}

// Read returns the error of this handle's last failed write, if any
// (`exec 3<>stdin; echo x >&3 || cat <&3`), whether the reader continues
// from the write's offset or seeks back to 0.
func (h *stdinHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	off := req.Offset
	if off >= h.base {
		off -= h.base
	}
	resp.Data = sliceAt(h.result, off, req.Size)
	return nil
}

// Poll reports POLLOUT when a write would not wait (room, or an error to
// tell), and POLLIN always (a read never waits). Go's os.File writes
// non-blocking and waits for POLLOUT after EAGAIN: when there is no room,
// a goroutine waits for the shim to make some and wakes the pollers.
func (h *stdinHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	h.reg.set(h.waiters.pollEvents(req, resp, func() fuse.PollEvents {
		if h.w.Writable() {
			return fuse.PollIn | fuse.PollOut
		}
		h.watchRoom()
		return fuse.PollIn
	}))
	return nil
}

func (h *stdinHandle) watchRoom() {
	h.watchMu.Lock()
	defer h.watchMu.Unlock()
	if h.watching {
		return
	}
	h.watching = true
	ready := h.w.WhenWritable(h.stop)
	go func() {
		<-ready
		h.watchMu.Lock()
		h.watching = false
		h.watchMu.Unlock()
		h.waiters.wakeAll(h.f.n)
	}()
}

func (h *stdinHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	close(h.stop)
	h.reg.release(&h.waiters)
	return h.w.Close()
}

func (h *stdinHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}
