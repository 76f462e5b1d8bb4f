package runtime

import (
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// monitor is the one goroutine that watches every shim and every v1 OOM
// notifier: an epoll set over the read ends of the shims' exit fifos and
// the containers' OOM eventfds (cgroup v1; v2's memory.events files are
// watched through the inotify reader).
//
// If epoll_wait fails the loop does not end, since no exit would ever be
// seen again: it logs the error and, after a pause, makes a new epoll set
// holding every watched fd, and retries until that succeeds.
type monitor struct {
	log logrus.FieldLogger
	// wait is epoll_wait (a test makes it fail).
	wait func(epfd int, events []unix.EpollEvent, msec int) (int, error)

	mu   sync.Mutex // protects all following fields
	epfd int        // replaced on recovery
	fds  map[int32]*watch
}

// watch is what to do about one fd.
type watch struct {
	// hangup, for an exit fifo, is called once when no writer is left,
	// in the monitor's goroutine (it must not block: it is on the path of
	// every exit watcher); the monitor then closes the fd.
	hangup func()
	// report, for an exit fifo, is called in the monitor's goroutine with
	// what the shim wrote into it (its exit status), before any hangup.
	report func(data []byte)
	// readable, for an eventfd (v1 OOM), is called with what the
	// monitor read from the fd each time it became readable.
	readable func(data []byte)
	// child marks a pidfd of a child of the daemon, reaped once it exits.
	child bool
}

func newMonitor(log logrus.FieldLogger) (*monitor, error) {
	return newMonitorWith(log, unix.EpollWait)
}

func newMonitorWith(log logrus.FieldLogger, wait func(int, []unix.EpollEvent, int) (int, error)) (*monitor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	m := &monitor{log: log, wait: wait, epfd: epfd, fds: map[int32]*watch{}}
	go m.loop()
	return m, nil
}

// watchFifo opens the exit fifo at path; it calls report with what the
// shim writes into it and gone once no process holds its write end any
// more, both in the monitor's goroutine.
//
// A fifo reader opened while no writer exists never sees POLLHUP until a
// writer has come and gone. So after opening we open and close a write end
// ourselves: from then on POLLHUP is raised whenever the writer count is
// zero, at once if the shim is already dead, without any race.
func (m *monitor) watchFifo(path string, report func([]byte), gone func()) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	wfd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		return err
	}
	// Closing an fd that nothing wrote through cannot lose anything;
	// its errors are ignored here and at every close of a read end below.
	unix.Close(wfd)
	return m.add(fd, &watch{hangup: gone, report: report})
}

// watchReadable hands fd (non-blocking) to the monitor, which from now on
// reads it whenever it is readable and calls readable, in a goroutine of
// its own, with what it read. The monitor owns fd: unwatch closes it.
func (m *monitor) watchReadable(fd int, readable func(data []byte)) error {
	return m.add(fd, &watch{readable: readable})
}

// reapChild hands the monitor pidfd, a pidfd of a child of the daemon (a
// shim it started); the monitor reaps the child once it has exited, then
// closes pidfd. A goroutine in exec.Cmd.Wait per shim would hold an OS
// thread each, blocked in waitid: a thousand threads, ~20 MB, at a
// thousand containers.
func (m *monitor) reapChild(pidfd int) error {
	return m.add(pidfd, &watch{child: true})
}

func (m *monitor) add(fd int, w *watch) error {
	// Under the lock from here: the loop looks the fd up under it too, so
	// it can never see this fd number before its watch is in place.
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fds[int32(fd)] = w
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(m.fds, int32(fd))
		unix.Close(fd)
		return err
	}
	return nil
}

// unwatch stops watching fd and closes it; unknown fds are left alone.
func (m *monitor) unwatch(fd int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.fds[int32(fd)]; !ok {
		return
	}
	delete(m.fds, int32(fd))
	// Closing the fd takes it out of the set anyway; the DEL is for
	// clarity, and cannot fail for an fd that add put in.
	unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	unix.Close(fd)
}

// monitorRetry bounds the pause before a failed monitor makes a new set.
var monitorRetry = backoff{min: 10 * time.Millisecond, max: 5 * time.Second}

func (m *monitor) loop() {
	events := make([]unix.EpollEvent, 64)
	buf := make([]byte, 4096)
	retry := monitorRetry
	for {
		m.mu.Lock()
		epfd := m.epfd
		m.mu.Unlock()
		n, err := m.wait(epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			m.log.WithError(err).Error("monitor: epoll_wait failed: no exit is seen until a new epoll set is made")
			time.Sleep(retry.next())
			if err := m.renew(); err != nil {
				m.log.WithError(err).Error("monitor: cannot make a new epoll set; trying again")
			}
			continue
		}
		retry.reset()
		for _, ev := range events[:n] {
			m.handle(ev, buf)
		}
	}
}

// renew replaces the epoll set with a new one holding every watched fd.
// Level-triggered, the new set reports at once whatever happened to them
// meanwhile (a hang-up, data), so nothing is lost.
func (m *monitor) renew() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for fd := range m.fds {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLHUP, Fd: fd}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
			// Keep the old set and every watch: the next try may do.
			unix.Close(epfd)
			return err
		}
	}
	unix.Close(m.epfd) // the failed set: nothing to read from it
	m.epfd = epfd
	m.log.WithField("fds", len(m.fds)).Warn("monitor: new epoll set made")
	return nil
}

func (m *monitor) handle(ev unix.EpollEvent, buf []byte) {
	fd := int(ev.Fd)
	// The fd is read, and for a hangup closed, under the lock: once closed
	// its number can be reused by a new watch at once, and the lookup must
	// never find the old watch for it.
	m.mu.Lock()
	w := m.fds[ev.Fd]
	if w == nil {
		m.mu.Unlock()
		return
	}
	if w.child {
		// Readable once the child has exited. WNOHANG: were it not (a
		// spurious wake-up), the next one reaps it, since the fd stays.
		var si unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, fd, &si, unix.WEXITED|unix.WNOHANG, nil)
		if err == nil && si.Signo == 0 { // si_signo is SIGCHLD for a reaped child
			m.mu.Unlock()
			return
		}
		// Reaped, or not ours to reap (ECHILD): either way done with it.
		delete(m.fds, ev.Fd)
		unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		unix.Close(fd)
		m.mu.Unlock()
		return
	}
	var data []byte
	if ev.Events&unix.EPOLLIN != 0 {
		// A failed read leaves data nil: EAGAIN (nothing written) is the
		// only error a fifo, eventfd or inotify fd gives here.
		if n, err := unix.Read(fd, buf); err == nil && n > 0 {
			data = append([]byte(nil), buf[:n]...)
		}
	}
	hangup := w.hangup != nil && ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0
	if hangup {
		delete(m.fds, ev.Fd)
		unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, fd, nil) // as in unwatch
		unix.Close(fd)
	}
	m.mu.Unlock()
	switch {
	case w.readable != nil:
		if data != nil {
			go w.readable(data)
		}
	default:
		if data != nil && w.report != nil {
			w.report(data)
		}
		if hangup {
			w.hangup()
		}
	}
}
