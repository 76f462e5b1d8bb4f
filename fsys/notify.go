package fsys

import (
	"sync"
	"sync/atomic"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
)

// notifier tells the kernel, and inotify watchers, that files changed:
//   - poll wake-ups: a waiter registered by a POLL is woken when its file
//     has something new (NotifyPollWakeup). They are sent at once, from
//     whatever goroutine saw the change, a handler's too: the kernel's side
//     of a poll wake-up (fuse_notify_poll_wakeup) takes a spinlock and
//     wakes a wait queue, never waiting on a request, so unlike an
//     invalidation it cannot deadlock the server; and a hand-off to another
//     goroutine would delay every exit watcher;
//   - inotify pokes: the kernel sends no inotify event for changes made
//     inside a FUSE server, so on a change the notifier has one byte
//     written to the file through the mount, by a Poker: a process of its
//     own, never a thread of the daemon (see Poker). The file's write
//     handler knows the poker's thread and drops the byte; watchers see
//     IN_MODIFY and IN_CLOSE_WRITE, and the file's content is untouched.
type notifier struct {
	srv        atomic.Pointer[fs.Server] // set once serving
	mountpoint string
	poker      Poker

	pokeMu  sync.Mutex
	pokes   map[string]bool // paths under the mountpoint, coalesced
	pokeNow chan struct{}
}

// Poker writes the inotify pokes: one byte to each file it is given,
// through the mount, from a process other than the daemon. A daemon thread
// that writes to its own mount cannot be killed while the write is in
// flight (the kernel waits, uninterruptibly, for an answer only the dying
// daemon could give), so a kill -9 of the daemon would hang it, and its
// mount with it, for good.
type Poker interface {
	// Poke writes one byte to each file, paths under the mountpoint. It
	// may block while the poker works.
	Poke(rels []string) error
	// IsPoker reports whether tid is the thread the pokes come from: FUSE
	// requests carry the caller's thread id.
	IsPoker(tid uint32) bool
}

func newNotifier() *notifier {
	return &notifier{pokes: map[string]bool{}, pokeNow: make(chan struct{}, 1)}
}

// start begins sending, through srv, for the mount at mountpoint; pokes go
// through poker (none without one).
func (n *notifier) start(srv *fs.Server, mountpoint string, poker Poker) {
	n.mountpoint, n.poker = mountpoint, poker
	n.srv.Store(srv)
	go n.pokeLoop()
}

// wake sends poll wake-ups. A handle released meanwhile is unknown to the
// kernel, which then ignores its wake-up.
func (n *notifier) wake(ws []fuse.PollWakeup) {
	srv := n.srv.Load()
	if srv == nil { // not serving yet: nobody can be polling
		return
	}
	for _, w := range ws {
		srv.NotifyPollWakeup(w)
	}
}

// poke queues an inotify poke of the file at rel (under the mountpoint).
func (n *notifier) poke(rel string) {
	if n.mountpoint == "" || n.poker == nil {
		return
	}
	n.pokeMu.Lock()
	n.pokes[rel] = true
	n.pokeMu.Unlock()
	kick(n.pokeNow)
}

func (n *notifier) pokeLoop() {
	for range n.pokeNow {
		n.pokeMu.Lock()
		paths := make([]string, 0, len(n.pokes))
		for rel := range n.pokes {
			paths = append(paths, rel)
		}
		n.pokes = map[string]bool{}
		n.pokeMu.Unlock()
		if len(paths) > 0 && n.poker != nil {
			n.poker.Poke(paths) // a poke lost to a dead poker is only a missed IN_MODIFY
		}
	}
}

// isPoke reports whether a request comes from the poker.
func (n *notifier) isPoke(h *fuse.Header) bool {
	return n.poker != nil && n.poker.IsPoker(h.Pid)
}

// kick signals ch without blocking: one pending signal is enough.
func kick(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// pollWaiters are the poll wake-ups registered on one file: each handle
// whose POLL found nothing to read leaves one, and all are sent when the
// file changes.
type pollWaiters struct {
	mu      sync.Mutex
	pending map[fuse.PollWakeup]bool
}

// poll answers a POLL request: whether the file is readable now; and it
// registers the wake-up the kernel asks for (returned, for forget). ready is called under the waiters' lock, and
// wakeAll takes that lock after the change it announces: a change is never
// missed between the check and the registration.
func (w *pollWaiters) poll(req *fuse.PollRequest, resp *fuse.PollResponse, ready func() bool) (fuse.PollWakeup, bool) {
	return w.pollEvents(req, resp, func() fuse.PollEvents {
		if ready() {
			return fuse.PollIn
		}
		return 0
	})
}

// pollEvents is poll for a file that tells more than POLLIN (a writable
// file's POLLOUT): events says what it is ready for now.
func (w *pollWaiters) pollEvents(req *fuse.PollRequest, resp *fuse.PollResponse, events func() fuse.PollEvents) (fuse.PollWakeup, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// The wake-up is kept even when the file is ready now: an
	// edge-triggered epoll (Go's) polls once per edge, and the next edge
	// must still reach it after it has read everything.
	wk, ok := req.Wakeup()
	if ok {
		if w.pending == nil {
			w.pending = map[fuse.PollWakeup]bool{}
		}
		w.pending[wk] = true
	}
	resp.REvents = events()
	return wk, ok
}

// forget drops the wake-up of a handle being released.
func (w *pollWaiters) forget(wk fuse.PollWakeup) {
	w.mu.Lock()
	delete(w.pending, wk)
	w.mu.Unlock()
}

// pollRegistration remembers a handle's registered wake-up, so that its
// Release can forget it: a file that never changes must not collect the
// wake-ups of every handle that ever polled it.
type pollRegistration struct {
	mu  sync.Mutex
	wk  fuse.PollWakeup
	has bool
}

func (r *pollRegistration) set(wk fuse.PollWakeup, ok bool) {
	if ok {
		r.mu.Lock()
		r.wk, r.has = wk, true
		r.mu.Unlock()
	}
}

func (r *pollRegistration) release(w *pollWaiters) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.has {
		w.forget(r.wk)
		r.has = false
	}
}

// wakeAll sends every registered wake-up (through n, asynchronously).
func (w *pollWaiters) wakeAll(n *notifier) {
	w.mu.Lock()
	var ws []fuse.PollWakeup
	for wk := range w.pending {
		ws = append(ws, wk)
	}
	w.pending = nil
	w.mu.Unlock()
	n.wake(ws)
}
