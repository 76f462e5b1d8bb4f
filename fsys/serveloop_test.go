package fsys

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBlockedReadsStallNoOne: the serving loop of ctrfs's copy of
// bazil.org/fuse (third_party/README.md) serves each request in the
// goroutine that read it. Many handlers blocked at once (blocking reads
// of a running process's output) must leave the server able to answer
// every other request, and each must be answered once it can be.
func TestBlockedReadsStallNoOne(t *testing.T) {
	rt := newFakeRuntime()
	p := rt.add("web").procs["init"]
	dir := mountFake(t, rt)
	stdout := filepath.Join(dir, "web", "processes", "init", "stdout.follow")

	const blocked = 32
	got := make(chan string, blocked)
	for i := 0; i < blocked; i++ {
		fd := open(t, stdout, unix.O_RDONLY)
		go func() {
			s, err := readAll(fd)
			if err != nil {
				s = "error: " + err.Error()
			}
			got <- s
		}()
	}
	// The readers' READs are in the server by now, or soon: what follows
	// must be answered either way.
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		for i := 0; i < 50; i++ {
			fd, err := unix.Open(filepath.Join(dir, "web", "state"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				done <- err
				return
			}
			s, err := readAll(fd)
			unix.Close(fd)
			if err != nil || s != "running\n" {
				done <- fmt.Errorf("read %d of state = %q, %v", i, s, err)
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("state reads not answered within 30s while %d reads were blocked", blocked)
	}
	select {
	case s := <-got:
		t.Fatalf("a blocking read returned %q before any output", s)
	default:
	}
	p.write("out\n")
	p.exit()
	for i := 0; i < blocked; i++ {
		select {
		case s := <-got:
			if s != "out\n" {
				t.Errorf("blocked reader %d read %q, want out", i, s)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d blocked readers answered within 30s of the exit", i, blocked)
		}
	}
}
