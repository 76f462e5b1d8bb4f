package shim

import (
	"errors"
	"os"
	"strconv"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
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
//
// A max below 0 keeps everything, as long as the disk guard allows: while
// the log's filesystem has less than diskGuard free, bytes are dropped
// (counted) rather than fill the disk the daemon needs for its own state.
//
// Bytes dropped (never written) are published in lostPath, so that the
// daemon can tell readers about them while the process runs: the punched
// ones it sees itself (SEEK_DATA).
type boundedFile struct {
	f        *os.File
	lostPath string // where dropped is published ("" for none)
	max      int64  // < 0: no bound, only the disk guard
	align    int64  // punches cover whole multiples of this
	size     int64  // the file's size: offset of the next byte
	start    int64  // first byte still kept
	punch    bool   // holes work here; else keep the head and drop

	trimmed int64 // bytes punched out of the front
	dropped int64 // bytes never written (no holes, the disk guard, or after an error)
	err     error // first write error; from then on everything is dropped

	published    int64     // dropped as last published
	publishedAt  time.Time // when
	sinceCheck   int64     // bytes written since the disk guard last looked
	guardOn      bool      // the disk was short of room at the last look
	guardChecked bool
}

// diskGuard is what an unbounded log leaves free on its filesystem: a
// twentieth of the filesystem, at most 1 GiB. It is looked at every
// guardEvery bytes (one fstatfs).
func diskGuard(st *unix.Statfs_t) int64 {
	return min(int64(st.Blocks)*st.Bsize/20, 1<<30)
}

const guardEvery = 1 << 20

// publishEvery spaces the updates of the lost file while bytes are being
// dropped; the last count is always published at close.
const publishEvery = 100 * time.Millisecond

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
	b := &boundedFile{f: f, lostPath: path + proto.LostSuffix, max: max, align: punchAlign(max), size: st.Size()}
	// A log reopened (a restore) goes on counting from what it had lost.
	if data, err := os.ReadFile(b.lostPath); err == nil {
		b.dropped, _ = strconv.ParseInt(string(data), 10, 64)
		b.published = b.dropped
	}
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
	switch {
	case b.max < 0:
		if b.diskShort(len(p)) {
			data = nil
		}
	case !b.punch:
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
	if b.max >= 0 && b.punch && b.size-b.start > b.max && b.err == nil {
		b.trim()
	}
	if b.dropped != b.published && time.Since(b.publishedAt) >= publishEvery {
		b.publish()
	}
	return len(p), nil
}

// diskShort reports whether the disk guard holds an unbounded log back
// now; it looks at the filesystem once every guardEvery bytes.
func (b *boundedFile) diskShort(n int) bool {
	b.sinceCheck += int64(n)
	if b.guardChecked && b.sinceCheck < guardEvery {
		return b.guardOn
	}
	b.guardChecked = true
	b.sinceCheck = 0
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(b.f.Fd()), &st); err != nil {
		return b.guardOn
	}
	b.guardOn = int64(st.Bavail)*st.Bsize < diskGuard(&st)
	return b.guardOn
}

// publish writes the dropped count to lostPath (atomically: a reader sees
// the old count or the new one).
func (b *boundedFile) publish() {
	b.publishedAt = time.Now()
	if b.lostPath == "" {
		return
	}
	tmp := b.lostPath + ".tmp"
	if err := os.WriteFile(tmp, strconv.AppendInt(nil, b.dropped, 10), 0o600); err != nil {
		return // the disk is full: the next write tries again
	}
	if os.Rename(tmp, b.lostPath) == nil {
		b.published = b.dropped
	}
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

func (b *boundedFile) Close() error {
	if b.dropped != b.published {
		b.publish()
	}
	return b.f.Close()
}

// logCopy copies one output of the process (a pipe, or a terminal's master
// end) into a bounded file.
type logCopy struct {
	r    *os.File
	w    *boundedFile
	cri  *criStream // the CRI-format copy, nil without one
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
		if c.cri != nil {
			c.cri.write(buf[:n])
		}
		if err != nil {
			if c.cri != nil {
				c.cri.flush()
			}
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
