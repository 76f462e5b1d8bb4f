package fsys

import (
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrfs/ctrfs/runtime"
)

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
	cmds, err := parseCommands([]byte("run web /b --label a=1 --label 'b=x y' --runtime-arg --debug --no-pivot\n# note\n\ndelete old --force"), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 {
		t.Fatalf("got %d commands, want 2", len(cmds))
	}
	req := cmds[0].create
	want := runtime.CreateRequest{ID: "web", Bundle: "/b", Start: true, NoPivot: true,
		Labels: map[string]string{"a": "1", "b": "x y"}, RuntimeArgs: []string{"--debug"}}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("create request = %+v, want %+v", req, want)
	}
	if cmds[1].verb != "delete" || cmds[1].id != "old" || !cmds[1].force {
		t.Errorf("delete = %+v", cmds[1])
	}
}

func TestParseContainer(t *testing.T) {
	for in, want := range map[string]command{
		"kill":              {verb: "kill", signal: syscall.SIGTERM},
		"kill KILL --all":   {verb: "kill", signal: syscall.SIGKILL, all: true},
		"kill sigusr1":      {verb: "kill", signal: syscall.SIGUSR1},
		"kill 9":            {verb: "kill", signal: syscall.SIGKILL},
		"kill -9":           {verb: "kill", signal: syscall.SIGKILL},
		"kill --all SIGHUP": {verb: "kill", signal: syscall.SIGHUP, all: true},
		"delete --force":    {verb: "delete", force: true},
		"pause":             {verb: "pause"},
	} {
		cmds, err := parseCommands([]byte(in), false)
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
		root bool
		kind runtime.Kind
		msg  string
	}{
		{"frobnicate", true, runtime.KindInvalid, "unknown verb"},
		{"run web", true, runtime.KindInvalid, "usage"},
		{"run web /b extra", true, runtime.KindInvalid, "usage"},
		{"run -x /b", true, runtime.KindInvalid, "unknown option"},
		{"run ../a /b", true, runtime.KindInvalid, "invalid container id"},
		{"run a/b /b", true, runtime.KindInvalid, "invalid container id"},
		{"run .a /b", true, runtime.KindInvalid, "invalid container id"},
		{"run " + strings.Repeat("a", 129) + " /b", true, runtime.KindInvalid, "invalid container id"},
		{"run web rel/path", true, runtime.KindInvalid, "absolute"},
		{"run web /b --label nokey", true, runtime.KindInvalid, "KEY=VALUE"},
		{"run web /b --runtime-arg --root=/x", true, runtime.KindInvalid, "itself"},
		{"run web /b --runtime-arg plain", true, runtime.KindInvalid, "--flag"},
		{"run web /b --label", true, runtime.KindInvalid, "needs a value"},
		{"delete", true, runtime.KindInvalid, "usage"},
		{"run 'web /b", true, runtime.KindInvalid, "unterminated"},
		{"pause\nfrobnicate", false, runtime.KindInvalid, "line 2"},
		{"kill FOO", false, runtime.KindInvalid, "unknown signal"},
		{"kill 0", false, runtime.KindInvalid, "out of range"},
		{"kill 65", false, runtime.KindInvalid, "out of range"},
		{"pause now", false, runtime.KindInvalid, "unexpected argument"},
		{"start --force", false, runtime.KindInvalid, "unknown option"},
		{"create web /b", false, runtime.KindInvalid, "unknown verb"},
		{"", false, runtime.KindInvalid, "no command"},
		{"\n# only a comment\n", false, runtime.KindInvalid, "no command"},
		{strings.Repeat("pause\n", maxCommandSize/6+1), false, runtime.KindTooBig, "too large"},
	} {
		_, err := parseCommands([]byte(c.in), c.root)
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
	if err != nil || !reflect.DeepEqual(cmd.checkpoint, want) {
		t.Errorf("checkpoint = %+v, %v", cmd.checkpoint, err)
	}
	if cmd, err := parseOne(t, "checkpoint cp1"); err != nil || !reflect.DeepEqual(cmd.checkpoint, runtime.CheckpointRequest{Name: "cp1"}) {
		t.Errorf("checkpoint cp1 = %+v, %v", cmd.checkpoint, err)
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
	cmds, err := parseCommands([]byte("create web2 /b --checkpoint cp2 --checkpoint-dir /srv/cp"), true)
	if err != nil || cmds[0].create.Checkpoint != "cp2" || cmds[0].create.CheckpointDir != "/srv/cp" {
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
		_, err := parseCommands([]byte(c.in), true)
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
	} {
		f.Add([]byte(seed), true)
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, root bool) {
		cmds, err := parseCommands(data, root)
		if err != nil {
			if runtime.KindOf(err) != runtime.KindInvalid && runtime.KindOf(err) != runtime.KindTooBig {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		for _, c := range cmds {
			switch c.verb {
			case "create", "run":
				if err := c.create.Check(); err != nil {
					t.Fatalf("accepted a bad create: %v", err)
				}
			case "delete":
				if root && runtime.CheckName("container id", c.id) != nil {
					t.Fatalf("accepted bad id %q", c.id)
				}
			case "kill":
				if c.signal < 1 || c.signal > maxSignal {
					t.Fatalf("accepted signal %d", c.signal)
				}
			case "update":
				if err := c.update.Check(); err != nil {
					t.Fatalf("accepted a bad update: %v", err)
				}
			case "checkpoint":
				if err := c.checkpoint.Check(); err != nil {
					t.Fatalf("accepted a bad checkpoint: %v", err)
				}
			case "start", "pause", "resume":
			default:
				t.Fatalf("accepted verb %q", c.verb)
			}
		}
	})
}
