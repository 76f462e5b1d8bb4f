package runtime

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// oomFile keeps a container's OOM count in its state directory, so that a
// restarted daemon goes on counting from it.
const oomFile = "oom.json"

// oomRecord is oomFile.
type oomRecord struct {
	Count uint64 `json:"count"`
	// Seen is the cgroup's own oom_kill counter when last read: only a
	// rise beyond it is an OOM kill not yet counted. The counter lives as
	// long as the cgroup, so kills during a daemon restart are counted too.
	Seen uint64 `json:"seen"`
	// At is when the last kill was counted (the oom file's mtime).
	At *time.Time `json:"at,omitempty"`
}

// oomWatch counts the OOM kills in one container's memory cgroup. On
// cgroup v1 the kernel signals an eventfd registered through
// cgroup.event_control on memory.oom_control; on v2 memory.events is
// modified, which inotify reports. Either way the count comes from the
// oom_kill counter, never from the signal alone: the v1 eventfd also fires
// when the cgroup is removed (containerd issue 7102).
//
// The counter is read, and oomFile written, outside mu: OOMCount, which
// a read of the oom file calls, never waits for the disk.
type oomWatch struct {
	// fileMu serializes the writes of oomFile, so that the last one
	// written holds the latest count. Taken before mu.
	fileMu sync.Mutex

	mu      sync.Mutex // protects all following fields
	rec     oomRecord
	path    string        // memory.oom_control (v1) or memory.events (v2)
	efd     int           // v1: the eventfd the monitor watches; -1 if none
	ino     *inotifyWatch // v2: the watch on memory.events; nil if none
	stopped bool
	// notified holds a token when the kernel has signalled and nobody
	// has looked yet: one checker goroutine per container takes it, so a
	// burst of signals under memory pressure costs one look, not many.
	notified chan struct{}
	quit     chan struct{} // closed by stopOOMWatch: the checker ends
}

// OOMCount is how many processes of the container the kernel has killed
// for want of memory.
func (c *Container) OOMCount() uint64 {
	c.oom.mu.Lock()
	defer c.oom.mu.Unlock()
	return c.oom.rec.Count
}

// oomTime is when the last OOM kill was counted; zero before any.
func (c *Container) oomTime() time.Time {
	c.oom.mu.Lock()
	defer c.oom.mu.Unlock()
	return orZero(c.oom.rec.At)
}

// loadOOM reads the count a previous daemon recorded.
func (c *Container) loadOOM() {
	c.oom.efd = -1
	// None yet is the common case: no OOM kill so far.
	if err := readJSON(filepath.Join(c.dir, oomFile), &c.oom.rec); err != nil && !errors.Is(err, os.ErrNotExist) {
		c.log.WithError(err).Warn("unreadable OOM count: counting from 0")
	}
}

// watchOOM starts counting the container's OOM kills. It counts at once
// what happened before it was in place.
func (c *Container) watchOOM(r *Runtime) {
	cg := c.cgroups()
	if cg.memory == "" {
		c.log.Debug("no memory cgroup found: OOM kills are not counted")
		return
	}
	w := &c.oom
	w.mu.Lock()
	if w.stopped || w.efd >= 0 || w.ino != nil {
		w.mu.Unlock()
		return
	}
	notified, quit := make(chan struct{}, 1), make(chan struct{})
	signal := func() {
		select {
		case notified <- struct{}{}:
		default: // the checker has a look pending already
		}
	}
	var err error
	if cg.v2 {
		w.path = filepath.Join(cg.memory, "memory.events")
		// Lost events (IN_Q_OVERFLOW) may have been kills: look too.
		w.ino, err = r.inotify.add(w.path, unix.IN_MODIFY, func(mask uint32) {
			if mask&(unix.IN_MODIFY|unix.IN_Q_OVERFLOW) != 0 {
				signal()
			}
		})
	} else {
		w.path = filepath.Join(cg.memory, "memory.oom_control")
		w.efd, err = registerOOMEventfd(cg.memory)
		if err == nil {
			err = r.mon.watchReadable(w.efd, func([]byte) { signal() })
			if err != nil {
				w.efd = -1 // watchReadable closed it
			}
		}
	}
	if err == nil {
		w.notified, w.quit = notified, quit
	}
	w.mu.Unlock()
	if err != nil {
		c.log.WithError(err).Warn("cannot watch for OOM kills")
		return
	}
	c.countOOM(r, false) // what happened before the watch was in place
	go c.checkOOM(r, notified, quit)
}

// registerOOMEventfd makes an eventfd the kernel signals on every OOM in
// the v1 memory cgroup dir (Documentation/admin-guide/cgroup-v1/memory.rst).
func registerOOMEventfd(dir string) (int, error) {
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, err
	}
	ctl, err := unix.Open(filepath.Join(dir, "memory.oom_control"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(efd)
		return -1, err
	}
	defer unix.Close(ctl)
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(fmt.Sprintf("%d %d", efd, ctl)), 0); err != nil {
		unix.Close(efd)
		return -1, err
	}
	return efd, nil
}

// oomRecheck is when a notified OOM is looked for again: the kernel signals
// when the cgroup runs out of memory, a moment before it picks and kills a
// victim and raises oom_kill.
var oomRecheck = []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 25 * time.Millisecond, 125 * time.Millisecond, 625 * time.Millisecond}

// checkOOM is the container's OOM checker: on each signal it counts the
// rise of the cgroup's oom_kill counter, looking again for a while until
// the kill shows.
func (c *Container) checkOOM(r *Runtime, notified, quit chan struct{}) {
	for {
		select {
		case <-quit:
			return
		case <-notified:
		}
		for _, d := range oomRecheck {
			time.Sleep(d)
			if counted, over := c.countOOM(r, true); counted || over {
				break
			}
		}
	}
}

// countOOM reads the oom_kill counter and counts its rise. An unreadable
// counter means the cgroup is gone: that is the end (over), not an OOM.
//
// The file is read outside the lock, and the rise taken under it against
// the last value seen: of two concurrent looks, the second finds no rise
// left, so no kill is counted twice.
func (c *Container) countOOM(r *Runtime, notified bool) (counted, over bool) {
	w := &c.oom
	w.mu.Lock()
	stopped, path := w.stopped, w.path
	w.mu.Unlock()
	if stopped {
		return false, true
	}
	b, err := os.ReadFile(path)
	if err != nil {
		c.stopOOMWatch(r)
		return false, true
	}
	kills, ok := oomKills(b)
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return false, true
	}
	var rise uint64
	switch {
	case ok && kills > w.rec.Seen:
		rise, w.rec.Seen = kills-w.rec.Seen, kills
	case !ok && notified:
		rise = 1 // a kernel without the counter: one signal, one OOM
	}
	w.rec.Count += rise
	if rise > 0 {
		now := time.Now().UTC()
		w.rec.At = &now
	}
	count := w.rec.Count
	w.mu.Unlock()
	if rise == 0 {
		return false, false
	}
	c.saveOOM()
	c.log.WithField("count", count).Warn("OOM kill")
	c.happened(Event{Type: EventOOM, Count: count})
	return true, false
}

// saveOOM writes the latest count into oomFile.
func (c *Container) saveOOM() {
	w := &c.oom
	w.fileMu.Lock()
	defer w.fileMu.Unlock()
	w.mu.Lock()
	rec := w.rec
	w.mu.Unlock()
	if err := writeJSONAtomic(filepath.Join(c.dir, oomFile), rec); err != nil {
		c.log.WithError(err).Warn("cannot record the OOM count")
	}
}

// stopOOMWatch stops counting (the cgroup is gone, or the container).
func (c *Container) stopOOMWatch(r *Runtime) {
	w := &c.oom
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.quit != nil {
		close(w.quit)
		w.quit = nil
	}
	if w.efd >= 0 {
		r.mon.unwatch(w.efd)
		w.efd = -1
	}
	if w.ino != nil {
		r.inotify.remove(w.ino)
		w.ino = nil
	}
}

// oomKills finds the "oom_kill N" line of memory.oom_control (v1) or
// memory.events (v2).
func oomKills(b []byte) (uint64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
