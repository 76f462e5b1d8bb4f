package fsys

import (
	"context"
	"sync"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// constFile is a read-only file whose content never changes while its node
// lives (version; a container's labels, bundle, runtime and config.json).
// Its exact size is in its attributes and its pages stay in the kernel's
// cache from one open to the next (FOPEN_KEEP_CACHE), so a read after the
// first is OPEN alone: no READ, and no GETATTR (only a READ marks the atime
// stale). A re-created id is a new node, never this one's pages.
type constFile struct {
	readOnlyFile
	content func() []byte // made once, at the first use
}

// constAttrValid is how long the kernel keeps a constFile's attributes.
const constAttrValid = time.Minute

// newConstFile makes a constFile; mtime gives its times (its creation).
func newConstFile(mtime func() time.Time, content func() []byte) *constFile {
	f := &constFile{content: sync.OnceValue(content)}
	f.stamp.mtime = mtime
	return f
}

func (f *constFile) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindFile)
	f.stamp.setTimes(a)
	a.Size = uint64(len(f.content()))
	a.Valid = constAttrValid
	return nil
}

func (f *constFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindFile, openWant(req.Flags)); err != nil {
		return nil, err
	}
	if !req.Flags.IsReadOnly() {
		return nil, fuse.Errno(syscall.EACCES)
	}
	resp.Flags |= fuse.OpenKeepCache
	return snapshot(f.content()), nil
}
