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

// DefaultSubscriberBuffer is how many events the bus keeps for readers
// that have not read them yet (--event-buffer): a reader further behind
// is told it overflowed.
const DefaultSubscriberBuffer = 4096

// bus hands every published event to every subscriber. Events are encoded
// once, into one ring of the last size events that every subscriber reads
// through a cursor of its own: a subscriber costs a few words however far
// behind it is, and the bus's memory is the ring's, whatever the number
// of subscribers. Publishing never blocks: a subscriber whose next event
// leaves the ring before it read it loses it, and reads one overflow
// event saying how many of its events it lost, then the events kept.
type bus struct {
	size int
	mu   sync.Mutex
	ring []busEntry // the event of sequence number n is ring[n%size]
	next uint64     // the sequence number of the next event
	subs map[*Subscription]struct{}
	// observers see every event as it is published, in order, under
	// the bus lock: they must not block (see Observe).
	observers []func(Event)
	last      atomicTime // the last event's time
}

// busEntry is one published event, as readers read it.
type busEntry struct {
	id     string // the container's
	delete bool   // a delete event: the end of the container's stream
	line   []byte // the event's JSON and a newline
}

func newBus(size int) *bus {
	return &bus{size: size, ring: make([]busEntry, 0, min(size, 64)), subs: map[*Subscription]struct{}{}}
}

// Subscription is one subscriber's place in the bus: every event published
// after it was made (of one container, or all), in order. Its fields are
// guarded by the bus's lock.
type Subscription struct {
	bus *bus
	id  string // only this container's events; "" for all
	// notify, when set, is called (never under a lock of the bus) after
	// events came for a subscriber that had none; Ready is signalled as
	// well.
	notify func()

	cursor  uint64 // the sequence number of the next event to look at
	pending int    // events for this subscriber in [cursor, bus.next)
	dropped uint64 // its events lost since it last read
	ended   bool   // a container's stream that is over: no more events
	closed  bool
	ready   chan struct{} // holds a token while Pending
}

// Subscribe makes a subscription to the events of container id ("" for
// every container). notify may be nil.
func (r *Runtime) Subscribe(id string, notify func()) *Subscription {
	return r.events.subscribe(id, notify)
}

func (b *bus) subscribe(id string, notify func()) *Subscription {
	s := &Subscription{bus: b, id: id, notify: notify, ready: make(chan struct{}, 1)}
	b.mu.Lock()
	s.cursor = b.next
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Observe calls fn with every event from now on, in order, synchronously
// as it is published: fn must be quick and must not block or publish. It
// is for the filesystem's own bookkeeping (which files changed), which
// must not wait behind a subscriber.
func (r *Runtime) Observe(fn func(Event)) {
	r.events.mu.Lock()
	r.events.observers = append(r.events.observers, fn)
	r.events.mu.Unlock()
}

func (s *Subscription) wants(e *busEntry) bool { return s.id == "" || s.id == e.id }

// publish puts e in the ring for every subscriber. The bus lock is held
// throughout, so that all subscribers see all events in one order.
func (b *bus) publish(e Event) {
	line, err := json.Marshal(e)
	if err != nil { // an Event always encodes; a bug otherwise
		line, _ = json.Marshal(Event{Time: e.Time, Type: EventError, ID: e.ID, Message: "cannot encode a " + e.Type + " event: " + err.Error()})
	}
	entry := busEntry{id: e.ID, delete: e.Type == EventDelete, line: append(line, '\n')}
	var wake []*Subscription
	b.mu.Lock()
	b.last.advance(e.Time)
	for _, fn := range b.observers {
		fn(e)
	}
	if b.next >= uint64(b.size) {
		b.evict(b.next - uint64(b.size))
	}
	if len(b.ring) < b.size {
		b.ring = append(b.ring, entry)
	} else {
		b.ring[b.next%uint64(b.size)] = entry
	}
	b.next++
	for s := range b.subs {
		if !s.wants(&entry) || s.ended {
			continue
		}
		s.pending++
		if s.pending == 1 && s.dropped == 0 {
			s.signal()
			if s.notify != nil {
				wake = append(wake, s)
			}
		}
	}
	b.mu.Unlock()
	for _, s := range wake {
		s.notify()
	}
}

// evict drops the event of sequence number seq, the oldest, from every
// subscriber that has not read it yet: they read an overflow event in
// its place. The bus lock is held.
func (b *bus) evict(seq uint64) {
	old := &b.ring[seq%uint64(b.size)]
	for s := range b.subs {
		if s.cursor != seq {
			continue
		}
		s.cursor++
		if !s.wants(old) || s.ended {
			continue
		}
		s.pending--
		s.dropped++
		if s.id != "" && old.delete {
			// The end of its container's stream is lost with the rest:
			// it reads the overflow, then its end.
			s.ended = true
		}
	}
	old.line = nil
}

// signal puts the Ready token. The bus lock is held.
func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Take returns the subscriber's next events as JSON lines, whole lines of
// at most max bytes in all (but at least one line); after a gap, first an
// overflow event saying how many were lost there. ended says that the
// stream of a container is over (its delete event was taken, or lost):
// the subscription is closed.
func (s *Subscription) Take(max int) (lines []byte, ended bool) {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.closed {
		return nil, s.ended
	}
	if s.dropped > 0 {
		o, _ := json.Marshal(Event{Time: time.Now().UTC(), Type: EventOverflow, ID: s.id, Dropped: s.dropped})
		lines = append(o, '\n')
		s.dropped = 0
	}
	for !s.ended && s.pending > 0 {
		e := &b.ring[s.cursor%uint64(b.size)]
		if !s.wants(e) {
			s.cursor++
			continue
		}
		if len(lines) > 0 && len(lines)+len(e.line) > max {
			break
		}
		lines = append(lines, e.line...)
		s.cursor++
		s.pending--
		s.ended = s.id != "" && e.delete
	}
	if s.pending == 0 {
		s.cursor = b.next // nothing further is for it
	}
	if s.ended {
		s.closeLocked()
	}
	select {
	case <-s.ready:
	default:
	}
	if s.pending > 0 {
		s.signal()
	}
	return lines, s.ended
}

// Pending reports whether Take would return anything.
func (s *Subscription) Pending() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return !s.closed && (s.pending > 0 || s.dropped > 0)
}

// Ready holds a token while events are pending: wait on it, then Take.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Close ends the subscription.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	delete(s.bus.subs, s)
	s.closed = true
	s.pending, s.dropped = 0, 0
}
