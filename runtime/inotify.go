package runtime

import (
	"errors"
	"os"
	"sync"
	"time"
	"unsafe"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// inotify is the daemon's one inotify instance. The output logs being read
// (logwatch.go) and, on cgroup v2, the containers' memory.events files
// (oom.go) are watched through it. One goroutine reads it and calls each
// watch's callback, in that goroutine: a callback must not block.
//
// If reading fails, the loop logs it and, after a pause, makes a new
// instance and watches every file again: the watchers are told that events
// may have been lost (IN_Q_OVERFLOW), or that their file is gone
// (IN_IGNORED) if it can no longer be watched. It never ends silently.
type inotify struct {
	log logrus.FieldLogger

	mu      sync.Mutex // protects all following fields
	fd      int        // the instance, non-blocking; replaced on recovery
	f       *os.File   // fd, read through Go's poller
	watches map[int32]*inotifyWatch
	closed  bool
}

// inotifyWatch is one watched file.
type inotifyWatch struct {
	path string
	mask uint32
	// fn is called with each event's mask; IN_Q_OVERFLOW when events were
	// lost (it may have changed), IN_IGNORED once the kernel dropped the
	// watch (the file was removed), after which fn is not called again.
	fn func(mask uint32)
	wd int32 // guarded by inotify.mu; -1 once removed or dropped
}

func newInotify(log logrus.FieldLogger) (*inotify, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	in := &inotify{log: log, fd: fd, f: os.NewFile(uintptr(fd), "inotify"), watches: map[int32]*inotifyWatch{}}
	go in.loop()
	return in, nil
}

// add watches path for the events in mask (IN_MODIFY ...) and calls fn
// for each. A watch is never shared: the kernel gives one descriptor per
// inode and instance, so two adds of one file are refused.
func (in *inotify) add(path string, mask uint32, fn func(mask uint32)) (*inotifyWatch, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	// Under the lock from here: the reader looks the descriptor up under
	// it too, so an event can never arrive before its watch is listed.
	wd, err := unix.InotifyAddWatch(in.fd, path, mask)
	if err != nil {
		return nil, &os.PathError{Op: "inotify_add_watch", Path: path, Err: err}
	}
	if _, ok := in.watches[int32(wd)]; ok {
		return nil, &os.PathError{Op: "inotify_add_watch", Path: path, Err: errors.New("already watched")}
	}
	w := &inotifyWatch{path: path, mask: mask, fn: fn, wd: int32(wd)}
	in.watches[w.wd] = w
	return w, nil
}

// remove ends the watch; fn is not called after remove returns, except by
// a dispatch already under way. Removing twice, or a dropped watch, is a
// no-op.
func (in *inotify) remove(w *inotifyWatch) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if w.wd < 0 || in.watches[w.wd] != w {
		return
	}
	delete(in.watches, w.wd)
	// EINVAL only: the kernel dropped the watch already (its IN_IGNORED
	// is on its way and will find no watch).
	unix.InotifyRmWatch(in.fd, uint32(w.wd))
	w.wd = -1
}

// close stops the reader (tests; the daemon's instance lasts as long as it).
func (in *inotify) close() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closed = true
	in.f.Close() // ends the reader's Read; nothing to do about an error
}

// inotifyRetry bounds the pause before a failed reader makes a new instance.
var inotifyRetry = backoff{min: 10 * time.Millisecond, max: 5 * time.Second}

func (in *inotify) loop() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	retry := inotifyRetry
	for {
		in.mu.Lock()
		f, closed := in.f, in.closed
		in.mu.Unlock()
		if closed {
			return
		}
		n, err := f.Read(buf)
		if err == nil {
			retry.reset()
			in.dispatch(buf[:n])
			continue
		}
		in.mu.Lock()
		replaced, closed := in.f != f, in.closed
		in.mu.Unlock()
		if closed {
			return
		}
		if replaced {
			continue // renewed meanwhile: its close ended this read
		}
		in.log.WithError(err).Error("inotify: read failed: no log growth or OOM kill is seen until a new instance is made")
		time.Sleep(retry.next())
		if err := in.renew(); err != nil {
			in.log.WithError(err).Error("inotify: cannot make a new instance; trying again")
		}
	}
}

// dispatch calls the callbacks of the events in data.
func (in *inotify) dispatch(data []byte) {
	for off := 0; off+unix.SizeofInotifyEvent <= len(data); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&data[off]))
		off += unix.SizeofInotifyEvent + int(ev.Len)
		if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
			in.all(unix.IN_Q_OVERFLOW) // events were lost: tell everyone
			continue
		}
		in.mu.Lock()
		w := in.watches[ev.Wd]
		if w != nil && ev.Mask&unix.IN_IGNORED != 0 {
			delete(in.watches, ev.Wd) // the file is gone, and the watch
			w.wd = -1
		}
		in.mu.Unlock()
		if w != nil {
			w.fn(ev.Mask)
		}
	}
}

// all calls every watch's callback with mask.
func (in *inotify) all(mask uint32) {
	in.mu.Lock()
	ws := make([]*inotifyWatch, 0, len(in.watches))
	for _, w := range in.watches {
		ws = append(ws, w)
	}
	in.mu.Unlock()
	for _, w := range ws {
		w.fn(mask)
	}
}

// renew replaces the instance with a new one watching the same files. The
// events of the old one are lost: every watcher is told so; a file that
// cannot be watched any more is reported gone.
func (in *inotify) renew() error {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	in.mu.Lock()
	old := in.f
	kept := make(map[int32]*inotifyWatch, len(in.watches))
	var dropped []*inotifyWatch
	for _, w := range in.watches {
		wd, err := unix.InotifyAddWatch(fd, w.path, w.mask)
		if err != nil {
			w.wd = -1
			dropped = append(dropped, w)
			continue
		}
		w.wd = int32(wd)
		kept[w.wd] = w
	}
	in.fd, in.f, in.watches = fd, os.NewFile(uintptr(fd), "inotify"), kept
	in.mu.Unlock()
	old.Close() // the old instance: nothing more to read from it
	in.log.WithField("watches", len(kept)).Warn("inotify: new instance made")
	for _, w := range dropped {
		w.fn(unix.IN_IGNORED)
	}
	in.all(unix.IN_Q_OVERFLOW)
	return nil
}

// backoff is a growing pause between retries.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else if b.cur *= 2; b.cur > b.max {
		b.cur = b.max
	}
	return b.cur
}

func (b *backoff) reset() { b.cur = 0 }
