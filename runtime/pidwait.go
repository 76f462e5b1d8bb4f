package runtime

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// pidHandle holds one process through a pidfd: once opened and checked
// against the process's start time, it names that very process even if
// its pid is reused meanwhile. The processes ctrfs kills and waits for (a
// container's, a shim of a previous daemon) are mostly not the daemon's
// children, so waitid cannot wait for them; poll(2) on a pidfd reports
// POLLIN once the process has exited.
type pidHandle struct {
	pid   int
	start uint64 // /proc start time
	fd    int    // the pidfd; -1 where none could be opened
	err   error  // why there is no pidfd
}

var errGone = errors.New("the process is gone")

// openPid opens the process pid that started at start (its start time in
// /proc/PID/stat). It returns errGone if that process is gone already:
// exited (a zombie included) or its pid reused. Where no pidfd can be had
// (ENOSYS before Linux 5.3, out of fds) the handle still waits, by looking
// at /proc, but cannot signal.
func openPid(pid int, start uint64) (*pidHandle, error) {
	if pid <= 0 {
		return nil, errGone
	}
	h := &pidHandle{pid: pid, start: start, fd: -1}
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case err == unix.ESRCH:
		return nil, errGone
	case err != nil:
		h.err = fmt.Errorf("pidfd_open %d: %w", pid, err)
	default:
		h.fd = fd
	}
	// Checked after the pidfd is open: from then on the pid cannot name
	// another process.
	if !alive(pid, start) {
		h.close()
		return nil, errGone
	}
	return h, nil
}

func (h *pidHandle) close() {
	if h.fd >= 0 {
		unix.Close(h.fd) // a pidfd holds no data: nothing to lose
		h.fd = -1
	}
}

// signal sends sig to the process; errGone if it has exited.
func (h *pidHandle) signal(sig syscall.Signal) error {
	if h.fd < 0 {
		return h.err // kill(2) by pid could hit a process that reused it
	}
	err := unix.PidfdSendSignal(h.fd, sig, nil, 0)
	if err == unix.ESRCH {
		return errGone
	}
	return err
}

// pidPollInterval is how often the fallback without a pidfd looks at /proc.
const pidPollInterval = 10 * time.Millisecond

// wait waits up to d for the process to exit, and reports whether it did
// (a zombie has exited).
func (h *pidHandle) wait(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for h.fd >= 0 {
		left := time.Until(deadline)
		if left <= 0 {
			return !alive(h.pid, h.start)
		}
		ms := int((left + time.Millisecond - 1) / time.Millisecond)
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(h.fd), Events: unix.POLLIN}}, ms)
		switch {
		case err == unix.EINTR:
		case err != nil:
			h.err = fmt.Errorf("poll pidfd: %w", err)
			h.close() // the fallback below, for the time left
		case n > 0:
			return true
		}
	}
	// No pidfd: poll /proc (pid and start time, as alive does).
	for alive(h.pid, h.start) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pidPollInterval)
	}
	return true
}
