package shim

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// boundedFile appends to a log that keeps at most max bytes of data: the
// newest ones. Past the bound it punches the oldest whole blocks out of the
// file (fallocate PUNCH_HOLE), so the file's offsets stay the offsets of
// the stream — a reader following at offset N never has to be told that
// the file moved — and the first byte still kept is where lseek(SEEK_DATA)
// lands. Writes never fail and never block on the bound: a process whose
// output nobody reads must not stall. On a filesystem that cannot punch
// holes it keeps the first max bytes instead and drops the rest.
type boundedFile struct {
	f     *os.File
	max   int64
	align int64 // punches cover whole multiples of this
	size  int64 // the file's size: offset of the next byte
	start int64 // first byte still kept
	punch bool  // holes work here; else keep the head and drop

	trimmed int64 // bytes punched out of the front
	dropped int64 // bytes never written (no holes, or after an error)
	err     error // first write error; from then on everything is dropped
}

func openBounded(path string, max int64) (*boundedFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close() // the Stat error is the one to tell
		return nil, err
	}
	b := &boundedFile{f: f, max: max, align: punchAlign(max), size: st.Size()}
	b.start = firstData(int(f.Fd()), b.size)
	// Probe for hole support past the end, where punching changes nothing.
	probe := alignUp(b.size, 4096)
	b.punch = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, probe, 4096) == nil
	return b, nil
}

// punchAlign is the unit of the holes: whole filesystem blocks (4 KiB is a
// multiple of every block size Linux uses for files here), about a
// sixteenth of the bound, so a log at its bound is trimmed once every
// max/16 bytes rather than at every write, and keeps between 15/16 of max
// and max.
func punchAlign(bound int64) int64 {
	a := bound / 16 &^ 4095
	return min(max(a, 4096), 1<<20)
}

func alignUp(n, a int64) int64 { return (n + a - 1) / a * a }

// firstData is the offset of the first byte of data in fd, or size when
// there is none (an empty file, or one that is all hole).
func firstData(fd int, size int64) int64 {
	off, err := unix.Seek(fd, 0, unix.SEEK_DATA)
	if err != nil || off > size {
		return size
	}
	return off
}

// Write keeps p and, past the bound, lets the oldest bytes go. It always
// reports all of p as written.
func (b *boundedFile) Write(p []byte) (int, error) {
	data := p
	if !b.punch {
		room := max(b.max-b.size, 0)
		if int64(len(data)) > room {
			data = data[:room]
		}
	}
	var n int
	if len(data) > 0 && b.err == nil {
		n, b.err = b.f.Write(data)
		b.size += int64(n)
	}
	b.dropped += int64(len(p) - n)
	if b.punch && b.size-b.start > b.max && b.err == nil {
		b.trim()
	}
	return len(p), nil
}

// trim punches the oldest bytes out so that at most max are kept.
func (b *boundedFile) trim() {
	to := alignUp(b.size-b.max, b.align)
	if to <= b.start {
		return
	}
	if err := unix.Fallocate(int(b.f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, b.start, to-b.start); err != nil {
		b.err = err
		return
	}
	b.trimmed += to - b.start
	b.start = to
}

func (b *boundedFile) Close() error { return b.f.Close() }

// logCopy copies one output of the process (a pipe, or a terminal's master
// end) into a bounded file.
type logCopy struct {
	r    *os.File
	w    *boundedFile
	done chan struct{}
}

// copyBufSize is the copy's read size: a pipe holds 64 KiB unless made
// bigger (see newStdio), and a bigger read means fewer syscalls.
const copyBufSize = 128 << 10

func startLogCopy(r *os.File, path string, max int64) (*logCopy, error) {
	w, err := openBounded(path, max)
	if err != nil {
		return nil, err
	}
	c := &logCopy{r: r, w: w, done: make(chan struct{})}
	go c.run()
	return c, nil
}

// openLog opens the bounded file at path and copies r into it once r is
// known (see copyFrom): a terminal's master end arrives after the runtime
// started the process, but its log must exist from the start.
func openLog(path string, max int64) (*logCopy, error) {
	w, err := openBounded(path, max)
	if err != nil {
		return nil, err
	}
	return &logCopy{w: w, done: make(chan struct{})}, nil
}

// copyFrom starts copying r, for a logCopy made by openLog.
func (c *logCopy) copyFrom(r *os.File) {
	c.r = r
	go c.run()
}

func (c *logCopy) run() {
	defer close(c.done)
	buf := make([]byte, copyBufSize)
	for {
		// A terminal's master end reads EIO once the last holder of the
		// other end is gone: that is its EOF.
		n, err := c.r.Read(buf)
		c.w.Write(buf[:n]) // never fails: it keeps its first error in c.w.err
		if err != nil {
			return
		}
	}
}

// finish waits for EOF until deadline, then stops reading (a process that
// escaped the container may hold the pipe forever) and closes both ends.
// It returns the bytes trimmed from the front and dropped, and the first
// write error.
func (c *logCopy) finish(deadline time.Time) (trimmed, dropped int64, err error) {
	if c.r == nil { // never started: nothing to copy
		close(c.done)
	}
	select {
	case <-c.done:
	case <-time.After(time.Until(deadline)):
		c.r.SetReadDeadline(time.Now()) // wakes the blocked Read
		<-c.done
		err = errors.New("output still open at exit; stopped reading")
	}
	if c.r != nil {
		c.r.Close() // the read end: nothing to lose
	}
	if cerr := c.w.Close(); c.w.err == nil {
		c.w.err = cerr
	}
	if c.w.err != nil {
		err = c.w.err
	}
	return c.w.trimmed, c.w.dropped, err
}
