package fsys

import (
	"sync/atomic"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// Times and sizes (docs/files.md, "Times and sizes"): every file's mtime,
// ctime and atime are when its content last changed, taken from the
// runtime's memory (runtime.Times), and a file whose content is in memory
// shows its real size. The kernel caches attributes (bazil's default, a
// minute): a node whose times change is told to drop them when the change
// is published (changed), before the order that made it returns.

// stamp is a node's times: mtime gives them (nil: bazil's default, the
// daemon's start). It remembers whether the kernel may have cached them,
// so that a change of a file nobody stat'ed costs nothing.
type stamp struct {
	mtime func() time.Time
	// live: the times change without an event to tell (stats: now; the
	// logs' growth): the kernel is told never to cache them.
	live   bool
	served atomic.Bool
}

// setTimes sets a's times. Marked served first: a change that comes after
// the time was read then always invalidates.
func (s *stamp) setTimes(a *fuse.Attr) {
	if s.mtime == nil {
		return
	}
	s.served.Store(true)
	setTimes(a, s.mtime())
	if s.live {
		a.Valid = 0
	}
}

// changed drops the kernel's cached attributes of node, whose stamp s is.
func (s *stamp) changed(n *notifier, node fs.Node) {
	if s.served.Swap(false) {
		n.invalidateAttr(node)
	}
}

// setTimes gives a file changed at t its mtime, ctime and atime.
func setTimes(a *fuse.Attr, t time.Time) {
	a.Mtime, a.Ctime, a.Atime = t, t, t
}

// contentSize is the size of a file whose content is in memory: its
// length now. A file whose content cannot be made shows 0.
func contentSize(content func() ([]byte, error)) uint64 {
	b, err := content()
	if err != nil {
		return 0
	}
	return uint64(len(b))
}

// pageRounded is the size of a file made per open: its last snapshot's
// length rounded up to a 4 KiB page, as sysfs reports 4096 (see roFile).
func pageRounded(last int64) uint64 {
	return uint64(last+4095) &^ 4095
}

// invalidateAttr makes the kernel forget node's cached attributes. It
// only marks them stale (FUSE_NOTIFY_INVAL_INODE with no range): the
// kernel takes no lock a request holds, so unlike an entry's
// invalidation it cannot wait on the server, and may be sent from any
// goroutine, the publisher's included.
func (n *notifier) invalidateAttr(node fs.Node) {
	if srv := n.srv.Load(); srv != nil {
		_ = srv.InvalidateNodeAttr(node) // ErrNotCached: nothing to drop
	}
}

// logTime is when process p's stream last grew (the log's mtime), or its
// start if the log cannot be stat'ed.
func logTime(p Process, stream string) func() time.Time {
	return func() time.Time {
		if _, mtime, err := p.OutputStat(stream); err == nil {
			return mtime
		}
		return p.Times().Started
	}
}
