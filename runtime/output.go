package runtime

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// Output streams of a process.
const (
	Stdout = proto.StdoutLog
	Stderr = proto.StderrLog
)

// OutputReader reads one output log of a process from the oldest byte the
// log still keeps, and follows it as the shim appends: at the end it has
// nothing yet while the process runs, and reaches EOF once the process has
// exited and every byte is read. Every reader has its own position, so
// several readers each get every byte.
//
// The log keeps the newest --log-max-size bytes (see the shim's
// boundedFile): its file offsets are the stream's offsets, and the shim
// punches the oldest bytes out. A reader that falls behind that far loses
// what was punched and goes on at the oldest byte kept; Skipped counts
// those bytes.
type OutputReader struct {
	p     *Process
	path  string
	watch *watchedLog // nil if the log could not be watched

	mu      sync.Mutex
	f       *os.File
	pos     int64
	skipped int64
}

// OpenOutput opens a reader of stream (Stdout or Stderr).
func (p *Process) OpenOutput(stream string) (*OutputReader, error) {
	if stream != Stdout && stream != Stderr {
		return nil, Errorf(KindInvalid, "no output stream %q", stream)
	}
	r := &OutputReader{p: p, path: filepath.Join(p.dir, stream)}
	// The watch comes first: a change after it is never missed.
	if !p.finished() {
		l, err := p.c.rt.logs.add(r.path)
		switch {
		case err == nil:
			r.watch = l
		case !errors.Is(err, os.ErrNotExist):
			// Not fatal: the reader still ends at the exit, and its
			// Ready then fires at the exit only.
			p.c.log.WithError(err).WithField("process", p.name).Warn("output log not watched: a blocked reader wakes only at the exit")
		}
		// No log yet: the shim has not made it; the reader opens it at
		// its first read, and wakes at the exit.
	}
	f, err := os.Open(r.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		r.Close()
		return nil, Errorf(KindInternal, "%s of process %q: %v", stream, p.name, err)
	}
	r.f = f // nil when the shim has not made the log yet, or it is damaged
	if r.f != nil {
		r.pos = firstKept(r.f)
	}
	return r, nil
}

// Close releases the reader.
func (r *OutputReader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f != nil {
		r.f.Close() // read-only: nothing to lose
		r.f = nil
	}
	if r.watch != nil {
		r.p.c.rt.logs.release(r.watch)
		r.watch = nil
	}
	return nil
}

// Skipped is how many bytes this reader lost by falling more than the
// log's bound behind.
func (r *OutputReader) Skipped() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skipped
}

// Ready returns a channel that is closed when a Read may give something
// new: the log changed, or the process exited (the exit wakes the log's
// watchers too). Take it before the Read that found nothing, so that no
// change falls between the two.
func (r *OutputReader) Ready() <-chan struct{} {
	if r.watch == nil {
		return r.p.Done()
	}
	ch := r.p.c.rt.logs.changed(r.watch)
	select {
	case <-r.p.Done():
		return r.p.Done()
	default:
		return ch
	}
}

// Readable reports whether a Read would give something now: bytes past the
// reader's position, or EOF.
func (r *OutputReader) Readable() bool {
	if r.p.finished() {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var st os.FileInfo
	var err error
	if r.f != nil {
		st, err = r.f.Stat()
	} else {
		st, err = os.Stat(r.path)
	}
	return err == nil && st.Size() > r.pos
}

// Read reads at most len(buf) bytes at the reader's position without
// waiting: n > 0 bytes; or 0 and ErrWouldBlock when the process runs and
// has written nothing more; or 0 and io.EOF once it has exited and
// everything is read.
func (r *OutputReader) Read(buf []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// Asked before reading: once the process is Done its shim has
	// drained the output and is gone, so what the read then finds is all
	// there is. (The exit itself is recorded earlier, from the shim's
	// report, while the shim may still be copying the last output.)
	exited := r.p.finished()
	if r.f == nil {
		f, err := os.Open(r.path)
		if err != nil {
			if exited {
				return 0, io.EOF
			}
			return 0, ErrWouldBlock
		}
		r.f = f
		r.pos = firstKept(f)
	}
	if first := firstKept(r.f); first > r.pos {
		r.skipped += first - r.pos
		r.pos = first
	}
	n, err := r.f.ReadAt(buf, r.pos)
	if err != nil && err != io.EOF {
		return 0, Errorf(KindInternal, "read %s: %v", r.path, err)
	}
	// Bytes punched out while they were read read as zeros: drop those
	// below the oldest byte kept now (punches only ever move it up).
	if n > 0 {
		if first := firstKept(r.f); first > r.pos {
			cut := min(first-r.pos, int64(n))
			copy(buf, buf[cut:n])
			n -= int(cut)
			r.skipped += cut
			r.pos += cut
		}
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
