package fsys

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/runtime"
)

func TestPSTable(t *testing.T) {
	at := time.Date(2026, 11, 28, 13, 2, 8, 637000000, time.FixedZone("CET", 3600))
	st := []runtime.Status{
		{ID: "web", State: runtime.Running, Pid: 2355, Created: at, Bundle: "/b/web"},
		{ID: "db", State: runtime.Stopped, Created: at, ExitStatus: json.RawMessage("137"), Bundle: "/b/my db"},
		{ID: "a", State: runtime.Stopped, Created: at, ExitStatus: json.RawMessage("null"), Bundle: "/b/a"},
		{ID: "new", State: runtime.Created, Pid: 7, Bundle: ""},
	}
	want := "" +
		"ID    STATE     PID    CREATED                EXIT      BUNDLE\n" +
		"a     stopped   -      2026-11-28T12:02:08Z   unknown   /b/a\n" +
		"db    stopped   -      2026-11-28T12:02:08Z   137       \"/b/my db\"\n" +
		"new   created   7      -                      -         -\n" +
		"web   running   2355   2026-11-28T12:02:08Z   -         /b/web\n"
	if got := string(psTable(st)); got != want {
		t.Errorf("psTable =\n%s\nwant\n%s", got, want)
	}
	if got, want := string(psTable(nil)), "ID   STATE   PID   CREATED   EXIT   BUNDLE\n"; got != want {
		t.Errorf("psTable of none = %q, want %q", got, want)
	}
}

func TestPSCell(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/plain/path", "/plain/path"},
		{"", "-"},
		{"/a b", `"/a b"`},
		{"/a\tb", `"/a\tb"`},
		{"/a\"b", `"/a\"b"`},
		{"/\xff", `"/\xff"`},
		{"/é", "/é"},
	} {
		if got := psCell(c.in); got != c.want {
			t.Errorf("psCell(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
