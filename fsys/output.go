package fsys

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/runtime"
)

// A process's output appears three ways (docs/files.md):
//   - stdout, stderr (logFile): the log files, as people tail them: size
//     is the stream's length so far, reads at an offset give what is there
//     and EOF at the end, lseek works, growth raises IN_MODIFY;
//   - stdout.follow, stderr.follow (followFile): a stream that follows the
//     process until it exits, blocking (or EAGAIN) at the end;
//   - stdout.lost, stderr.lost: how many bytes the log let go.

// logFile is processes/NAME/stdout or stderr.
type logFile struct {
	readOnlyFile
	p      Process
	stream string
	rel    string // under the mountpoint, for pokes
	n      *notifier

	mu    sync.Mutex
	opens int           // open handles: the poker runs while there are some
	stop  chan struct{} // ends the poker
}

func (f *logFile) Attr(ctx context.Context, a *fuse.Attr) error {
	size, mtime, err := f.p.OutputStat(f.stream)
	if err != nil {
		return errnoOf(err)
	}
	setAttr(ctx, a, kindFile)
	a.Size = uint64(size)
	a.Mtime, a.Ctime = mtime, mtime
	// Never cached: a stat (tail's, after IN_MODIFY) must see the growth.
	a.Valid = 0
	return nil
}

func (f *logFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	// Direct I/O: the kernel's page cache would serve stale bytes, and
	// clip reads at a size it cached.
	if h, done, err := openPoked(ctx, f.n, req, resp); done {
		return h, err
	}
	l, err := f.p.OpenLog(f.stream)
	if err != nil {
		return nil, errnoOf(err)
	}
	f.opened()
	return &logHandle{f: f, l: l}, nil
}

// opened starts the poker with the first open: while anyone has the file
// open, every growth of the log pokes it (IN_MODIFY for `tail -f`). A log
// nobody has open is not watched at all.
func (f *logFile) opened() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens++
	if f.opens > 1 {
		return
	}
	l, err := f.p.OpenLog(f.stream)
	if err != nil {
		return // the handle works; inotify watchers miss the growth
	}
	f.stop = make(chan struct{})
	go f.pokeGrowth(l, f.stop)
}

func (f *logFile) closed() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opens--
	if f.opens == 0 {
		close(f.stop)
	}
}

// pokeGrowth pokes the file at each change of the log until stop, or
// until the stream is complete. The next channel is taken before the poke,
// so a change while it goes out is not missed; pokes coalesce (notifier).
func (f *logFile) pokeGrowth(l OutputLog, stop chan struct{}) {
	defer l.Close()
	if l.Exited() {
		return // complete: it will not grow
	}
	ready := l.Ready()
	for {
		select {
		case <-ready:
			ready = l.Ready()
			f.n.poke(f.rel)
			if l.Exited() {
				return
			}
		case <-stop:
			return
		}
	}
}

// logHandle is one open of a logFile. Its offsets are the stream's: a read
// at an offset whose bytes the log let go (its bound) gives the first
// bytes still kept after them, and the read that follows on from it (at
// the offset where it ended) goes on from there, so that `cat` from offset
// 0 gives what is kept, once. A read anywhere else is taken as given (a
// seek).
type logHandle struct {
	f *logFile
	l OutputLog

	mu               sync.Mutex
	nextOff, nextLog int64 // where the last read ended: kernel's, log's
}

func (h *logHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	from := req.Offset
	if req.Offset == h.nextOff {
		from = h.nextLog
	}
	buf := make([]byte, req.Size)
	n, at, err := h.l.ReadAt(buf, from)
	if err == nil && n == 0 && h.drainPending(ctx) {
		n, at, err = h.l.ReadAt(buf, from)
	}
	if err != nil {
		return errnoOf(err)
	}
	resp.Data = buf[:n]
	h.nextOff, h.nextLog = req.Offset+int64(n), at+int64(n)
	return nil
}

// drainWait bounds how long a read at the end of the log of an exited
// process waits for its shim to write the last output.
const drainWait = 5 * time.Second

// drainPending is for a read that found the end of the log: if the process
// has exited but its shim has not yet written the last of its output (the
// exit is reported first, so that waiters wake at once), it waits for the
// shim to be done and says to read again. So `cat wait; cat
// stdout` gives every byte, as it did when stdout followed. A running
// process's end is simply its end for now.
func (h *logHandle) drainPending(ctx context.Context) bool {
	p := h.f.p
	select {
	case <-p.Exited():
	default:
		return false
	}
	// Read again even if the shim is done by now: it may have finished
	// after the read that found the end.
	select {
	case <-p.Done():
	case <-ctx.Done():
	case <-time.After(drainWait):
	}
	return true
}

func (h *logHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.f.closed()
	return h.l.Close()
}

func (h *logHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}

// newLostFile is processes/NAME/stdout.lost or stderr.lost: the bytes of
// the stream its log let go, a decimal number and a newline.
func newLostFile(p Process, stream string) *roFile {
	return newROFile(func() ([]byte, error) {
		n, err := p.OutputLost(stream)
		if err != nil {
			return nil, err
		}
		return text(strconv.FormatInt(n, 10)), nil
	})
}

// followFile is processes/NAME/stdout.follow or stderr.follow: every open
// reads the process's output from the oldest byte its log keeps; at the
// end a read blocks while the process runs (like `tail -f`), or fails with
// EAGAIN under O_NONBLOCK, and gives EOF once the process has exited and
// the log is drained. POLL reports POLLIN when there is something to read
// (or EOF). Each open has its own position: several readers each get
// every byte. A reader that fell further behind than the log's bound gets
// EIO once, on the read that would skip (why, with the count, is the last
// error of the process's ctl), then goes on at the oldest byte kept.
type followFile struct {
	readOnlyFile
	p       Process
	stream  string
	lastErr *lastError // the process's ctl's
	n       *notifier
}

func (f *followFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
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
	return &followHandle{f: f, r: r, stop: make(chan struct{})}, nil
}

type followHandle struct {
	f       *followFile
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
func (h *followHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	buf := make([]byte, req.Size)
	for {
		n, err := h.r.Read(buf)
		var lost *runtime.OutputLostError
		switch {
		case n > 0:
			resp.Data = buf[:n]
			return nil
		case err == io.EOF:
			return nil
		case errors.As(err, &lost):
			h.f.lastErr.set(describe(err))
			return fuse.Errno(syscall.EIO)
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
func (h *followHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	// The watcher's first channel is taken before the readiness check, so
	// a change between the two still wakes.
	h.watchOnce.Do(func() { go h.watch(h.r.Ready()) })
	h.reg.set(h.waiters.poll(req, resp, h.r.Readable))
	return nil
}

// watch sends the wake-ups: each change closes the channel it waits on.
// The next channel is taken before the wake-ups go out, so a change that
// comes while they are sent is not missed.
func (h *followHandle) watch(ready <-chan struct{}) {
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

func (h *followHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	close(h.stop)
	h.reg.release(&h.waiters)
	return h.r.Close()
}

func (h *followHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}
