package runtime

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// baseSpec is a container's process spec as `runc spec` makes it, with a
// terminal and a console size an exec must not inherit.
const baseSpec = `{"terminal":true,"consoleSize":{"height":24,"width":80},"user":{"uid":0,"gid":0,"additionalGids":[10]},
"args":["sh","-c","sleep 1000"],"env":["PATH=/usr/bin:/bin","TERM=xterm","HOME=/root"],"cwd":"/srv",
"capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true}`

func build(t *testing.T, req ExecRequest) (*specs.Process, error) {
	t.Helper()
	if err := req.Check(); err != nil {
		return nil, err
	}
	raw, p, err := buildExecSpec([]byte(baseSpec), &req)
	if err != nil {
		return nil, err
	}
	var back specs.Process
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(&back, p) {
		t.Errorf("the JSON spec does not decode to the spec: %v\n%s", err, raw)
	}
	return p, nil
}

func TestExecSpecArgvForm(t *testing.T) {
	p, err := build(t, ExecRequest{Name: "sh1", Args: []string{"sh", "-c", "echo hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Args, []string{"sh", "-c", "echo hi"}) {
		t.Errorf("args = %q", p.Args)
	}
	if p.Terminal || p.ConsoleSize != nil {
		t.Errorf("terminal %v, console size %v: an exec never inherits the terminal", p.Terminal, p.ConsoleSize)
	}
	if p.Cwd != "/srv" || p.User.UID != 0 || p.User.GID != 0 || !reflect.DeepEqual(p.User.AdditionalGids, []uint32{10}) ||
		!p.NoNewPrivileges || p.Capabilities == nil || !reflect.DeepEqual(p.Capabilities.Bounding, []string{"CAP_KILL"}) {
		t.Errorf("unset fields must come from the container's spec: %+v", p)
	}

	p, err = build(t, ExecRequest{Name: "x", Args: []string{"id"}, Terminal: true, Cwd: "/tmp",
		Env: []string{"TERM=dumb", "A=1=2", "B="}, User: "1000:1001"})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Terminal || p.Cwd != "/tmp" || p.User.UID != 1000 || p.User.GID != 1001 {
		t.Errorf("options not applied: %+v", p)
	}
	if p.ConsoleSize == nil || p.ConsoleSize.Width != 80 || p.ConsoleSize.Height != 24 {
		t.Errorf("a new terminal's size = %+v, want 80x24", p.ConsoleSize)
	}
	if want := []string{"PATH=/usr/bin:/bin", "TERM=dumb", "HOME=/root", "A=1=2", "B="}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env = %q, want %q", p.Env, want)
	}
	// UID alone keeps the container's GID.
	p, err = build(t, ExecRequest{Name: "x", Args: []string{"id"}, User: "65534"})
	if err != nil || p.User.UID != 65534 || p.User.GID != 0 {
		t.Errorf("--user 65534: %+v, %v", p, err)
	}
}

func TestExecSpecJSONForm(t *testing.T) {
	p, err := build(t, ExecRequest{Name: "j1", Spec: []byte(`{"args":["sh","-c","id -u"],"user":{"uid":1000,"gid":1000},"cwd":"/"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.Args, []string{"sh", "-c", "id -u"}) || p.Cwd != "/" {
		t.Errorf("args %q cwd %q", p.Args, p.Cwd)
	}
	// A field given replaces the container's whole field.
	if p.User.UID != 1000 || p.User.GID != 1000 || p.User.AdditionalGids != nil {
		t.Errorf("user = %+v, want the JSON's as given", p.User)
	}
	if p.Terminal || p.ConsoleSize != nil || !reflect.DeepEqual(p.Env, []string{"PATH=/usr/bin:/bin", "TERM=xterm", "HOME=/root"}) || !p.NoNewPrivileges {
		t.Errorf("unset fields: %+v", p)
	}
	p, err = build(t, ExecRequest{Name: "t", Stdin: true, Spec: []byte(`{"terminal":true,"consoleSize":{"height":40,"width":100}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !p.Terminal || p.ConsoleSize == nil || p.ConsoleSize.Width != 100 || !reflect.DeepEqual(p.Args, []string{"sh", "-c", "sleep 1000"}) {
		t.Errorf("terminal from the JSON, args from the container: %+v", p)
	}
}

func TestExecRequestErrors(t *testing.T) {
	for _, c := range []struct {
		req  ExecRequest
		kind Kind
		msg  string
	}{
		{ExecRequest{Name: "-x", Args: []string{"true"}}, KindInvalid, "invalid process name"},
		{ExecRequest{Name: "a/b", Args: []string{"true"}}, KindInvalid, "invalid process name"},
		{ExecRequest{Name: "..", Args: []string{"true"}}, KindInvalid, "invalid process name"},
		{ExecRequest{Name: "config.json", Args: []string{"true"}}, KindInvalid, "reserved"},
		{ExecRequest{Name: "state.json", Args: []string{"true"}}, KindInvalid, "reserved"},
		{ExecRequest{Name: "oom.json", Args: []string{"true"}}, KindInvalid, "reserved"},
		{ExecRequest{Name: "x"}, KindInvalid, "empty argv"},
		{ExecRequest{Name: "x", Args: []string{}}, KindInvalid, "empty argv"},
		{ExecRequest{Name: "x", Args: []string{"true"}, Cwd: "tmp"}, KindInvalid, "absolute"},
		{ExecRequest{Name: "x", Args: []string{"true"}, Env: []string{"NOEQUALS"}}, KindInvalid, "KEY=VALUE"},
		{ExecRequest{Name: "x", Args: []string{"true"}, Env: []string{"=v"}}, KindInvalid, "KEY=VALUE"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: "root"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: "1000:"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: ":1"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: "-1"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: "1:2:3"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: "4294967295"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"true"}, User: "99999999999"}, KindInvalid, "UID or UID:GID"},
		{ExecRequest{Name: "x", Args: []string{"a\x00b"}}, KindInvalid, "NUL"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":`)}, KindInvalid, "not one JSON object"},
		{ExecRequest{Name: "x", Spec: []byte(`[1]`)}, KindInvalid, "not one JSON object"},
		{ExecRequest{Name: "x", Spec: []byte(`null`)}, KindInvalid, "not one JSON object"},
		{ExecRequest{Name: "x", Spec: []byte(`{"arg":["true"]}`)}, KindInvalid, "unknown field"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":"true"}`)}, KindInvalid, "process spec"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":["true"]} {}`)}, KindInvalid, "not one JSON object"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":[]}`)}, KindInvalid, "empty args"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":["true"],"cwd":"rel"}`)}, KindInvalid, "absolute"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":["true"],"env":["X"]}`)}, KindInvalid, "KEY=VALUE"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":["a\u0000"]}`)}, KindInvalid, "NUL"},
		{ExecRequest{Name: "x", Spec: []byte(`{"args":["true"]}`), Terminal: true}, KindInvalid, "only --stdin"},
	} {
		_, err := build(t, c.req)
		if err == nil {
			t.Errorf("%+v: no error", c.req)
			continue
		}
		if KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v (kind %d), want kind %d and %q", c.req, err, KindOf(err), c.kind, c.msg)
		}
	}
}
