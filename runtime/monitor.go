package runtime

import (
	"sync"

	"golang.org/x/sys/unix"
)

// monitor is the one goroutine that watches every shim: an epoll set over
// the read ends of their exit fifos. A fifo reports POLLHUP when its last
// writer, the shim, is gone; the callback then records the exit.
type monitor struct {
	epfd int
	mu   sync.Mutex
	fns  map[int32]func() // fd -> what to do when it hangs up
}

func newMonitor() (*monitor, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	m := &monitor{epfd: epfd, fns: map[int32]func(){}}
	go m.loop()
	return m, nil
}

// watchFifo opens the exit fifo at path and calls gone, in a goroutine of
// its own, once no process holds its write end any more.
//
// A fifo reader opened while no writer exists never sees POLLHUP until a
// writer has come and gone. So after opening we open and close a write end
// ourselves: from then on POLLHUP is raised whenever the writer count is
// zero, at once if the shim is already dead, without any race.
func (m *monitor) watchFifo(path string, gone func()) error {
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
	// Under the lock from here: the loop looks the fd up under it too, so
	// it can never see this fd number before its callback is in place.
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fns[int32(fd)] = gone
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(m.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(m.fns, int32(fd))
		unix.Close(fd)
		return err
	}
	return nil
}

func (m *monitor) loop() {
	events := make([]unix.EpollEvent, 64)
	buf := make([]byte, 512)
	for {
		n, err := unix.EpollWait(m.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if ev.Events&(unix.EPOLLHUP|unix.EPOLLERR) == 0 {
				// Nobody should write to an exit fifo; drain and ignore.
				unix.Read(fd, buf)
				continue
			}
			// Take the callback before the fd is closed: once closed, its
			// number can be reused by a new watchFifo at once.
			m.mu.Lock()
			gone := m.fns[ev.Fd]
			delete(m.fns, ev.Fd)
			unix.EpollCtl(m.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			unix.Close(fd)
			m.mu.Unlock()
			if gone != nil {
				go gone()
			}
		}
	}
}
