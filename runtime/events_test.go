package runtime

import (
	"testing"
)

func TestBusFilterAndOrder(t *testing.T) {
	b := newBus(DefaultSubscriberBuffer)
	all := b.subscribe("", 0, nil)
	web := b.subscribe("web", 0, nil)
	for _, e := range []Event{{Type: EventCreate, ID: "web"}, {Type: EventCreate, ID: "db"}, {Type: EventStart, ID: "web"}} {
		b.publish(e)
	}
	if got := types(all.Take()); got != "create/web create/db start/web " {
		t.Errorf("all: %s", got)
	}
	if got := types(web.Take()); got != "create/web start/web " {
		t.Errorf("web: %s", got)
	}
	if web.Pending() || len(web.Take()) != 0 {
		t.Error("queue not empty after Take")
	}
}

func TestBusOverflowMarksOneGap(t *testing.T) {
	b := newBus(DefaultSubscriberBuffer)
	slow := b.subscribe("", 2, nil)
	fast := b.subscribe("", 0, nil)
	for i := 0; i < 5; i++ {
		b.publish(Event{Type: EventPause, ID: "x"})
	}
	got := slow.Take()
	if len(got) != 3 || got[2].Type != EventOverflow || got[2].Dropped != 3 {
		t.Fatalf("slow subscriber got %+v", got)
	}
	if n := len(fast.Take()); n != 5 {
		t.Errorf("fast subscriber got %d events, want 5", n)
	}
	b.publish(Event{Type: EventResume, ID: "x"})
	if got := types(slow.Take()); got != "resume/x " {
		t.Errorf("after catching up: %s", got)
	}
}

func TestBusReadyAndNotify(t *testing.T) {
	b := newBus(DefaultSubscriberBuffer)
	notified := 0
	s := b.subscribe("", 0, func() { notified++ })
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
