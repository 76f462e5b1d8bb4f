package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// Output streams of a process.
const (
	Stdout = proto.StdoutLog
	Stderr = proto.StderrLog
)

// OutputLog is one output stream of a process seen as the log file it is:
// its size is the length of the stream so far, and the bytes at an offset
// are the stream's bytes at that offset, once written. It holds no file
// descriptor between calls (each read opens the log and closes it), so an
// idle reader costs the daemon no fd; the watch that tells readers of
// growth is shared by every reader of the log.
//
// The log keeps the newest bytes up to the process's log bound (see the
// shim's boundedFile): the shim punches the oldest bytes out, so the
// stream's start may be gone; what is gone reads as skipped (ReadAt).
type OutputLog struct {
	p      *Process
	stream string
	path   string
	watch  *watchedLog // nil if the log could not be watched
}

// OpenLog opens stream (Stdout or Stderr) of p as a log.
func (p *Process) OpenLog(stream string) (*OutputLog, error) {
	if stream != Stdout && stream != Stderr {
		return nil, Errorf(KindInvalid, "no output stream %q", stream)
	}
	l := &OutputLog{p: p, stream: stream, path: filepath.Join(p.dir, stream)}
	if !p.finished() {
		w, err := p.c.rt.logs.add(l.path)
		switch {
		case err == nil:
			l.watch = w
		case !errors.Is(err, os.ErrNotExist):
			// Not fatal: readers still end at the exit, and Ready
			// then fires at the exit only.
			p.c.log.WithError(err).WithField("process", p.name).Warn("output log not watched: a blocked reader wakes only at the exit")
		}
		// No log yet: the shim has not made it; readers find it at
		// their first read, and wake at the exit.
	}
	return l, nil
}

// Close releases the log's watch.
func (l *OutputLog) Close() error {
	if l.watch != nil {
		l.p.c.rt.logs.release(l.watch)
		l.watch = nil
	}
	return nil
}

// Size is the length of the stream so far, the bytes let go at its start
// included (not those the shim never wrote: see Lost).
func (l *OutputLog) Size() (int64, error) {
	size, _, err := l.p.OutputStat(l.stream)
	return size, err
}

// Exited reports whether the stream is complete: the process has exited
// and its shim has written everything.
func (l *OutputLog) Exited() bool { return l.p.finished() }

// ReadAt reads at most len(buf) bytes of the stream from offset off. The
// bytes come from offset at: off itself, or, when the bytes from off on
// were let go (the log's bound), the first byte still kept after them.
// n == 0 with a nil error is the end of what is there now.
func (l *OutputLog) ReadAt(buf []byte, off int64) (n int, at int64, err error) {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, off, nil // not made yet, or removed: nothing there
	}
	if err != nil {
		return 0, off, Errorf(KindInternal, "%s of process %q: %v", l.stream, l.p.name, err)
	}
	defer f.Close() // read-only: nothing to lose
	at = max(off, firstKept(f))
	n, err = f.ReadAt(buf, at)
	if err != nil && err != io.EOF {
		return 0, at, Errorf(KindInternal, "read %s: %v", l.path, err)
	}
	// Bytes punched out while they were read read as zeros: drop those
	// below the oldest byte kept now (punches only ever move it up).
	if first := firstKept(f); first > at && n > 0 {
		cut := min(first-at, int64(n))
		copy(buf, buf[cut:n])
		n -= int(cut)
		at += cut
	}
	return n, at, nil
}

// Lost is how many bytes of the stream the log let go so far: those
// punched out of its start to keep within its bound, and those the shim
// never wrote (a filesystem without holes, the disk guard of an unbounded
// log, a write error).
func (l *OutputLog) Lost() (int64, error) {
	var punched int64
	f, err := os.Open(l.path)
	switch {
	case err == nil:
		punched = firstKept(f)
		f.Close()
		// All hole (or empty): firstKept is the size, every byte of
		// which was punched or none was written.
	case !errors.Is(err, os.ErrNotExist):
		return 0, Errorf(KindInternal, "%s of process %q: %v", l.stream, l.p.name, err)
	}
	var dropped int64
	data, err := os.ReadFile(l.path + proto.LostSuffix)
	switch {
	case err == nil:
		dropped, err = strconv.ParseInt(string(data), 10, 64)
		if err != nil {
			return 0, Errorf(KindInternal, "%s%s of process %q: %v", l.stream, proto.LostSuffix, l.p.name, err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return 0, Errorf(KindInternal, "%s of process %q: %v", l.stream, l.p.name, err)
	}
	return punched + dropped, nil
}

// OutputLost is Lost of p's stream.
func (p *Process) OutputLost(stream string) (int64, error) {
	if stream != Stdout && stream != Stderr {
		return 0, Errorf(KindInvalid, "no output stream %q", stream)
	}
	l := OutputLog{p: p, stream: stream, path: filepath.Join(p.dir, stream)}
	return l.Lost()
}

// Ready returns a channel that is closed when the log may have changed:
// it grew, or the process exited (the exit wakes the log's watchers too).
// Take it before the read that found nothing, so that no change falls
// between the two.
func (l *OutputLog) Ready() <-chan struct{} {
	if l.watch == nil {
		return l.p.Done()
	}
	ch := l.p.c.rt.logs.changed(l.watch)
	select {
	case <-l.p.Done():
		return l.p.Done()
	default:
		return ch
	}
}

// OutputLostError is what a follower's Read returns, once, when the bytes
// at its position were let go before it read them: it goes on at the first
// byte still kept.
type OutputLostError struct {
	Stream string
	Bytes  int64 // skipped at this read
	Total  int64 // skipped by this reader in all
}

func (e *OutputLostError) Error() string {
	return fmt.Sprintf("%s.follow: this reader lost %d bytes here (%d in all): the process wrote them faster than they were read, past the log's bound; reading goes on at the oldest byte kept", e.Stream, e.Bytes, e.Total)
}

// OutputReader follows one output log of a process from the oldest byte
// the log still keeps: at the end it has nothing yet while the process
// runs, and reaches EOF once the process has exited and every byte is
// read. Every reader has its own position, so several readers each get
// every byte. A reader that falls further behind than the log's bound
// loses what was let go: its Read says so once (OutputLostError), then it
// goes on at the oldest byte kept. It holds no file descriptor.
type OutputReader struct {
	*OutputLog

	mu      sync.Mutex
	started bool // pos is set: the first read starts at the oldest byte kept
	pos     int64
	skipped int64
}

// OpenOutput opens a follower of stream (Stdout or Stderr).
func (p *Process) OpenOutput(stream string) (*OutputReader, error) {
	l, err := p.OpenLog(stream)
	if err != nil {
		return nil, err
	}
	return &OutputReader{OutputLog: l}, nil
}

// Skipped is how many bytes this reader lost by falling more than the
// log's bound behind.
func (r *OutputReader) Skipped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

// Readable reports whether a Read would give something now: bytes past the
// reader's position, or EOF.
func (r *OutputReader) Readable() bool {
	if r.p.finished() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	size, err := r.Size()
	return err == nil && size > r.pos
}

// Read reads at most len(buf) bytes at the reader's position without
// waiting: n > 0 bytes; or 0 and ErrWouldBlock when the process runs and
// has written nothing more; or 0 and io.EOF once it has exited and
// everything is read; or 0 and an *OutputLostError when bytes were let go
// at the position (which then moves past them).
func (r *OutputReader) Read(buf []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Asked before reading: once the process is Done its shim has
	// drained the output and is gone, so what the read then finds is all
	// there is. (The exit itself is recorded earlier, from the shim's
	// report, while the shim may still be copying the last output.)
	exited := r.p.finished()
	n, at, err := r.ReadAt(buf, r.pos)
	if err != nil {
		return 0, err
	}
	if !r.started {
		// A new reader starts at the oldest byte kept: nothing lost.
		r.started, r.pos = true, at
	}
	if at > r.pos {
		skip := at - r.pos
		r.skipped += skip
		r.pos = at
		return 0, &OutputLostError{Stream: r.stream, Bytes: skip, Total: r.skipped}
	}
	r.pos += int64(n)
	switch {
	case n > 0:
		return n, nil
	case exited:
		return 0, io.EOF
	}
	return 0, ErrWouldBlock
}

// firstKept is the offset of the oldest byte a log still keeps: where its
// data starts after the holes the shim punched (its size if it holds none).
func firstKept(f *os.File) int64 {
	var off int64
	// SyscallConn fails only on a closed file, whose read fails on its
	// own; SEEK_END of an open regular file does not fail.
	rc, err := f.SyscallConn()
	if err != nil {
		return 0
	}
	rc.Control(func(fd uintptr) {
		var serr error
		off, serr = unix.Seek(int(fd), 0, unix.SEEK_DATA)
		if serr != nil { // ENXIO: no data at all
			off, _ = unix.Seek(int(fd), 0, unix.SEEK_END)
		}
	})
	return off
}

// OutputStat gives the length of p's stream so far (see OutputLog.Size)
// and when it last grew (the log's mtime; zero while there is no log).
func (p *Process) OutputStat(stream string) (size int64, mtime time.Time, err error) {
	if stream != Stdout && stream != Stderr {
		return 0, time.Time{}, Errorf(KindInvalid, "no output stream %q", stream)
	}
	st, err := os.Stat(filepath.Join(p.dir, stream))
	switch {
	case errors.Is(err, os.ErrNotExist):
		return 0, time.Time{}, nil
	case err != nil:
		return 0, time.Time{}, Errorf(KindInternal, "%s of process %q: %v", stream, p.name, err)
	}
	return st.Size(), st.ModTime(), nil
}
