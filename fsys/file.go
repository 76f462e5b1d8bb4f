package fsys

import (
	"context"
	"sync/atomic"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// roFile is a read-only file whose content is made at open: every open sees
// the present, and one open handle reads one consistent snapshot.
type roFile struct {
	content func() ([]byte, error)
	// pageSize, when set, makes the file report the length of its last
	// snapshot rounded up to a 4 KiB page, as sysfs reports 4096 for
	// its files: a reader that sizes its buffer from stat (Go's
	// os.ReadFile) then reads it in one READ instead of growing its
	// buffer from 512 bytes, one FUSE round trip a step.
	pageSize bool
	last     atomic.Int64
	// sized: the content is in memory, made at stat: its real length.
	sized bool
	stamp stamp
}

func newROFile(content func() ([]byte, error)) *roFile {
	return &roFile{content: content}
}

// newKnownFile is a read-only file whose content is in memory: it shows
// its real size, and mtime as when it last changed.
func newKnownFile(mtime func() time.Time, content func() ([]byte, error)) *roFile {
	f := newROFile(content)
	f.sized, f.stamp.mtime = true, mtime
	return f
}

func (f *roFile) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindFile)
	f.stamp.setTimes(a)
	switch {
	case f.pageSize:
		a.Size = pageRounded(f.last.Load())
	case f.sized:
		a.Size = contentSize(f.content)
	}
	return nil
}

// Setattr refuses truncation: these files are not for writing.
func (f *roFile) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return fuse.Errno(syscall.EACCES)
}

func (f *roFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindFile, openWant(req.Flags)); err != nil {
		return nil, err
	}
	if !req.Flags.IsReadOnly() {
		return nil, fuse.Errno(syscall.EACCES)
	}
	b, err := f.content()
	if err != nil {
		return nil, errnoOf(err)
	}
	f.last.Store(int64(len(b)))
	resp.Flags |= fuse.OpenDirectIO
	return snapshot(b), nil
}

// snapshot is an open handle on fixed content.
type snapshot []byte

// Flush answers ENOSYS: nothing is buffered, and after one ENOSYS the kernel
// stops sending FLUSH on close at all, one round trip less per read.
func (s snapshot) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}

func (s snapshot) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	resp.Data = sliceAt(s, req.Offset, req.Size)
	return nil
}

// sliceAt returns up to size bytes of b from offset off.
func sliceAt(b []byte, off int64, size int) []byte {
	if off < 0 || off >= int64(len(b)) {
		return nil
	}
	b = b[off:]
	if len(b) > size {
		b = b[:size]
	}
	return b
}

// text makes file content from a string, ending it with a newline unless
// it is empty.
func text(s string) []byte {
	if s == "" {
		return nil
	}
	return []byte(s + "\n")
}

// readOnlyFile gives a read-only file node (events, wait, the watched and
// the output files) its owner and mode (setAttr: the access policy), and refuses every change, truncation
// included, with EACCES.
type readOnlyFile struct {
	stamp stamp // its times, when set
}

func (f *readOnlyFile) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindFile)
	f.stamp.setTimes(a)
	return nil
}

func (*readOnlyFile) Setattr(ctx context.Context, req *fuse.SetattrRequest, resp *fuse.SetattrResponse) error {
	return fuse.Errno(syscall.EACCES)
}
