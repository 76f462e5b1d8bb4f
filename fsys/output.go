package fsys

import (
	"context"
	"errors"
	"io"
	"sync"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/runtime"
)

// outputFile is processes/NAME/stdout or stderr: every open reads the
// process's output from the oldest byte its log keeps; at the end a read
// blocks while the process runs (like `tail -f`), or fails with EAGAIN
// under O_NONBLOCK, and gives EOF once the process has exited and the log
// is drained. POLL reports POLLIN when there is something to read (or EOF).
// Each open has its own position: several readers each get every byte.
type outputFile struct {
	readOnlyFile
	p      Process
	stream string
	n      *notifier
}

func (f *outputFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindFile, openWant(req.Flags)); err != nil {
		return nil, err
	}
	if !req.Flags.IsReadOnly() {
		return nil, fuse.Errno(syscall.EACCES)
	}
	r, err := f.p.OpenOutput(f.stream)
	if err != nil {
		return nil, errnoOf(err)
	}
	// A stream: the position is the handle's own, not a file offset.
	resp.Flags |= fuse.OpenDirectIO | fuse.OpenNonSeekable
	return &outputHandle{f: f, r: r, stop: make(chan struct{})}, nil
}

type outputHandle struct {
	f       *outputFile
	r       OutputReader
	waiters pollWaiters // this handle's own: each open has its own position
	reg     pollRegistration

	watchOnce sync.Once
	stop      chan struct{}
}

// Read waits holding no lock of the handle: a reader blocked at the end of
// the output must not hold up (and make unkillable, as a FUSE request in
// flight is) another reader or a non-blocking one of the same open file.
// Each OutputReader.Read moves the position atomically.
func (h *outputHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	buf := make([]byte, req.Size)
	for {
		n, err := h.r.Read(buf)
		switch {
		case n > 0:
			resp.Data = buf[:n]
			return nil
		case err == io.EOF:
			return nil
		case !errors.Is(err, runtime.ErrWouldBlock):
			return errnoOf(err)
		}
		if err := waitReadableEach(ctx, req, h.r.Readable, h.r.Ready); err != nil {
			return err
		}
	}
}

// Poll reports whether a read would return now. The handle's watcher, a
// goroutine started at the first poll, sends the wake-ups as the log grows
// and once the process exits.
func (h *outputHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	// The watcher's first channel is taken before the readiness check, so
	// a change between the two still wakes.
	h.watchOnce.Do(func() { go h.watch(h.r.Ready()) })
	h.reg.set(h.waiters.poll(req, resp, h.r.Readable))
	return nil
}

// watch sends the wake-ups: each change closes the channel it waits on.
// The next channel is taken before the wake-ups go out, so a change that
// comes while they are sent is not missed.
func (h *outputHandle) watch(ready <-chan struct{}) {
	for {
		select {
		case <-ready:
			next := h.r.Ready()
			h.waiters.wakeAll(h.f.n)
			select {
			case <-h.f.p.Done():
				return // readable for good: EOF, or what is left
			default:
			}
			ready = next
		case <-h.stop:
			return
		}
	}
}

func (h *outputHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	close(h.stop)
	h.reg.release(&h.waiters)
	return h.r.Close()
}

func (h *outputHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}
