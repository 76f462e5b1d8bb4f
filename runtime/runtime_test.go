package runtime

import (
	"os"
	"strings"
	"testing"

	"github.com/ctrfs/ctrfs/internal/procfs"
)

func TestRuntimeErrorText(t *testing.T) {
	err := runtimeError("pause", errString(`exit status 1: {"level":"error","msg":"container not running","time":"t"}`))
	if KindOf(err) != KindRuntime || err.Error() != "pause: container not running" {
		t.Errorf("runtimeError = %v (kind %d)", err, KindOf(err))
	}
}

type errString string

func (e errString) Error() string { return string(e) }

// The pid file's format is tested in shim/proto, /proc's in internal/procfs.
func TestAliveSelf(t *testing.T) {
	start, err := procfs.StartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !alive(os.Getpid(), start) {
		t.Error("alive(self) = false")
	}
	if alive(os.Getpid(), start+1) {
		t.Error("alive with another start time = true: no pid-reuse guard")
	}
	if alive(os.Getpid(), 0) {
		t.Error("alive with an unknown start time = true")
	}
}

func TestStateChecks(t *testing.T) {
	for _, c := range []struct {
		s  State
		o  Order
		ok bool
	}{
		{Created, OrderStart, true}, {Running, OrderStart, false},
		{Running, OrderPause, true}, {Stopped, OrderPause, false}, {Paused, OrderPause, false},
		{Paused, OrderResume, true}, {Running, OrderResume, false},
		{Created, OrderKill, true}, {Paused, OrderKill, true}, {Stopped, OrderKill, false},
		{Created, OrderDelete, true}, {Stopped, OrderDelete, true}, {Running, OrderDelete, false}, {Paused, OrderDelete, false},
		{Created, OrderUpdate, true}, {Running, OrderUpdate, true}, {Paused, OrderUpdate, true}, {Stopped, OrderUpdate, false},
		{Running, OrderCheckpoint, true}, {Paused, OrderCheckpoint, true}, {Created, OrderCheckpoint, false}, {Stopped, OrderCheckpoint, false},
	} {
		err := c.s.check(c.o, "x")
		if (err == nil) != c.ok {
			t.Errorf("%s in %s: err = %v, want ok=%v", c.o, c.s, err, c.ok)
		}
		if err != nil && (KindOf(err) != KindBusy || !strings.Contains(err.Error(), string(c.s))) {
			t.Errorf("%s in %s: error %q should be EBUSY and name the state", c.o, c.s, err)
		}
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "web-1", "A.b_c", strings.Repeat("x", 128)} {
		if err := CheckName("id", ok); err != nil {
			t.Errorf("CheckName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "-x", ".a", "..", "../a", "a/b", "a b", strings.Repeat("x", 129), "a\n"} {
		if err := CheckName("id", bad); KindOf(err) != KindInvalid {
			t.Errorf("CheckName(%q) = %v, want KindInvalid", bad, err)
		}
	}
}

func TestCreateRequestCheck(t *testing.T) {
	good := CreateRequest{ID: "web", Bundle: "/b", Labels: map[string]string{"app/tier": "x y"}, RuntimeArgs: []string{"--debug"}}
	if err := good.Check(); err != nil {
		t.Errorf("Check(good) = %v", err)
	}
	for _, bad := range []CreateRequest{
		{ID: "-x", Bundle: "/b"},
		{ID: "web", Bundle: "b"},
		{ID: "web", Bundle: "/b", Labels: map[string]string{"-k": "v"}},
		{ID: "web", Bundle: "/b", Labels: map[string]string{"k": "a\nb"}},
		{ID: "web", Bundle: "/b", RuntimeArgs: []string{"--root=/x"}},
		{ID: "web", Bundle: "/b", RuntimeArgs: []string{"--log"}},
		{ID: "web", Bundle: "/b", RuntimeArgs: []string{"-d"}},
	} {
		if err := bad.Check(); KindOf(err) != KindInvalid {
			t.Errorf("Check(%+v) = %v, want KindInvalid", bad, err)
		}
	}
}
