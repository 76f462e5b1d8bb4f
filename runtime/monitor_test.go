package runtime

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// TestMonitorEveryHangupOnce watches many fifos from several goroutines at
// once while their writers go away, so fd numbers are freed and reused all
// the time: every watch must fire exactly once, for its own fifo.
func TestMonitorEveryHangupOnce(t *testing.T) {
	m, err := newMonitor(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const workers, perWorker = 8, 300
	var fired [workers * perWorker]atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				n := w*perWorker + i
				path := filepath.Join(dir, fmt.Sprintf("f%d", n))
				if err := unix.Mkfifo(path, 0o600); err != nil {
					t.Error(err)
					return
				}
				// The "shim": holds the fifo, as ctrfs-shim does (O_RDWR).
				wfd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Error(err)
					return
				}
				if err := m.watchFifo(path, nil, func() { fired[n].Add(1) }); err != nil {
					t.Error(err)
					return
				}
				unix.Close(wfd)
			}
		}(w)
	}
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for n := range fired {
		for fired[n].Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond) // room for a wrong second call
	for n := range fired {
		if got := fired[n].Load(); got != 1 {
			t.Errorf("fifo %d: callback ran %d times, want 1", n, got)
		}
	}
}

// TestMonitorDeadShim: a fifo whose writer is already gone when it is
// watched (a shim that died while the daemon was down) fires at once.
func TestMonitorDeadShim(t *testing.T) {
	m, err := newMonitor(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "exit")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	if err := m.watchFifo(path, nil, func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no hang-up for a fifo nobody holds")
	}
}

// TestMonitorReportThenHangup: what a shim writes into its exit fifo (its
// exit status) reaches report before the hang-up, even when the shim
// closes the fifo right after writing, as it does.
func TestMonitorReportThenHangup(t *testing.T) {
	m, err := newMonitor(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "exit")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	shim, err := unix.Open(path, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 2)
	if err := m.watchFifo(path, func(b []byte) { got <- "report " + string(b) }, func() { got <- "hangup" }); err != nil {
		t.Fatal(err)
	}
	unix.Write(shim, []byte(`{"status":3}`+"\n"))
	unix.Close(shim)
	for _, want := range []string{"report {\"status\":3}\n", "hangup"} {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("got %q, want %q", g, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
}

// TestMonitorWaitFailure: when epoll_wait fails the monitor does not end:
// it makes a new epoll set, and a hang-up that happened meanwhile, on a
// fifo watched before, is still seen.
func TestMonitorWaitFailure(t *testing.T) {
	var failed atomic.Bool
	fail := make(chan struct{})
	wait := func(epfd int, events []unix.EpollEvent, msec int) (int, error) {
		if !failed.Load() {
			<-fail
			failed.Store(true)
			return 0, unix.EBADF
		}
		return unix.EpollWait(epfd, events, msec)
	}
	m, err := newMonitorWith(logrus.New(), wait)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "exit")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	shim, err := unix.Open(path, unix.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	if err := m.watchFifo(path, nil, func() { close(done) }); err != nil {
		t.Fatal(err)
	}
	unix.Close(shim)
	close(fail)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no hang-up after epoll_wait failed")
	}
}

// TestMonitorReapsChildren: children handed over by pidfd are reaped once
// they exit (no zombie left, no thread waiting), and their fds dropped.
func TestMonitorReapsChildren(t *testing.T) {
	m, err := newMonitor(logrus.New())
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := 0; i < 20; i++ {
		cmd := exec.Command("sh", "-c", "read x") // ends when stdin closes
		w, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.reapChild(pidfd); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
		cmd.Process.Release()
		defer w.Close()
		if i%2 == 0 {
			w.Close()
		}
	}
	// The odd ones still run: they must not be reaped, nor their fds
	// dropped.
	settled := func() bool {
		for i, pid := range pids {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); (err == nil) != (i%2 == 1) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(10 * time.Second); !settled(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the exited children were not all reaped within 10s (or a running one was)")
		}
	}
	m.mu.Lock()
	n := len(m.fds)
	m.mu.Unlock()
	if n != 10 {
		t.Errorf("monitor watches %d fds with 10 children left, want 10", n)
	}
}
