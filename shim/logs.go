package shim

import (
	"errors"
	"os"
	"time"
)

// boundedFile appends to a file that must never grow past max bytes (its
// size at open counts). What comes beyond is counted and dropped, never
// refused: a writer that stopped reading would block the container.
type boundedFile struct {
	f       *os.File
	max     int64
	size    int64
	dropped int64
	err     error // first write error; from then on everything is dropped
}

func openBounded(path string, max int64) (*boundedFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &boundedFile{f: f, max: max, size: st.Size()}, nil
}

// Write keeps what fits and always reports all of p as written.
func (b *boundedFile) Write(p []byte) (int, error) {
	keep := int64(len(p))
	if room := b.max - b.size; keep > room {
		keep = max(room, 0)
	}
	var n int
	if keep > 0 && b.err == nil {
		n, b.err = b.f.Write(p[:keep])
		b.size += int64(n)
	}
	b.dropped += int64(len(p) - n)
	return len(p), nil
}

func (b *boundedFile) Close() error { return b.f.Close() }

// logCopy copies one output pipe of the process into a bounded file.
type logCopy struct {
	r    *os.File
	w    *boundedFile
	done chan struct{}
}

func startLogCopy(r *os.File, path string, max int64) (*logCopy, error) {
	w, err := openBounded(path, max)
	if err != nil {
		return nil, err
	}
	c := &logCopy{r: r, w: w, done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *logCopy) run() {
	defer close(c.done)
	buf := make([]byte, 16<<10)
	for {
		n, err := c.r.Read(buf)
		c.w.Write(buf[:n])
		if err != nil {
			return
		}
	}
}

// finish waits for EOF until deadline, then stops reading (a process that
// escaped the container may hold the pipe forever) and closes both ends.
// It returns the bytes dropped and the first write error.
func (c *logCopy) finish(deadline time.Time) (dropped int64, err error) {
	select {
	case <-c.done:
	case <-time.After(time.Until(deadline)):
		c.r.SetReadDeadline(time.Now()) // wakes the blocked Read
		<-c.done
		err = errors.New("output still open at exit; stopped reading")
	}
	c.r.Close()
	if cerr := c.w.Close(); c.w.err == nil {
		c.w.err = cerr
	}
	if c.w.err != nil {
		err = c.w.err
	}
	return c.w.dropped, err
}
