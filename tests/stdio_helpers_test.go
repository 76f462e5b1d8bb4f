package tests

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// follower reads an output stream (processes/NAME/stdout or stderr) the
// way a Go program would: os.Open, which registers the file with the
// runtime's epoll and makes every read non-blocking (EAGAIN, then a poll
// wake-up), and Read in a loop until EOF. It keeps what it read.
type follower struct {
	tb   testing.TB
	path string
	f    *os.File
	more chan struct{}
	done chan struct{}

	mu  sync.Mutex
	buf bytes.Buffer
	err error // the read loop's end: nil at EOF
}

func (d *daemon) follow(elem ...string) *follower {
	d.tb.Helper()
	p := d.path(elem...)
	f, err := within(opTimeout, "open "+p, func() (*os.File, error) { return os.Open(p) })
	if err != nil {
		d.tb.Fatalf("open %s: %v", p, err)
	}
	r := &follower{tb: d.tb, path: p, f: f, more: make(chan struct{}, 1), done: make(chan struct{})}
	d.tb.Cleanup(func() { f.Close() })
	go func() {
		defer close(r.done)
		b := make([]byte, 64<<10)
		for {
			n, err := f.Read(b)
			r.mu.Lock()
			r.buf.Write(b[:n])
			if err != nil && err != io.EOF {
				r.err = err
			}
			r.mu.Unlock()
			kickTest(r.more)
			if err != nil {
				return
			}
		}
	}()
	return r
}

// text is what the follower has read so far.
func (r *follower) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// waitFor waits until the follower has read exactly want.
func (r *follower) waitFor(want string) {
	r.tb.Helper()
	deadline := time.After(waitTimeout)
	for {
		got := r.text()
		if got == want {
			return
		}
		if len(got) > len(want) || !strings.HasPrefix(want, got) {
			r.tb.Fatalf("%s: read %q, want %q", r.path, got, want)
		}
		select {
		case <-r.more:
		case <-r.done:
			if r.text() != want {
				r.tb.Fatalf("%s: ended (%v) after %q, want %q", r.path, r.err, r.text(), want)
			}
		case <-deadline:
			r.tb.Fatalf("%s: read %q in %v, want %q", r.path, got, waitTimeout, want)
		}
	}
}

// ended reports whether the follower reached EOF (or an error).
func (r *follower) ended() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// eof waits for EOF and returns all that was read.
func (r *follower) eof() string {
	r.tb.Helper()
	select {
	case <-r.done:
	case <-time.After(waitTimeout):
		r.tb.Fatalf("%s: no EOF within %v; read %d bytes", r.path, waitTimeout, len(r.text()))
	}
	if r.err != nil {
		r.tb.Fatalf("%s: read: %v", r.path, r.err)
	}
	return r.text()
}

// mustExec writes `exec LINE` to the container's ctl and requires it to
// succeed and the process directory to exist.
func (d *daemon) mustExec(id, line string) {
	d.tb.Helper()
	d.mustCtl("exec "+line+"\n", id)
	name := strings.Fields(line)[0]
	if _, err := os.Stat(d.path(id, "processes", name)); err != nil {
		d.tb.Fatalf("exec %s returned ok, but: %v", line, err)
	}
}

// writeStdin writes data to the process's stdin through one open file
// (os.OpenFile: Go's non-blocking writes, waiting for POLLOUT).
func (d *daemon) writeStdin(id, name string, data []byte) error {
	p := d.path(id, "processes", name, "stdin")
	_, err := within(opTimeout, "write "+p, func() (struct{}, error) {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return struct{}{}, err
		}
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return struct{}{}, err
	})
	return err
}

// waitExit waits for processes/NAME/exit to read want.
func (d *daemon) waitExit(id, name, want string) {
	d.tb.Helper()
	d.waitContent(want, id, "processes", name, "exit")
}
