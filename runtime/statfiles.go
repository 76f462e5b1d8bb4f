package runtime

import (
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// maxKeptStatFiles is how many containers keep their cgroup files open
// between stats reads: about 20 files each, so a few thousand fds at most,
// whatever the number of containers.
const maxKeptStatFiles = 64

// statFiles keeps one container's cgroup files open between stats reads.
// Reading an open cgroup file again from offset 0 (pread) makes the kernel
// generate it afresh, at a quarter of the cost of open+read+close (the
// open of a cgroup file is the expensive part). Only the containers whose
// stats were read most recently keep theirs (see statLRU); the others
// read as usual.
type statFiles struct {
	mu   sync.Mutex // held through a whole stats read; guards fds
	fds  map[string]int
	kept atomic.Bool // files opened now are kept; set by statLRU
}

// read reads the file at path into *buf; the result is valid until the
// next read. Caller holds f.mu (f may be nil: nothing is kept).
func (f *statFiles) read(path string, buf *[]byte) ([]byte, error) {
	if f == nil || !f.kept.Load() {
		return readFileInto(path, buf)
	}
	fd, ok := f.fds[path]
	if !ok {
		var err error
		if fd, err = unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0); err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		if f.fds == nil {
			f.fds = map[string]int{}
		}
		f.fds[path] = fd
	}
	for {
		n, err := unix.Pread(fd, *buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			unix.Close(fd)
			delete(f.fds, path)
			if err == unix.ENODEV { // the cgroup was removed under the open file
				err = unix.ENOENT
			}
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n < len(*buf) {
			return (*buf)[:n], nil
		}
		*buf = append(*buf, make([]byte, len(*buf))...) // it may hold more: again, bigger
	}
}

// release closes every kept file and keeps no more until the next touch.
func (f *statFiles) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kept.Store(false)
	for _, fd := range f.fds {
		unix.Close(fd)
	}
	f.fds = nil
}

// statLRU picks the containers that keep their files: the most recently
// read ones, at most max of them.
type statLRU struct {
	mu    sync.Mutex
	max   int
	order []*statFiles // least recently read first
}

// touch marks f read now, making it keep its files; the least recently
// read set beyond max is released (after l.mu is let go: a release waits
// for a read under way).
func (l *statLRU) touch(f *statFiles) {
	if l == nil {
		return // nothing is kept
	}
	var victim *statFiles
	l.mu.Lock()
	i := l.index(f)
	if i >= 0 {
		l.order = append(l.order[:i], l.order[i+1:]...)
	}
	l.order = append(l.order, f)
	if len(l.order) > l.max {
		victim = l.order[0]
		l.order = l.order[1:]
	}
	// Set even when f was there: a release that raced with this touch
	// may have just cleared it. Set under l.mu, so that only a set in
	// order, or one whose release is under way, keeps files.
	f.kept.Store(true)
	l.mu.Unlock()
	if victim != nil {
		victim.release()
	}
}

// forget releases f for good (its container stopped or went away).
func (l *statLRU) forget(f *statFiles) {
	if l == nil { // a container made without a runtime (tests)
		f.release()
		return
	}
	l.mu.Lock()
	if i := l.index(f); i >= 0 {
		l.order = append(l.order[:i], l.order[i+1:]...)
	}
	l.mu.Unlock()
	f.release()
}

func (l *statLRU) index(f *statFiles) int {
	for i, g := range l.order {
		if g == f {
			return i
		}
	}
	return -1
}
