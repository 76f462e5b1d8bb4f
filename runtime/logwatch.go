package runtime

import (
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// logWatch tells readers of output logs that a log grew: a watch on a log
// only while someone reads it, through the daemon's one inotify instance
// (inotify.go). The shim writes the logs; the kernel tells the daemon, so
// nothing is asked of the shim and nothing polls.
type logWatch struct {
	in *inotify

	mu     sync.Mutex // protects byPath and every watchedLog's fields; taken before inotify.mu
	byPath map[string]*watchedLog
}

// watchedLog is one watched log file and its readers' signal.
type watchedLog struct {
	path    string
	w       *inotifyWatch
	dropped bool // the kernel dropped the watch (file removed)
	refs    int
	ch      chan struct{} // closed, and replaced, at every change
}

func newLogWatch(in *inotify) *logWatch {
	return &logWatch{in: in, byPath: map[string]*watchedLog{}}
}

// add starts (or shares) the watch on path.
func (w *logWatch) add(path string) (*watchedLog, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// A watch the kernel dropped is not shared: the path may name a new
	// file now (a process of the same name, after a removal).
	if l, ok := w.byPath[path]; ok && !l.dropped {
		l.refs++
		return l, nil
	}
	l := &watchedLog{path: path, refs: 1, ch: make(chan struct{})}
	// The callback takes w.mu, held here until l is complete.
	iw, err := w.in.add(path, unix.IN_MODIFY, func(mask uint32) { w.event(l, mask) })
	if err != nil {
		return nil, err
	}
	l.w = iw
	w.byPath[path] = l
	return l, nil
}

// event is the inotify callback of l: a change, lost events (which may
// have been changes), or the end of the watch all wake its readers.
func (w *logWatch) event(l *watchedLog, mask uint32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fire(l)
	if mask&unix.IN_IGNORED != 0 {
		l.dropped = true
	}
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
	w.in.remove(l.w) // a no-op once dropped
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
