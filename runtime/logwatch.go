package runtime

import (
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// logWatch tells readers of output logs that a log grew: one inotify
// instance and one goroutine for the daemon, a watch on a log only while
// someone reads it. The shim writes the logs; the kernel tells the daemon,
// so nothing is asked of the shim and nothing polls.
type logWatch struct {
	f *os.File // the inotify fd, non-blocking: read through Go's poller

	mu     sync.Mutex
	byPath map[string]*watchedLog
	byWd   map[int32]*watchedLog
}

// watchedLog is one watched log file and its readers' signal.
type watchedLog struct {
	path string
	wd   int32 // -1 once the kernel dropped the watch (file removed)
	refs int
	ch   chan struct{} // closed, and replaced, at every change
}

func newLogWatch() (*logWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &logWatch{f: os.NewFile(uintptr(fd), "inotify"), byPath: map[string]*watchedLog{}, byWd: map[int32]*watchedLog{}}
	go w.loop()
	return w, nil
}

// add starts (or shares) the watch on path.
func (w *logWatch) add(path string) (*watchedLog, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A watch the kernel dropped is not shared: the path may name a new
	// file now (a process of the same name, after a removal).
	if l, ok := w.byPath[path]; ok && l.wd >= 0 {
		l.refs++
		return l, nil
	}
	rc, err := w.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var wd int
	var werr error
	rc.Control(func(fd uintptr) {
		wd, werr = unix.InotifyAddWatch(int(fd), path, unix.IN_MODIFY)
	})
	if werr != nil {
		return nil, werr
	}
	l := &watchedLog{path: path, wd: int32(wd), refs: 1, ch: make(chan struct{})}
	w.byPath[path] = l
	w.byWd[l.wd] = l
	return l, nil
}

// release ends one reader's interest; the last one removes the watch.
func (w *logWatch) release(l *watchedLog) {
	w.mu.Lock()
	defer w.mu.Unlock()
	l.refs--
	if l.refs > 0 {
		return
	}
	if w.byPath[l.path] == l {
		delete(w.byPath, l.path)
	}
	if l.wd >= 0 {
		delete(w.byWd, l.wd)
		if rc, err := w.f.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { unix.InotifyRmWatch(int(fd), uint32(l.wd)) })
		}
	}
}

// changed returns a channel closed at the log's next change.
func (w *logWatch) changed(l *watchedLog) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return l.ch
}

// wakeDir wakes the readers of every watched log in dir (a process's
// directory, once it has exited: its logs will not change again).
func (w *logWatch) wakeDir(dir string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for path, l := range w.byPath {
		if filepath.Dir(path) == dir {
			w.fire(l)
		}
	}
}

func (w *logWatch) fire(l *watchedLog) {
	close(l.ch)
	l.ch = make(chan struct{})
}

func (w *logWatch) loop() {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			return
		}
		w.mu.Lock()
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				for _, l := range w.byWd { // events were lost: wake everyone
					w.fire(l)
				}
				continue
			}
			l, ok := w.byWd[ev.Wd]
			if !ok {
				continue
			}
			w.fire(l)
			if ev.Mask&unix.IN_IGNORED != 0 { // the file is gone, and the watch
				delete(w.byWd, l.wd)
				l.wd = -1
			}
		}
		w.mu.Unlock()
	}
}
