package fsys

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// watchedFile is a read-only file that changes on events: state, exit,
// oom, pids. Each open reads a snapshot; a read at offset 0 after a change
// reads the new content (so poll, then pread at 0, works as on sysfs).
// POLL reports POLLIN once the file changed since the handle last read it,
// and, for exit, for good once the process has exited. Every change also
// pokes the file, so inotify watchers see IN_MODIFY (see notifier).
type watchedFile struct {
	readOnlyFile
	content func() ([]byte, error)
	settled func() bool // optional: readable for good once true
	rel     string      // path under the mountpoint, for pokes
	n       *notifier

	gen     atomic.Uint64 // bumped on every change
	waiters pollWaiters

	// Its size: the content's length when made at stat (sized), else
	// the last read's rounded up to a page (pids, read from the kernel).
	sized bool
	last  atomic.Int64
}

func (f *watchedFile) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindFile)
	f.stamp.setTimes(a)
	if f.sized {
		a.Size = contentSize(f.content)
	} else {
		a.Size = pageRounded(f.last.Load())
	}
	return nil
}

func newWatchedFile(n *notifier, rel string, mtime func() time.Time, content func() ([]byte, error)) *watchedFile {
	f := &watchedFile{n: n, rel: rel, content: content, sized: true}
	f.stamp.mtime = mtime
	return f
}

// changed tells the file's pollers and inotify watchers that it changed.
func (f *watchedFile) changed() {
	f.gen.Add(1)
	f.stamp.changed(f.n, f)
	f.waiters.wakeAll(f.n)
	f.n.poke(f.rel)
}

func (f *watchedFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if h, done, err := openPoked(ctx, f.n, req, resp); done {
		return h, err
	}
	h := &watchedHandle{f: f}
	if err := h.refresh(); err != nil {
		return nil, errnoOf(err)
	}
	return h, nil
}

// watchedHandle is one open of a watchedFile.
type watchedHandle struct {
	f   *watchedFile
	reg pollRegistration

	mu   sync.Mutex
	data []byte
	gen  atomic.Uint64 // the file's generation when data was read
}

// refresh reads the content anew. The generation is read first: a change
// racing with the read then makes a spurious POLLIN, never a missed one.
func (h *watchedHandle) refresh() error {
	gen := h.f.gen.Load()
	b, err := h.f.content()
	if err != nil {
		return err
	}
	h.data = b
	h.gen.Store(gen)
	h.f.last.Store(int64(len(b)))
	return nil
}

func (h *watchedHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.Offset == 0 && h.f.gen.Load() != h.gen.Load() {
		if err := h.refresh(); err != nil {
			return errnoOf(err)
		}
	}
	resp.Data = sliceAt(h.data, req.Offset, req.Size)
	return nil
}

func (h *watchedHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	h.reg.set(h.f.waiters.poll(req, resp, func() bool {
		return h.f.gen.Load() != h.gen.Load() || (h.f.settled != nil && h.f.settled())
	}))
	return nil
}

func (h *watchedHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.reg.release(&h.f.waiters)
	return nil
}

// Flush answers ENOSYS, as snapshot does: nothing is buffered.
func (h *watchedHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}

// openPoked checks an open of a file the notifier pokes (the watched
// files, the output logs): the caller's access, direct I/O, and for a write
// the poke's sink (the notifier's own open) or EACCES. done says the open
// is answered; otherwise it is a read the caller goes on with.
func openPoked(ctx context.Context, n *notifier, req *fuse.OpenRequest, resp *fuse.OpenResponse) (h fs.Handle, done bool, err error) {
	if err := allow(ctx, kindFile, openWant(req.Flags)); err != nil {
		return nil, true, err
	}
	resp.Flags |= fuse.OpenDirectIO
	if !req.Flags.IsReadOnly() {
		if req.Flags.IsWriteOnly() && n.isPoke(&req.Header) {
			return pokeSink{}, true, nil
		}
		return nil, true, fuse.Errno(syscall.EACCES)
	}
	return nil, false, nil
}

// pokeSink is the notifier's own open of a watched file: it takes the
// poke's byte and drops it.
type pokeSink struct{}

func (pokeSink) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	resp.Size = len(req.Data)
	return nil
}

func (pokeSink) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}
