package fsys

import (
	"reflect"
	"strings"
	"syscall"
	"testing"

	"bazil.org/fuse"

	"github.com/ctrfs/ctrfs/runtime"
)

// grammar names a ctl file's table, for the tests.
type grammar int

const (
	rootGrammar grammar = iota
	containerGrammar
	processGrammar
)

// parsed is a parsed command, its target left out.
type parsed struct {
	text, verb string
	arg        any
}

// parseCommands parses data with the table of g.
func parseCommands(data []byte, g grammar) ([]parsed, error) {
	switch g {
	case rootGrammar:
		return flatten(rootTable.parse(data))
	case containerGrammar:
		return flatten(containerTable.parse(data))
	}
	return flatten(processTable.parse(data))
}

func flatten[T any](cmds []command[T], err error) ([]parsed, error) {
	var out []parsed
	for _, c := range cmds {
		out = append(out, parsed{text: c.text, verb: c.verb.name, arg: c.arg})
	}
	return out, err
}

func TestSplitWords(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "run web /b", want: []string{"run", "web", "/b"}},
		{in: "  a\t b  ", want: []string{"a", "b"}},
		{in: `--label 'k=two words'`, want: []string{"--label", "k=two words"}},
		{in: `--label "k=say \"hi\" \$x \n"`, want: []string{"--label", `k=say "hi" $x \n`}},
		{in: `a\ b c`, want: []string{"a b", "c"}},
		{in: `''`, want: []string{""}},
		{in: `x'y'"z"`, want: []string{"xyz"}},
		{in: `'open`, bad: true},
		{in: `"open`, bad: true},
		{in: `end\`, bad: true},
		{in: "nul\x00", bad: true},
	}
	for _, c := range cases {
		got, err := splitWords(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("splitWords(%q) = %q, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("splitWords(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestParseRoot(t *testing.T) {
	cmds, err := parseCommands([]byte("run web /b --label a=1 --label 'b=x y' --runtime-arg --debug --no-pivot --stdin --tty\n# note\n\ndelete old --force"), rootGrammar)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 {
		t.Fatalf("got %d commands, want 2", len(cmds))
	}
	req := cmds[0].arg
	want := runtime.CreateRequest{ID: "web", Bundle: "/b", Start: true, NoPivot: true, Stdin: true, TTY: true,
		Labels: map[string]string{"a": "1", "b": "x y"}, RuntimeArgs: []string{"--debug"}}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("create request = %+v, want %+v", req, want)
	}
	if cmds[1].verb != "delete" || cmds[1].arg != (deleteArgs{id: "old", force: true}) {
		t.Errorf("delete = %+v", cmds[1])
	}
}

func TestParseContainer(t *testing.T) {
	for in, want := range map[string]parsed{
		"kill":              {verb: "kill", arg: killArgs{signal: syscall.SIGTERM}},
		"kill KILL --all":   {verb: "kill", arg: killArgs{signal: syscall.SIGKILL, all: true}},
		"kill sigusr1":      {verb: "kill", arg: killArgs{signal: syscall.SIGUSR1}},
		"kill 9":            {verb: "kill", arg: killArgs{signal: syscall.SIGKILL}},
		"kill -9":           {verb: "kill", arg: killArgs{signal: syscall.SIGKILL}},
		"kill --all SIGHUP": {verb: "kill", arg: killArgs{signal: syscall.SIGHUP, all: true}},
		"delete --force":    {verb: "delete", arg: true},
		"delete":            {verb: "delete", arg: false},
		"pause":             {verb: "pause", arg: noArgs{}},
	} {
		cmds, err := parseCommands([]byte(in), containerGrammar)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		got := cmds[0]
		got.text = ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q = %+v, want %+v", in, got, want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		in   string
		g    grammar
		kind runtime.Kind
		msg  string
	}{
		{"frobnicate", rootGrammar, runtime.KindInvalid, "unknown verb"},
		{"run web", rootGrammar, runtime.KindInvalid, "usage"},
		{"run web /b extra", rootGrammar, runtime.KindInvalid, "usage"},
		{"run -x /b", rootGrammar, runtime.KindInvalid, "unknown option"},
		{"run ../a /b", rootGrammar, runtime.KindInvalid, "invalid container id"},
		{"run a/b /b", rootGrammar, runtime.KindInvalid, "invalid container id"},
		{"run .a /b", rootGrammar, runtime.KindInvalid, "invalid container id"},
		{"run " + strings.Repeat("a", 129) + " /b", rootGrammar, runtime.KindInvalid, "invalid container id"},
		{"run web rel/path", rootGrammar, runtime.KindInvalid, "absolute"},
		{"run web /b --label nokey", rootGrammar, runtime.KindInvalid, "KEY=VALUE"},
		{"run web /b --runtime-arg --root=/x", rootGrammar, runtime.KindInvalid, "itself"},
		{"run web /b --runtime-arg plain", rootGrammar, runtime.KindInvalid, "--flag"},
		{"run web /b --label", rootGrammar, runtime.KindInvalid, "needs a value"},
		{"delete", rootGrammar, runtime.KindInvalid, "usage"},
		{"run 'web /b", rootGrammar, runtime.KindInvalid, "unterminated"},
		{"pause\nfrobnicate", containerGrammar, runtime.KindInvalid, "line 2"},
		{"kill FOO", containerGrammar, runtime.KindInvalid, "unknown signal"},
		{"kill 0", containerGrammar, runtime.KindInvalid, "out of range"},
		{"kill 65", containerGrammar, runtime.KindInvalid, "out of range"},
		{"pause now", containerGrammar, runtime.KindInvalid, "unexpected argument"},
		{"start --force", containerGrammar, runtime.KindInvalid, "unknown option"},
		{"create web /b", containerGrammar, runtime.KindInvalid, "unknown verb"},
		{"", containerGrammar, runtime.KindInvalid, "no command"},
		{"\n# only a comment\n", containerGrammar, runtime.KindInvalid, "no command"},
		{strings.Repeat("pause\n", maxCommandSize/6+1), containerGrammar, runtime.KindTooBig, "too large"},
	} {
		_, err := parseCommands([]byte(c.in), c.g)
		if err == nil {
			t.Errorf("%.40q: no error", c.in)
			continue
		}
		if runtime.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%.40q: got %v (kind %d), want kind %d containing %q", c.in, err, runtime.KindOf(err), c.kind, c.msg)
		}
	}
}

func TestParseCheckpoint(t *testing.T) {
	cmd, err := parseOne(t, "checkpoint cp2 --exit --tcp --unix-sockets --shell --empty-ns network --dir /srv/cp")
	want := runtime.CheckpointRequest{Name: "cp2", Dir: "/srv/cp", Exit: true, TCP: true, UnixSockets: true, Shell: true, EmptyNS: []string{"network"}}
	if err != nil || !reflect.DeepEqual(cmd.arg, want) {
		t.Errorf("checkpoint = %+v, %v", cmd.arg, err)
	}
	if cmd, err := parseOne(t, "checkpoint cp1"); err != nil || !reflect.DeepEqual(cmd.arg, runtime.CheckpointRequest{Name: "cp1"}) {
		t.Errorf("checkpoint cp1 = %+v, %v", cmd.arg, err)
	}
	for _, c := range []struct{ in, msg string }{
		{"checkpoint", "usage"},
		{"checkpoint a b", "usage"},
		{"checkpoint -x", "unknown option"},
		{"checkpoint --exit", "usage"},
		{"checkpoint ../a", "invalid checkpoint name"},
		{"checkpoint a/b", "invalid checkpoint name"},
		{"checkpoint .a", "invalid checkpoint name"},
		{"checkpoint ''", "invalid checkpoint name"},
		{"checkpoint " + strings.Repeat("c", 129), "invalid checkpoint name"},
		{"checkpoint cp --dir", "needs a value"},
		{"checkpoint cp --dir ''", "empty path"},
		{"checkpoint cp --dir rel", "absolute"},
		{"checkpoint cp --empty-ns ipc", "network"},
		{"checkpoint cp --leave-running", "unknown option"},
		{"checkpoint cp --exit=1", "unknown option"},
	} {
		_, err := parseOne(t, c.in)
		if err == nil || runtime.KindOf(err) != runtime.KindInvalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want EINVAL containing %q", c.in, err, c.msg)
		}
	}
}

func TestParseRestore(t *testing.T) {
	cmds, err := parseCommands([]byte("create web2 /b --checkpoint cp2 --checkpoint-dir /srv/cp"), rootGrammar)
	if err != nil || cmds[0].arg.(runtime.CreateRequest).Checkpoint != "cp2" || cmds[0].arg.(runtime.CreateRequest).CheckpointDir != "/srv/cp" {
		t.Fatalf("create --checkpoint = %+v, %v", cmds, err)
	}
	for _, c := range []struct{ in, msg string }{
		{"run w /b --checkpoint", "needs a value"},
		{"run w /b --checkpoint ''", "invalid checkpoint name"},
		{"run w /b --checkpoint ../x", "invalid checkpoint name"},
		{"run w /b --checkpoint -x", "invalid checkpoint name"},
		{"run w /b --checkpoint cp --checkpoint-dir rel", "absolute"},
		{"run w /b --checkpoint cp --checkpoint-dir ''", "empty path"},
		{"run w /b --checkpoint-dir /srv/cp", "without --checkpoint"},
	} {
		_, err := parseCommands([]byte(c.in), rootGrammar)
		if err == nil || runtime.KindOf(err) != runtime.KindInvalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v, want EINVAL containing %q", c.in, err, c.msg)
		}
	}
}

// FuzzParseCommands checks that no input crashes the parser, and that
// whatever it accepts is safe to hand to the runtime: valid names, absolute
// bundles, signals in range.
func FuzzParseCommands(f *testing.F) {
	for _, seed := range []string{
		"run web /b --label a=b", "create x /y --runtime-arg --debug --no-pivot", "delete web --force",
		"pause", "kill -9", "kill SIGTERM --all", "start\nresume\n", `run "a b" '/c d'`, "run -x /b",
		"kill 99", "\x00", "'", `\`, "run web /b --label=k=v --runtime=crun",
		"update memory=64M pids=50", `update {"cpu":{"shares":512}}`, "update cpuset-cpus=0-1 memory-swap=max",
		"checkpoint cp1 --exit --tcp --dir /srv", "run w /b --checkpoint cp --checkpoint-dir /c",
		"exec sh1 -- sh -c 'echo hi'", "exec c --stdin --tty --cwd=/ --env A=b --user 1:2 cat",
		`exec j1 --stdin {"args":["id"],"cwd":"/"}`, "exec x -- echo {}", "resize 80 24", "close-stdin",
	} {
		for g := range 3 {
			f.Add([]byte(seed), uint8(g))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, gn uint8) {
		g := grammar(gn % 3)
		root := g == rootGrammar
		cmds, err := parseCommands(data, g)
		if err != nil {
			if runtime.KindOf(err) != runtime.KindInvalid && runtime.KindOf(err) != runtime.KindTooBig {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		for _, c := range cmds {
			switch c.verb {
			case "create", "run":
				req := c.arg.(runtime.CreateRequest)
				if err := req.Check(); err != nil {
					t.Fatalf("accepted a bad create: %v", err)
				}
			case "delete":
				if a, ok := c.arg.(deleteArgs); ok && runtime.CheckName("container id", a.id) != nil {
					t.Fatalf("accepted bad id %q", a.id)
				} else if root != ok {
					t.Fatalf("delete argument %#v in grammar %d", c.arg, g)
				}
			case "kill":
				if a := c.arg.(killArgs); a.signal < 1 || a.signal > maxSignal || a.all && g == processGrammar {
					t.Fatalf("accepted kill %+v", a)
				}
			case "update":
				req := c.arg.(runtime.UpdateRequest)
				if err := req.Check(); err != nil {
					t.Fatalf("accepted a bad update: %v", err)
				}
			case "checkpoint":
				req := c.arg.(runtime.CheckpointRequest)
				if err := req.Check(); err != nil {
					t.Fatalf("accepted a bad checkpoint: %v", err)
				}
			case "exec":
				req := c.arg.(runtime.ExecRequest)
				if err := req.Check(); err != nil {
					t.Fatalf("accepted a bad exec: %v", err)
				}
			case "resize":
				if s := c.arg.(winSize); s.cols == 0 || s.rows == 0 {
					t.Fatalf("accepted resize %dx%d", s.cols, s.rows)
				}
			case "start", "pause", "resume", "close-stdin":
			default:
				t.Fatalf("accepted verb %q", c.verb)
			}
		}
	})
}

func TestParseExec(t *testing.T) {
	for in, want := range map[string]runtime.ExecRequest{
		"exec sh1 -- sh -c 'echo hello; echo oops >&2; exit 3'": {Name: "sh1", Args: []string{"sh", "-c", "echo hello; echo oops >&2; exit 3"}},
		"exec cat1 --stdin -- cat":                              {Name: "cat1", Stdin: true, Args: []string{"cat"}},
		"exec c cat -n":                                         {Name: "c", Args: []string{"cat", "-n"}},
		"exec c --tty --cwd /tmp --env A=1 --env=B=2 --user=1000:1000 ls -l --all": {Name: "c", Terminal: true, Cwd: "/tmp",
			Env: []string{"A=1", "B=2"}, User: "1000:1000", Args: []string{"ls", "-l", "--all"}},
		"exec c -- --not-an-option": {Name: "c", Args: []string{"--not-an-option"}},
		"exec c -- echo {}":         {Name: "c", Args: []string{"echo", "{}"}},
		"exec c echo '{\"a\": 1}'":  {Name: "c", Args: []string{"echo", `{"a": 1}`}},
		`exec j1 {"args":["sh","-c","id -u"],"user":{"uid":1000,"gid":1000},"cwd":"/"}`: {Name: "j1",
			Spec: []byte(`{"args":["sh","-c","id -u"],"user":{"uid":1000,"gid":1000},"cwd":"/"}`)},
		`exec j2 --stdin   {"args":["it's", "a \"quoted\\\\ word\"", "$HOME"]}  `: {Name: "j2", Stdin: true,
			Spec: []byte(`{"args":["it's", "a \"quoted\\\\ word\"", "$HOME"]}`)},
	} {
		cmds, err := parseCommands([]byte(in), containerGrammar)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if got := cmds[0].arg; !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n got  %+v\n want %+v", in, got, want)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"exec", "usage"},
		{"exec sh1", "empty argv"},
		{"exec sh1 --", "empty argv"},
		{"exec sh1 --stdin", "empty argv"},
		{"exec -x -- true", "invalid process name"},
		{"exec ../x -- true", "invalid process name"},
		{"exec config.json -- true", "reserved"},
		{"exec x --bogus -- true", "unknown option"},
		{"exec x --cwd", "needs a value"},
		{"exec x --stdin=yes true", "takes no value"},
		{"exec x --user root true", "UID or UID:GID"},
		{"exec x --env NOVALUE true", "KEY=VALUE"},
		{"exec x --cwd rel true", "absolute"},
		{`exec x {"args":`, "not one JSON object"},
		{`exec x {"args":["a"]} trailing`, "not one JSON object"},
		{`exec x {"bogus":1}`, "unknown field"},
		{`exec x --tty {"args":["a"]}`, "only --stdin"},
		{`exec x {"args":[]}`, "empty args"},
	} {
		_, err := parseCommands([]byte(c.in), containerGrammar)
		if err == nil || runtime.KindOf(err) != runtime.KindInvalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v; want EINVAL containing %q", c.in, err, c.msg)
		}
	}
}

func TestParseProcess(t *testing.T) {
	for in, want := range map[string]parsed{
		"kill":          {verb: "kill", arg: killArgs{signal: syscall.SIGTERM}},
		"kill -9":       {verb: "kill", arg: killArgs{signal: syscall.SIGKILL}},
		"kill INT":      {verb: "kill", arg: killArgs{signal: syscall.SIGINT}},
		"close-stdin":   {verb: "close-stdin", arg: noArgs{}},
		"resize 100 40": {verb: "resize", arg: winSize{cols: 100, rows: 40}},
	} {
		cmds, err := parseCommands([]byte(in), processGrammar)
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		got := cmds[0]
		got.text = ""
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q = %+v, want %+v", in, got, want)
		}
	}
	for _, c := range []struct{ in, msg string }{
		{"kill --all", "unknown option"},
		{"kill TERM KILL", "unexpected argument"},
		{"close-stdin now", "unexpected argument"},
		{"resize", "usage"},
		{"resize 80", "usage"},
		{"resize 80 24 1", "usage"},
		{"resize 0 24", "from 1 to 65535"},
		{"resize 80 65536", "from 1 to 65535"},
		{"resize -1 24", "unknown option"},
		{"resize x 24", "from 1 to 65535"},
		{"pause", "unknown verb"},
		{"exec x -- true", "unknown verb"},
	} {
		_, err := parseCommands([]byte(c.in), processGrammar)
		if err == nil || runtime.KindOf(err) != runtime.KindInvalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%q: %v; want EINVAL containing %q", c.in, err, c.msg)
		}
	}
}

func TestErrnoName(t *testing.T) {
	for e, want := range map[syscall.Errno]string{
		syscall.EINVAL: "EINVAL", syscall.ENOENT: "ENOENT", syscall.EEXIST: "EEXIST", syscall.EBUSY: "EBUSY",
		syscall.EFBIG: "EFBIG", syscall.EIO: "EIO", syscall.EACCES: "EACCES", syscall.EPIPE: "EPIPE",
		syscall.ENOTTY: "ENOTTY", syscall.EAGAIN: "EAGAIN", syscall.EINTR: "EINTR", 9999: "errno 9999",
	} {
		if got := errnoName(fuse.Errno(e)); got != want {
			t.Errorf("errnoName(%d) = %q, want %q", int(e), got, want)
		}
	}
}
