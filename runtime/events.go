package runtime

import (
	"encoding/json"
	"sync"
	"time"
)

// Event types, as the events files show them.
const (
	EventCreate     = "create"
	EventStart      = "start"
	EventExec       = "exec"
	EventExit       = "exit"
	EventOOM        = "oom"
	EventPause      = "pause"
	EventResume     = "resume"
	EventUpdate     = "update"
	EventCheckpoint = "checkpoint"
	EventDelete     = "delete"
	EventError      = "error"
	// EventPull is a pull's progress (no container): Ref, Bytes, Total.
	EventPull = "pull"
	// EventOverflow tells one subscriber that it read too slowly and lost
	// Dropped events at this point of its stream.
	EventOverflow = "overflow"
)

// Event is one thing that happened, one JSON line in an events file.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	ID      string    `json:"id,omitempty"`
	Process string    `json:"process,omitempty"`
	Pid     int       `json:"pid,omitempty"`
	// Status is the exit status of an exit event (128+N for signal N);
	// absent when it cannot be known (see Reason).
	Status *int   `json:"status,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Count is the container's OOM count after an oom event.
	Count      uint64          `json:"count,omitempty"`
	Checkpoint string          `json:"checkpoint,omitempty"`
	Resources  json.RawMessage `json:"resources,omitempty"`
	Message    string          `json:"message,omitempty"`
	// Dropped is how many events an overflow event stands for.
	Dropped uint64 `json:"dropped,omitempty"`
	// Ref, Bytes and Total are a pull event's: the reference, and the
	// compressed bytes fetched so far of Total.
	Ref   string `json:"ref,omitempty"`
	Bytes *int64 `json:"bytes,omitempty"`
	Total *int64 `json:"total,omitempty"`
}

// DefaultSubscriberBuffer is how many unread events a subscriber may hold
// before it is told it overflowed.
const DefaultSubscriberBuffer = 4096

// bus hands every published event to every subscriber. Publishing never
// blocks: a subscriber that does not keep up loses the newest events and
// gets one overflow event in their place, and nobody else is slowed.
type bus struct {
	limit int // default subscriber buffer
	mu    sync.Mutex
	subs  map[*Subscription]struct{}
	// observers see every event as it is published, in order, under
	// the bus lock: they must not block (see Observe).
	observers []func(Event)
}

func newBus(limit int) *bus { return &bus{limit: limit, subs: map[*Subscription]struct{}{}} }

// Subscription is one subscriber's queue: every event published after it
// was made (of one container, or all), in order.
type Subscription struct {
	bus   *bus
	id    string // only this container's events; "" for all
	limit int
	// notify, when set, is called (never under a lock of the bus) after
	// events were queued; Ready is signalled as well.
	notify func()

	mu      sync.Mutex
	queue   []Event
	dropped uint64
	closed  bool
	ready   chan struct{} // holds a token while the queue is not empty
}

// Subscribe makes a subscription to the events of container id ("" for
// every container), holding at most limit unread events (0: the daemon's
// --event-buffer).
// notify may be nil.
func (r *Runtime) Subscribe(id string, limit int, notify func()) *Subscription {
	return r.events.subscribe(id, limit, notify)
}

func (b *bus) subscribe(id string, limit int, notify func()) *Subscription {
	if limit <= 0 {
		limit = b.limit
	}
	s := &Subscription{bus: b, id: id, limit: limit, notify: notify, ready: make(chan struct{}, 1)}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Observe calls fn with every event from now on, in order, synchronously
// as it is published: fn must be quick and must not block or publish. It
// is for the filesystem's own bookkeeping (which files changed), which
// must not wait behind a subscriber's queue and goroutine.
func (r *Runtime) Observe(fn func(Event)) {
	r.events.mu.Lock()
	r.events.observers = append(r.events.observers, fn)
	r.events.mu.Unlock()
}

// publish queues e for every subscriber it concerns. The bus lock is held
// throughout, so that all subscribers see all events in one order.
func (b *bus) publish(e Event) {
	var wake []*Subscription
	b.mu.Lock()
	for _, fn := range b.observers {
		fn(e)
	}
	for s := range b.subs {
		if s.id != "" && s.id != e.ID {
			continue
		}
		if s.add(e) && s.notify != nil {
			wake = append(wake, s)
		}
	}
	b.mu.Unlock()
	for _, s := range wake {
		s.notify()
	}
}

// add queues e, or counts it dropped when the queue is full; it reports
// whether the queue went from empty to not empty.
func (s *Subscription) add(e Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if len(s.queue) >= s.limit || s.dropped > 0 {
		// Once overflowing, keep dropping until the reader has caught
		// up, so the overflow event marks one gap, not many.
		s.dropped++
		return false
	}
	wasEmpty := len(s.queue) == 0
	s.queue = append(s.queue, e)
	if wasEmpty {
		select {
		case s.ready <- struct{}{}:
		default:
		}
	}
	return wasEmpty
}

// Take returns the queued events and empties the queue; after a gap it
// ends with an overflow event saying how many were lost there.
func (s *Subscription) Take() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.queue
	s.queue = nil
	if s.dropped > 0 {
		out = append(out, Event{Time: time.Now().UTC(), Type: EventOverflow, ID: s.id, Dropped: s.dropped})
		s.dropped = 0
	}
	select {
	case <-s.ready:
	default:
	}
	return out
}

// Pending reports whether Take would return anything.
func (s *Subscription) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0 || s.dropped > 0
}

// Ready holds a token while events are queued: wait on it, then Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	delete(s.bus.subs, s)
	s.bus.mu.Unlock()
	s.mu.Lock()
	s.closed, s.queue = true, nil
	s.mu.Unlock()
}
