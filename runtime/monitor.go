package runtime

import (
	"sync"

	"golang.org/x/sys/unix"
)

// monitor is the one goroutine that watches every shim and every OOM
// notifier: an epoll set over the read ends of the shims' exit fifos, the
// containers' OOM eventfds (cgroup v1) and the inotify fd on memory.events
// files (cgroup v2).
type monitor struct {
	epfd int
	mu   sync.Mutex
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
	// readable, for an eventfd or inotify fd, is called with what the
	// monitor read from the fd each time it became readable.
	readable func(data []byte)
}

func newMonitor() (*monitor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	m := &monitor{epfd: epfd, fds: map[int32]*watch{}}
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
	unix.Close(wfd)
	return m.add(fd, &watch{hangup: gone, report: report})
}

// watchReadable hands fd (non-blocking) to the monitor, which from now on
// reads it whenever it is readable and calls readable, in a goroutine of
// its own, with what it read. The monitor owns fd: unwatch closes it.
func (m *monitor) watchReadable(fd int, readable func(data []byte)) error {
	return m.add(fd, &watch{readable: readable})
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
	unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	unix.Close(fd)
}

func (m *monitor) loop() {
	events := make([]unix.EpollEvent, 64)
	buf := make([]byte, 4096)
	for {
		n, err := unix.EpollWait(m.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			m.handle(ev, buf)
		}
	}
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
	var data []byte
	if ev.Events&unix.EPOLLIN != 0 {
		if n, err := unix.Read(fd, buf); err == nil && n > 0 {
			data = append([]byte(nil), buf[:n]...)
		}
	}
	hangup := w.hangup != nil && ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) != 0
	if hangup {
		delete(m.fds, ev.Fd)
		unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, fd, nil)
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
