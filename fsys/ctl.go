package fsys

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// ctlFile is a transaction file (as Linux's simple_transaction): a write
// gives orders; a read from the same open file then returns their result.
// A fresh open reads the verbs and the last error.
// Its verbs are a command table's (see cmdtab), which makes it.
type ctlFile struct {
	verbs   string
	parse   func(data []byte) ([]order, error) // a whole write, or nothing
	lastErr *lastError
	mtime   func() time.Time // its owner's create or start; nil: the daemon's start
}

// order is one parsed line of a ctl write, ready to run on its target.
type order struct {
	text string // the line as written, for results
	run  func(context.Context) error
}

// lastError keeps the last error of a ctl file, for `cat ctl`.
type lastError struct {
	mu  sync.Mutex
	msg string
}

func (l *lastError) set(msg string) {
	l.mu.Lock()
	l.msg = msg
	l.mu.Unlock()
}

func (l *lastError) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msg == "" {
		return "none"
	}
	return l.msg
}

// openParallelDirectWrites is FUSE's FOPEN_PARALLEL_DIRECT_WRITES (Linux
// 6.2, protocol 7.36), which bazil.org/fuse does not name: writes of a
// direct-I/O open then take the kernel's inode lock shared, not exclusive,
// so writers of one ctl file do not wait for each other's orders in the
// kernel, where nothing can interrupt the wait. Older kernels ignore the
// bit. The kernel still serialises a write past the file's size, hence
// ctlSize.
const openParallelDirectWrites fuse.OpenResponseFlags = 1 << 6

// ctlSize is the size a ctl file shows: the largest write it takes. A
// write that ends within it is one the kernel lets run in parallel with
// others (see openParallelDirectWrites).
const ctlSize = maxCommandSize

func (f *ctlFile) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindCtl)
	a.Size = ctlSize
	if f.mtime != nil {
		setTimes(a, f.mtime())
	}
	return nil
}

// fresh is a node of the same ctl file under a new node id, for each
// lookup. The kernel truncates an O_TRUNC open (a shell's `>`) under its
// inode lock held exclusive, which waits for every write in flight on the
// inode: with one inode for all, `echo run B > ctl` waited, unkillably,
// for the `run A` before it. Each lookup's own inode has no such writer.
func (f *ctlFile) fresh() *ctlFile {
	g := *f
	return &g
}

// Setattr accepts the truncation to 0 that `echo cmd > ctl` (O_TRUNC) sends,
// and time changes (touch); nothing else.
func (f *ctlFile) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return acceptTruncate(req, resp)
}

// acceptTruncate is Setattr of a file written as a stream (ctl, stdin):
// the truncation to 0 of a shell's `>` and time changes are accepted and
// change nothing; anything else is EACCES.
func acceptTruncate(req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	ok := fuse.SetattrSize | fuse.SetattrAtime | fuse.SetattrMtime | fuse.SetattrAtimeNow |
		fuse.SetattrMtimeNow | fuse.SetattrHandle | fuse.SetattrLockOwner
	if req.Valid&^ok != 0 || (req.Valid.Size() && req.Size != 0) {
		return fuse.Errno(syscall.EACCES)
	}
	resp.Attr.Mode = 0o660
	// The kernel takes the size from this answer: a ctl file keeps its
	// own (see ctlSize), or its next writes would all be past the end.
	resp.Attr.Size = ctlSize
	return nil
}

func (f *ctlFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindCtl, openWant(req.Flags)); err != nil {
		return nil, err
	}
	resp.Flags |= fuse.OpenDirectIO | openParallelDirectWrites
	return &ctlHandle{file: f, mu: make(chan struct{}, 1)}, nil
}

// ctlHandle is one open of a ctl file, holding the result of its last write.
type ctlHandle struct {
	file *ctlFile

	// mu guards the fields below; it is a channel so that a write or read
	// waiting for another on the same open file can be interrupted.
	mu     chan struct{}
	wrote  bool
	result []byte
	base   int64 // file offset just past the last write
	intro  []byte
}

// lock takes h.mu, unless the caller is interrupted first.
func (h *ctlHandle) lock(ctx context.Context) error {
	select {
	case h.mu <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fuse.Errno(syscall.EINTR)
	}
}

func (h *ctlHandle) unlock() { <-h.mu }

func (h *ctlHandle) Write(ctx context.Context, req *fuse.WriteRequest, resp *fuse.WriteResponse) error {
	if err := allow(ctx, kindCtl, mayWrite); err != nil {
		return err
	}
	if err := h.lock(ctx); err != nil {
		return err
	}
	defer h.unlock()
	var out strings.Builder
	var fail error
	cmds, err := h.file.parse(req.Data)
	if err != nil {
		fail = err
		out.WriteString("error: " + describe(err) + "\n")
	}
	for i, cmd := range cmds {
		if err := cmd.run(ctx); err != nil {
			err = orderFailure(err)
			fail = err
			out.WriteString("error: " + describe(err) + "\n")
			for _, rest := range cmds[i+1:] {
				out.WriteString("skipped: " + rest.text + "\n")
			}
			break
		}
		out.WriteString("ok: " + cmd.text + "\n")
	}
	if fail != nil {
		h.file.lastErr.set(describe(fail))
	}
	h.wrote, h.result = true, []byte(out.String())
	// A failed write leaves the file offset where it was; a successful one
	// moves it past the data. The result is read from there.
	h.base = req.Offset
	if fail != nil {
		return errnoOf(fail)
	}
	h.base += int64(len(req.Data))
	resp.Size = len(req.Data)
	return nil
}

// Read returns the result of this handle's last write, whether the reader
// continues from the write's end (`exec 3<>ctl; echo x >&3; cat <&3`) or
// seeks back to 0; or, before any write, the verbs and the last error.
func (h *ctlHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	if err := h.lock(ctx); err != nil {
		return err
	}
	defer h.unlock()
	if !h.wrote {
		if h.intro == nil {
			h.intro = []byte("verbs: " + h.file.verbs + "\nlast error: " + h.file.lastErr.get() + "\n")
		}
		resp.Data = sliceAt(h.intro, req.Offset, req.Size)
		return nil
	}
	off := req.Offset
	if off >= h.base {
		off -= h.base
	}
	resp.Data = sliceAt(h.result, off, req.Size)
	return nil
}
