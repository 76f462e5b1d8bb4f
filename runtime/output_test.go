package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// outputProcess is a running process with an empty stdout log in a temp
// dir, and no shim: the test writes the log as the shim would.
func outputProcess(t *testing.T) (*Process, *os.File) {
	t.Helper()
	in, err := newInotify(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(in.close)
	c := &Container{rt: &Runtime{logs: newLogWatch(in)}, id: "c"}
	dir := t.TempDir()
	p := newProcess(c, "p", dir, nil, proto.Config{})
	c.init = p
	w, err := os.OpenFile(filepath.Join(dir, Stdout), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return p, w
}

func exitNow(p *Process) {
	p.setExit(&exitRecord{ExitStatus: exitStatusNow(0, 0)})
	p.markDone()
}

func TestOutputFollow(t *testing.T) {
	p, w := outputProcess(t)
	w.Write([]byte("before\n"))
	r1, err := p.OpenOutput(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r1.Close()
	buf := make([]byte, 4096)
	if n, err := r1.Read(buf); string(buf[:n]) != "before\n" || err != nil {
		t.Fatalf("Read = %q, %v", buf[:n], err)
	}
	if _, err := r1.Read(buf); !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("Read at the end of a running process's log: %v, want ErrWouldBlock", err)
	}
	// A blocked reader wakes when the log grows, and a second reader gets
	// every byte from the start.
	ready := r1.Ready()
	got := make(chan string)
	go func() {
		n, err := readWait(context.Background(), r1, buf)
		got <- fmt.Sprintf("%s|%v", buf[:n], err)
	}()
	select {
	case s := <-got:
		t.Fatalf("ReadWait returned %q with nothing written", s)
	case <-time.After(50 * time.Millisecond):
	}
	w.Write([]byte("after\n"))
	select {
	case s := <-got:
		if s != "after\n|<nil>" {
			t.Errorf("ReadWait = %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReadWait did not wake when the log grew")
	}
	select {
	case <-ready:
	default:
		t.Error("Ready taken before the write is not closed after it")
	}
	r2, err := p.OpenOutput(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	all, _ := readUntilBlock(r2)
	if all != "before\nafter\n" {
		t.Errorf("second reader = %q", all)
	}
	// A cancelled wait returns at once.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, err := readWait(ctx, r1, buf)
		got <- fmt.Sprint(err)
	}()
	cancel()
	select {
	case s := <-got:
		if s != context.Canceled.Error() {
			t.Errorf("cancelled ReadWait: %s", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelled ReadWait did not return")
	}
	// The exit ends a waiting reader: EOF once drained.
	go func() {
		n, err := readWait(context.Background(), r1, buf)
		got <- fmt.Sprintf("%s|%v", buf[:n], err)
	}()
	w.Write([]byte("last"))
	exitNow(p)
	var s string
	for s = <-got; s == "last|<nil>"; s = <-got {
		go func() {
			n, err := readWait(context.Background(), r1, buf)
			got <- fmt.Sprintf("%s|%v", buf[:n], err)
		}()
	}
	if s != "|EOF" {
		t.Errorf("after the exit: %q, want EOF", s)
	}
	if n, err := r2.Read(buf); string(buf[:n]) != "last" || err != nil {
		t.Errorf("r2 after the exit = %q, %v", buf[:n], err)
	}
	if _, err := r2.Read(buf); err != io.EOF {
		t.Errorf("r2 at the end after the exit: %v, want EOF", err)
	}
}

// readWait waits as the filesystem does, on Ready alone: the exit must
// close it too.
func readWait(ctx context.Context, r *OutputReader, buf []byte) (int, error) {
	for {
		ready := r.Ready()
		n, err := r.Read(buf)
		if !errors.Is(err, ErrWouldBlock) {
			return n, err
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

func readUntilBlock(r *OutputReader) (string, error) {
	var out bytes.Buffer
	buf := make([]byte, 7)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.String(), err
		}
	}
}

// A reader that falls behind a trimmed log is told once, goes on at the
// oldest byte kept, and counts what it lost; Lost counts the punched bytes.
func TestOutputSkipsTrimmed(t *testing.T) {
	p, w := outputProcess(t)
	r, err := p.OpenOutput(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	w.Write(data)
	buf := make([]byte, 100)
	if n, _ := r.Read(buf); n != 100 {
		t.Fatalf("first read %d", n)
	}
	if err := unix.Fallocate(int(w.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 32<<10); err != nil {
		t.Skipf("no holes here: %v", err)
	}
	exitNow(p)
	_, err = r.Read(buf)
	var lost *OutputLostError
	if !errors.As(err, &lost) || lost.Bytes != 32<<10-100 {
		t.Fatalf("the read that skips: %v; want an OutputLostError of %d bytes", err, 32<<10-100)
	}
	if n, err := p.OutputLost(Stdout); err != nil || n != 32<<10 {
		t.Errorf("OutputLost = %d, %v; want %d", n, err, 32<<10)
	}
	rest, err := readUntilBlock(r)
	if err != io.EOF {
		t.Fatalf("read: %v", err)
	}
	if rest != string(data[32<<10:]) || r.Skipped() != 32<<10-100 {
		t.Errorf("read %d bytes after the punch, skipped %d; want %d and %d", len(rest), r.Skipped(), 32<<10, 32<<10-100)
	}
	// A new reader starts at the oldest byte kept.
	r2, _ := p.OpenOutput(Stdout)
	defer r2.Close()
	if all, _ := readUntilBlock(r2); all != string(data[32<<10:]) {
		t.Errorf("new reader got %d bytes", len(all))
	}
}

func TestOutputMissingLog(t *testing.T) {
	p, _ := outputProcess(t)
	os.Remove(filepath.Join(p.dir, Stdout))
	r, err := p.OpenOutput(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, ErrWouldBlock) {
		t.Errorf("no log yet: %v", err)
	}
	exitNow(p)
	if _, err := r.Read(make([]byte, 10)); err != io.EOF {
		t.Errorf("no log, exited: %v", err)
	}
	if _, err := p.OpenOutput("stdin"); KindOf(err) != KindInvalid {
		t.Errorf("OpenOutput(stdin): %v", err)
	}
}

// The exit is recorded from the shim's report while the shim may still be
// draining the last output into the log: a reader at the end of the log
// must wait, not end, until the shim is done (markDone).
func TestOutputEndsWhenTheShimIsDone(t *testing.T) {
	p, w := outputProcess(t)
	w.Write([]byte("first\n"))
	r, err := p.OpenOutput(Stdout)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := readUntilBlock(r); got != "first\n" || !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("read = %q, %v", got, err)
	}
	p.setExit(&exitRecord{ExitStatus: exitStatusNow(0, 0)}) // the shim's report
	if got, err := readUntilBlock(r); got != "" || !errors.Is(err, ErrWouldBlock) {
		t.Fatalf("read after the exit is recorded, before the shim is done: %q, %v; want ErrWouldBlock", got, err)
	}
	if r.Readable() {
		t.Error("Readable before the shim is done, with nothing new in the log")
	}
	w.Write([]byte("last\n")) // the shim drains the rest
	p.markDone()
	if got, err := readUntilBlock(r); got != "last\n" || err != io.EOF {
		t.Fatalf("read once the shim is done: %q, %v; want the last line, then EOF", got, err)
	}
}
