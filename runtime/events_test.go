package runtime

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestBusFilterAndOrder(t *testing.T) {
	b := newBus(DefaultSubscriberBuffer)
	all := b.subscribe("", nil)
	web := b.subscribe("web", nil)
	for _, e := range []Event{{Type: EventCreate, ID: "web"}, {Type: EventCreate, ID: "db"}, {Type: EventStart, ID: "web"}} {
		b.publish(e)
	}
	if got := types(take(t, all)); got != "create/web create/db start/web " {
		t.Errorf("all: %s", got)
	}
	if got := types(take(t, web)); got != "create/web start/web " {
		t.Errorf("web: %s", got)
	}
	if web.Pending() || len(take(t, web)) != 0 {
		t.Error("queue not empty after Take")
	}
}

// TestBusOverflowMarksOneGap: a subscriber further behind than the ring
// reads one overflow event counting its lost events (only its own), then
// the events kept; nobody else notices.
func TestBusOverflowMarksOneGap(t *testing.T) {
	b := newBus(3)
	slow := b.subscribe("", nil)
	onlyX := b.subscribe("x", nil)
	fast := b.subscribe("", nil)
	n := 0
	for i := 0; i < 5; i++ {
		b.publish(Event{Type: EventPause, ID: "x"})
		b.publish(Event{Type: EventPause, ID: "y"})
		n += len(take(t, fast))
	}
	if n != 10 {
		t.Errorf("fast subscriber got %d events, want 10", n)
	}
	got := take(t, slow)
	if types(got) != "overflow/ pause/y pause/x pause/y " || got[0].Dropped != 7 {
		t.Fatalf("slow subscriber got %+v", got)
	}
	got = take(t, onlyX)
	if types(got) != "overflow/x pause/x " || got[0].Dropped != 4 {
		t.Fatalf("subscriber of x got %+v", got)
	}
	b.publish(Event{Type: EventResume, ID: "x"})
	if got := types(take(t, slow)); got != "resume/x " {
		t.Errorf("after catching up: %s", got)
	}
}

// TestBusEndsAContainersStream: a container's subscription ends with its
// delete event, read or lost.
func TestBusEndsAContainersStream(t *testing.T) {
	b := newBus(2)
	read, lost := b.subscribe("x", nil), b.subscribe("x", nil)
	b.publish(Event{Type: EventStart, ID: "x"})
	b.publish(Event{Type: EventDelete, ID: "x"})
	if lines, ended := read.Take(1 << 20); !ended || !strings.HasSuffix(string(lines), `"type":"delete","id":"x"}`+"\n") {
		t.Errorf("read: %q, ended %v", lines, ended)
	}
	for i := 0; i < 3; i++ {
		b.publish(Event{Type: EventCreate, ID: "x"}) // the id reused
	}
	got, ended := lost.Take(1 << 20)
	if !ended || !strings.Contains(string(got), `"type":"overflow"`) || strings.Contains(string(got), `"create"`) {
		t.Errorf("lost: %q, ended %v", got, ended)
	}
	if len(b.subs) != 0 {
		t.Errorf("%d subscriptions left", len(b.subs))
	}
}

// TestBusTakeBounded: Take gives whole lines, at most max bytes but one
// line at least, and the rest at the next Take.
func TestBusTakeBounded(t *testing.T) {
	b := newBus(DefaultSubscriberBuffer)
	s := b.subscribe("", nil)
	for i := 0; i < 10; i++ {
		b.publish(Event{Type: EventPause, ID: "x"})
	}
	n := 0
	for s.Pending() {
		lines, _ := s.Take(1)
		if strings.Count(string(lines), "\n") != 1 {
			t.Fatalf("Take(1) = %q, want one line", lines)
		}
		n++
	}
	if n != 10 {
		t.Errorf("%d lines, want 10", n)
	}
}

func TestBusReadyAndNotify(t *testing.T) {
	b := newBus(DefaultSubscriberBuffer)
	notified := 0
	s := b.subscribe("", func() { notified++ })
	b.publish(Event{Type: EventStart, ID: "a"})
	b.publish(Event{Type: EventPause, ID: "a"})
	select {
	case <-s.Ready():
	default:
		t.Fatal("Ready has no token with events queued")
	}
	if notified != 1 {
		t.Errorf("notify called %d times for one empty-to-nonempty change, want 1", notified)
	}
	s.Close()
	b.publish(Event{Type: EventResume, ID: "a"})
	if s.Pending() {
		t.Error("a closed subscription still queues")
	}
}

// take decodes all of s's pending events.
func take(t *testing.T, s *Subscription) []Event {
	t.Helper()
	lines, _ := s.Take(1 << 20)
	var out []Event
	for _, l := range strings.SplitAfter(string(lines), "\n") {
		if l == "" {
			continue
		}
		var e Event
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("bad line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

func TestOOMKills(t *testing.T) {
	for in, want := range map[string]uint64{
		"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n": 3,
		"low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n":     1,
	} {
		if n, ok := oomKills([]byte(in)); !ok || n != want {
			t.Errorf("oomKills(%q) = %d, %v; want %d", in, n, ok, want)
		}
	}
	if _, ok := oomKills([]byte("oom_kill_disable 0\nunder_oom 1\n")); ok {
		t.Error("found an oom_kill counter where there is none")
	}
}

func types(es []Event) string {
	s := ""
	for _, e := range es {
		s += e.Type + "/" + e.ID + " "
	}
	return s
}

// TestFailedNamesItsOrderOnce: an order's error event names the order once,
// whether or not the error's own text already does.
func TestFailedNamesItsOrderOnce(t *testing.T) {
	c := &Container{id: "c", bus: newBus(10)}
	sub := c.bus.subscribe("", nil)
	defer sub.Close()
	c.failed(OrderUpdate, errors.New("update: memory limit 4096 is below the usage"))
	c.failed(OrderUpdate, errors.New("runc said no"))
	evs := take(t, sub)
	want := []string{"update: memory limit 4096 is below the usage", "update: runc said no"}
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Type != EventError || e.Message != want[i] {
			t.Errorf("event %d: %s %q, want error %q", i, e.Type, e.Message, want[i])
		}
	}
}
