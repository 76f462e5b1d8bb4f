package fsys

import (
	"context"
	"sync"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// eventsFile is the root events file (every container) or ID/events (one).
// Every open subscribes: it reads each event published after the open, one
// JSON object a line, in order; a read blocks until there is one. A reader
// that falls more than --event-buffer events (4096, of the whole mount)
// behind reads an overflow event where it lost some. A container's events
// end (EOF) after its delete event.
type eventsFile struct {
	readOnlyFile
	rt Runtime
	id string    // "" for every container
	c  Container // the container of ID/events, nil for the root's
	n  *notifier
}

func (f *eventsFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindFile, openWant(req.Flags)); err != nil {
		return nil, err
	}
	if !req.Flags.IsReadOnly() {
		return nil, fuse.Errno(syscall.EACCES)
	}
	resp.Flags |= fuse.OpenDirectIO | fuse.OpenNonSeekable
	h := &eventsHandle{f: f}
	h.sub = f.rt.Subscribe(f.id, func() { h.waiters.wakeAll(f.n) })
	// Opened through the directory of a container deleted meanwhile: its
	// stream has ended (and its id may name a new container already).
	// Asked after subscribing, so a delete just now is either seen here or
	// read from the subscription.
	if f.c != nil && f.c.Deleted() {
		h.ended = true
		h.sub.Close()
	}
	return h, nil
}

type eventsHandle struct {
	f       *eventsFile
	sub     Subscription
	waiters pollWaiters // this handle's own: each open is its own stream
	reg     pollRegistration

	mu    sync.Mutex
	buf   []byte // lines taken from the queue, not yet read
	ended bool   // the container was deleted: EOF once buf is read
}

// Read gives what is buffered, or waits for events without holding the
// handle's lock (a POLL on the same handle must never wait for a read).
func (h *eventsHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	for {
		h.mu.Lock()
		h.fill(req.Size)
		if len(h.buf) > 0 || h.ended {
			n := min(req.Size, len(h.buf))
			resp.Data = h.buf[:n]
			h.buf = h.buf[n:]
			h.mu.Unlock()
			return nil
		}
		h.mu.Unlock()
		if err := waitReadable(ctx, req, h.sub.Pending, h.sub.Ready()); err != nil {
			return err
		}
	}
}

// fill takes about a read's worth of events into buf, so that a reader
// holds no more than that of its own.
func (h *eventsHandle) fill(size int) {
	if h.ended || len(h.buf) > 0 {
		return
	}
	h.buf, h.ended = h.sub.Take(size)
}

func (h *eventsHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	h.reg.set(h.waiters.poll(req, resp, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.buf) > 0 || h.ended || h.sub.Pending()
	}))
	return nil
}

func (h *eventsHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.sub.Close()
	h.reg.release(&h.waiters)
	return nil
}

func (h *eventsHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}
