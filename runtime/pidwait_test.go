package runtime

import (
	"errors"
	"github.com/ctrfs/ctrfs/internal/procfs"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startOf is pid's start time, as the shims record it.
func startOf(t *testing.T, pid int) uint64 {
	t.Helper()
	start, err := procfs.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return start
}

func TestPidHandleChild(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	pid := cmd.Process.Pid
	start := startOf(t, pid)

	// Another start time is another process (the pid reused): gone.
	if _, err := openPid(pid, start+1); !errors.Is(err, errGone) {
		t.Fatalf("openPid with a wrong start time: %v, want errGone", err)
	}
	h, err := openPid(pid, start)
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if h.wait(20 * time.Millisecond) {
		t.Fatal("wait reported a running process gone")
	}
	if err := h.signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: a zombie has exited.
	t0 := time.Now()
	if !h.wait(10 * time.Second) {
		t.Fatal("wait did not see the kill")
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Errorf("wait took %s", d)
	}
	if _, err := openPid(pid, start); !errors.Is(err, errGone) {
		t.Errorf("openPid of a zombie: %v, want errGone", err)
	}
	cmd.Wait()
	if err := h.signal(syscall.SIGKILL); !errors.Is(err, errGone) {
		t.Errorf("signal after the exit: %v, want errGone", err)
	}
	if _, err := openPid(pid, start); !errors.Is(err, errGone) {
		t.Errorf("openPid of a reaped process: %v, want errGone", err)
	}
}

// TestPidHandleNotChild: the processes ctrfs waits for are mostly not its
// children (waitid could not wait for them); the pidfd sees them exit.
func TestPidHandleNotChild(t *testing.T) {
	out, err := exec.Command("sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!").Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGKILL)
	h, err := openPid(pid, startOf(t, pid))
	if err != nil {
		t.Fatal(err)
	}
	defer h.close()
	if err := h.signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !h.wait(10 * time.Second) {
		t.Fatal("wait did not see a grandchild's exit")
	}
}

// TestPidHandleNoPidfd: without a pidfd the handle waits by looking at
// /proc, and refuses to signal by bare pid.
func TestPidHandleNoPidfd(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	noPidfd := errors.New("no pidfd")
	h := &pidHandle{pid: cmd.Process.Pid, start: startOf(t, cmd.Process.Pid), fd: -1, err: noPidfd}
	if h.wait(30 * time.Millisecond) {
		t.Fatal("wait reported a running process gone")
	}
	if err := h.signal(syscall.SIGKILL); err != noPidfd {
		t.Fatalf("signal without a pidfd: %v", err)
	}
	cmd.Process.Kill()
	if !h.wait(10 * time.Second) {
		t.Fatal("wait did not see the kill")
	}
	cmd.Wait()
}
