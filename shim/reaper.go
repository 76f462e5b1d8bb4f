package shim

import (
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"time"
	"unsafe"

	runc "github.com/containerd/go-runc"
	"github.com/ctrfs/ctrfs/internal/procfs"
	"golang.org/x/sys/unix"
)

// Exit is one reaped child.
type Exit struct {
	Pid int
	// StartTime is field 22 of /proc/PID/stat, read while the child was a
	// zombie (0 if that failed): it tells this pid's exit from another's.
	StartTime uint64
	// Status follows the shell: exit code, or 128+N when killed by signal N.
	Status int
	Signal int
	Time   time.Time
}

// maxRemembered bounds the exits kept for nobody: orphans that escaped the
// container are reparented to the shim and would otherwise pile up.
const maxRemembered = 256

// Reaper reaps every child of the shim (the shim is a child subreaper, so
// the container's init and any orphan end up here) and hands each exit to
// whoever watches that pid. It is also go-runc's ProcessMonitor, so that no
// exec.Cmd ever waits for a pid the reaper took first.
type Reaper struct {
	mu       sync.Mutex
	watchers map[int]watcher
	// exited holds exits of pids nobody watched yet: the container's init
	// is learned from the pid file after `runc create` returns, and may be
	// gone by then.
	exited map[int]Exit
}

type watcher struct {
	start   uint64 // 0: any process with this pid
	deliver func(Exit)
}

// NewReaper starts reaping on every SIGCHLD. Call it before starting any
// child.
func NewReaper() *Reaper {
	r := &Reaper{watchers: map[int]watcher{}, exited: map[int]Exit{}}
	// One buffered slot is enough: reap loops until no child is left, and
	// a SIGCHLD that comes meanwhile leaves the slot full for one more turn.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	go func() {
		r.reap() // children that exited before Notify
		for range sigc {
			r.reap()
		}
	}()
	return r
}

// reap collects every child that has exited. SIGCHLDs coalesce, so it
// loops until none is left.
func (r *Reaper) reap() {
	for {
		// Peek first (WNOWAIT): the zombie's start time is still in /proc.
		var si unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &si, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		pid := siginfoPid(&si)
		if err != nil || pid <= 0 {
			return
		}
		// 0 if /proc could not say: then the exit goes to whoever
		// watches this pid, whatever its start (see sameStart).
		start, _ := procfs.StartTime(pid)
		var ws unix.WaitStatus
		for {
			// WNOHANG: another reap loop may have taken this zombie, and
			// its pid may already name a new child that is still running.
			var got int
			got, err = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
			if err == nil && got == 0 {
				err = unix.ECHILD
			}
			if err != unix.EINTR {
				break
			}
		}
		if err != nil {
			continue // reaped by someone else: nothing to tell
		}
		e := Exit{Pid: pid, StartTime: start, Status: ws.ExitStatus(), Time: time.Now()}
		if ws.Signaled() {
			e.Signal = int(ws.Signal())
			e.Status = 128 + e.Signal
		}
		r.deliver(e)
	}
}

func (r *Reaper) deliver(e Exit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w, ok := r.watchers[e.Pid]; ok && sameStart(w.start, e.StartTime) {
		delete(r.watchers, e.Pid)
		w.deliver(e)
		return
	}
	if len(r.exited) >= maxRemembered {
		for pid := range r.exited {
			delete(r.exited, pid)
			break
		}
	}
	r.exited[e.Pid] = e
}

func sameStart(a, b uint64) bool { return a == 0 || b == 0 || a == b }

// awaitExit blocks until child pid has exited, in a waitid of the calling
// thread, then reaps. The kernel wakes this thread itself at the exit: the
// SIGCHLD path (signal handler, os/signal's goroutine, the reaper's) costs
// about a millisecond of goroutine hand-offs more, and every exit watcher
// waits on it. That path still runs and may reap first; either way the
// exit reaches the pid's watcher. A pid that is not (yet) our child returns
// at once, leaving it to the SIGCHLD path.
func awaitExit(r *Reaper, pid int) {
	var si unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &si, unix.WEXITED|unix.WNOWAIT, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			r.reap()
		}
		return
	}
}

// Watch returns a channel that gets the exit of pid (started at start, as in
// field 22 of /proc/PID/stat; 0 for any), even if it was reaped already.
func (r *Reaper) Watch(pid int, start uint64) <-chan Exit {
	ch := make(chan Exit, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.exited[pid]; ok {
		delete(r.exited, pid)
		if sameStart(start, e.StartTime) {
			ch <- e
			return ch
		}
	}
	r.watchers[pid] = watcher{start: start, deliver: func(e Exit) { ch <- e }}
	return ch
}

// Start implements runc.ProcessMonitor. The command is started and watched
// under the lock, so its exit cannot be delivered before it is watched.
func (r *Reaper) Start(c *exec.Cmd) (chan runc.Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := c.Start(); err != nil {
		return nil, err
	}
	pid := c.Process.Pid
	// An exit remembered for this pid is an older process's: this one's
	// cannot have been recorded while we hold the lock.
	delete(r.exited, pid)
	ec := make(chan runc.Exit, 1)
	r.watchers[pid] = watcher{deliver: func(e Exit) {
		ec <- runc.Exit{Timestamp: e.Time, Pid: e.Pid, Status: e.Status}
		close(ec)
	}}
	return ec, nil
}

// StartLocked implements runc.ProcessMonitor: like Start, with the starting
// goroutine locked to its thread until the process exits (Pdeathsig is
// tied to the thread).
func (r *Reaper) StartLocked(c *exec.Cmd) (chan runc.Exit, error) {
	started := make(chan error, 1)
	out := make(chan runc.Exit, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ec, err := r.Start(c)
		started <- err
		if err != nil {
			return
		}
		out <- <-ec
		close(out)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return out, nil
}

// Wait implements runc.ProcessMonitor. It waits in waitid of its own
// thread (awaitExit), not for the SIGCHLD path, whose hand-offs add to
// every runtime call (create, run, exec): start and wait of `true` took
// 1.10 ms against 1.16 ms (BenchmarkReaperWait, idle machine).
func (r *Reaper) Wait(c *exec.Cmd, ec chan runc.Exit) (int, error) {
	select {
	case e := <-ec:
		_ = c.Wait()
		return e.Status, nil
	default:
		awaitExit(r, c.Process.Pid)
	}
	e := <-ec
	// The child is reaped already, so this fails (ECHILD through the
	// pidfd), but it still ends exec.Cmd's copying goroutines and releases
	// the process handle.
	_ = c.Wait()
	return e.Status, nil
}

// siginfoPid is si_pid of a siginfo_t filled by waitid: the union after
// si_signo, si_errno and si_code starts at the next long-aligned offset.
func siginfoPid(si *unix.Siginfo) int {
	align := unsafe.Alignof(uintptr(0))
	off := (3*4 + align - 1) &^ (align - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(si), off)))
}
