package proto

import (
	"strings"
	"testing"
)

func TestPidFile(t *testing.T) {
	data := MarshalPidFile(123, 456)
	if string(data) != "123 456\n" {
		t.Errorf("MarshalPidFile = %q", data)
	}
	pid, start, err := ParsePidFile(data)
	if err != nil || pid != 123 || start != 456 {
		t.Errorf("ParsePidFile = %d %d %v", pid, start, err)
	}
	for _, bad := range []string{"", "123", "x 1", "-1 2", "0 2", "1 2 3", "1 y", "1 -2"} {
		if _, _, err := ParsePidFile([]byte(bad)); err == nil {
			t.Errorf("ParsePidFile(%q): no error", bad)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, c := range []struct {
		v, of int
		ok    bool
	}{
		{0, 1, true}, // written before versions
		{1, 1, true},
		{Version, Version, true},
		{Version + 1, Version + 1, false}, // a newer shim or daemon
		{-1, -1, false},
	} {
		if got := VersionOf(c.v); got != c.of {
			t.Errorf("VersionOf(%d) = %d; want %d", c.v, got, c.of)
		}
		if err := CheckVersion(c.v); (err == nil) != c.ok {
			t.Errorf("CheckVersion(%d) = %v; want ok %v", c.v, err, c.ok)
		}
	}
}

func TestReport(t *testing.T) {
	failed := Report{Error: "criu failed: type RESTORE errno 0", CRIU: "a; b"}
	for _, c := range []struct {
		name    string
		r       Report
		version int // of the daemon's Config
		line    string
	}{
		{"pid v1", Report{Pid: 42}, 0, `{"pid":42}`},
		{"pid v2", Report{Pid: 42}, 2, `{"version":2,"pid":42}`},
		{"error v1", Report{Error: "no such bundle"}, 1, `{"error":"no such bundle"}`},
		// Version 1 glued CRIU's errors to the message; a daemon of
		// version 1 splits them back.
		{"restore v1", failed, 0, `{"error":"criu failed: type RESTORE errno 0; restore.log: a; b"}`},
		{"restore v2", failed, 2, `{"version":2,"error":"criu failed: type RESTORE errno 0","criu":"a; b"}`},
	} {
		line := MarshalReport(c.r, c.version)
		if string(line) != c.line+"\n" {
			t.Errorf("%s: MarshalReport = %s; want %s", c.name, line, c.line)
		}
		got, err := ParseReport(line)
		want := c.r
		want.Version = VersionOf(c.version)
		if err != nil || got != want {
			t.Errorf("%s: ParseReport = %+v, %v; want %+v", c.name, got, err, want)
		}
	}
	// A report of a newer shim is refused, not misread.
	if r, err := ParseReport([]byte(`{"version":99,"pid":42}`)); err == nil || !strings.Contains(err.Error(), "version 99") {
		t.Errorf("ParseReport of version 99 = %+v, %v; want an error naming it", r, err)
	}
	if _, err := ParseReport([]byte(`not json`)); err == nil {
		t.Error("ParseReport of garbage: no error")
	}
}
