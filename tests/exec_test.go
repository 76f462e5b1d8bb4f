package tests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestExecSession is the session of issue 4, from a shell, each line
// asserted; the container's events show every exec and exit in order.
func TestExecSession(t *testing.T) {
	d := startDaemon(t)
	id := newID("web")
	d.run(id, demoBundle(t))
	ev := d.openEvents(id, "events")
	env := []string{"C=" + d.path(id)}
	sh := func(script string, more ...string) string {
		t.Helper()
		return d.mustSh(script, append(env, more...)...)
	}

	sh(`echo "exec sh1 -- sh -c 'echo hello; echo oops >&2; exit 3'" > $C/ctl`)
	if got := sh(`cat $C/processes/sh1/stdout.follow`); got != "hello\n" {
		t.Errorf("sh1 stdout = %q, want hello", got)
	}
	if got := sh(`cat $C/processes/sh1/stderr.follow`); got != "oops\n" {
		t.Errorf("sh1 stderr = %q, want oops", got)
	}
	// stdout.follow's EOF came once sh1 had exited: its status is there.
	if got := sh(`cat $C/processes/sh1/exit`); got != "3\n" {
		t.Errorf("sh1 exit = %q, want 3", got)
	}

	sh(`echo "exec cat1 --stdin -- cat" > $C/ctl`)
	shFollow := make(chan shResult, 1)
	go func() { shFollow <- d.sh(`cat $C/processes/cat1/stdout.follow`, env...) }()
	goFollow := d.follow(id, "processes", "cat1", "stdout.follow")
	sh(`echo ping > $C/processes/cat1/stdin`)
	goFollow.waitFor("ping\n")
	select {
	case r := <-shFollow:
		t.Fatalf("cat of cat1's stdout ended while cat1 runs: %s", r)
	default:
	}
	sh(`echo close-stdin > $C/processes/cat1/ctl`)
	if got := goFollow.eof(); got != "ping\n" {
		t.Errorf("cat1 stdout, followed from Go = %q, want ping", got)
	}
	select {
	case r := <-shFollow:
		if r.stdout != "ping\n" || r.code != 0 {
			t.Errorf("cat of cat1's stdout: %s, want ping then EOF", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("cat of cat1's stdout did not end after close-stdin")
	}
	d.waitExit(id, "cat1", "0")

	sh(`echo 'exec j1 {"args":["sh","-c","id -u"],"user":{"uid":1000,"gid":1000},"cwd":"/"}' > $C/ctl`)
	if got := sh(`cat $C/processes/j1/stdout.follow`); got != "1000\n" {
		t.Errorf("j1 stdout = %q, want 1000", got)
	}
	d.waitExit(id, "j1", "0")
	if got := sh(`cat $C/processes/j1/spec`); !strings.Contains(got, `"uid":1000`) || !strings.Contains(got, `"cwd":"/"`) {
		t.Errorf("j1 spec = %s", got)
	}

	// The issue's `sleep 1; stty size` depends on the resize coming within
	// the second; this one shows the starting size (80x24), waits for the
	// resize to reach it, shows the new size and stays up.
	sh(`echo "$T1" > $C/ctl`, `T1=exec t1 --tty -- sh -c 'stty size; until [ "$(stty size)" = "40 100" ]; do sleep 0.05; done; stty size; exec sleep 1000'`)
	t1 := d.follow(id, "processes", "t1", "stdout.follow")
	t1.waitFor("24 80\r\n")
	sh(`echo "resize 100 40" > $C/processes/t1/ctl`)
	t1.waitFor("24 80\r\n40 100\r\n")
	sh(`echo "kill KILL" > $C/processes/t1/ctl`)
	d.waitExit(id, "t1", "137")
	if got := t1.eof(); got != "24 80\r\n40 100\r\n" {
		t.Errorf("t1 stdout = %q", got)
	}
	if got := d.read(id, "processes", "t1", "stderr"); got != "" {
		t.Errorf("t1 (a terminal) stderr = %q, want empty", got)
	}

	if got := d.readDir(id, "processes"); !reflect.DeepEqual(got, []string{"cat1", "init", "j1", "sh1", "t1"}) {
		t.Errorf("processes/ = %v", got)
	}
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("container state = %q after its execs, want running", got)
	}
	for _, w := range []struct {
		name   string
		status int
	}{{"sh1", 3}, {"cat1", 0}, {"j1", 0}, {"t1", 137}} {
		es := ev.until(id, "exit")
		if len(es) != 2 || es[0].Type != "exec" || es[0].Process != w.name || es[0].Pid <= 0 ||
			es[1].Process != w.name || es[1].Status == nil || *es[1].Status != w.status {
			t.Errorf("events of %s: %+v, want exec then exit %d", w.name, es, w.status)
		}
	}
}

// TestExecBadInput gives exec and the process files bad input: each must
// fail with its errno, the text readable from the same open file and from
// a fresh read of the ctl file, and nothing may be left behind.
func TestExecBadInput(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("xbad")
	d.run(id, b)
	created, paused, stopped := newID("xbad-c"), newID("xbad-p"), newID("xbad-s")
	d.mustCtl("create " + created + " " + b)
	d.run(paused, b)
	d.mustCtl("pause", paused)
	d.run(stopped, b)
	d.mustCtl("kill KILL", stopped)
	d.waitState(stopped, "stopped")

	d.mustExec(id, "done1 -- true")
	d.waitExit(id, "done1", "0")
	d.mustExec(id, "live -- sleep 1000")
	d.mustExec(id, "tty1 --tty -- sleep 1000")

	procsBefore := d.readDir(id, "processes")
	stateBefore := d.stateEntries()
	dirBefore := entries(t, filepath.Join(d.state, id))

	const (
		EINVAL = syscall.EINVAL
		EEXIST = syscall.EEXIST
		EBUSY  = syscall.EBUSY
		EIO    = syscall.EIO
		EPIPE  = syscall.EPIPE
		ENOTTY = syscall.ENOTTY
		ENOENT = syscall.ENOENT
	)
	ctlCases := []struct {
		name, target, input string
		errno               syscall.Errno
		text                string
	}{
		{"taken name", id, "exec live -- true", EEXIST, "already has a process"},
		{"name of an exited process", id, "exec done1 -- true", EEXIST, "already has a process"},
		{"init", id, "exec init -- true", EEXIST, "already has a process"},
		{"bad JSON", id, `exec j {"args":["true"`, EINVAL, "not one JSON object"},
		{"JSON not an object", id, `exec j {} {}`, EINVAL, "not one JSON object"},
		{"JSON unknown field", id, `exec j {"argz":["true"]}`, EINVAL, "unknown field"},
		{"JSON empty args", id, `exec j {"args":[]}`, EINVAL, "empty args"},
		{"JSON relative cwd", id, `exec j {"args":["true"],"cwd":"tmp"}`, EINVAL, "absolute"},
		{"JSON with --tty", id, `exec j --tty {"args":["true"]}`, EINVAL, "only --stdin"},
		{"empty argv", id, "exec x", EINVAL, "empty argv"},
		{"empty argv after --", id, "exec x --stdin --", EINVAL, "empty argv"},
		{"no name", id, "exec", EINVAL, "usage"},
		{"user name", id, "exec x --user root -- id", EINVAL, "UID or UID:GID"},
		{"user three parts", id, "exec x --user 1:2:3 -- id", EINVAL, "UID or UID:GID"},
		{"user negative", id, "exec x --user=-5 -- id", EINVAL, "UID or UID:GID"},
		{"user empty gid", id, "exec x --user 1000: -- id", EINVAL, "UID or UID:GID"},
		{"env without =", id, "exec x --env FOO -- true", EINVAL, "KEY=VALUE"},
		{"relative cwd", id, "exec x --cwd tmp -- true", EINVAL, "absolute"},
		{"unknown option", id, "exec x --privileged -- true", EINVAL, "unknown option"},
		{"bad name", id, "exec ../x -- true", EINVAL, "invalid process name"},
		{"dash name", id, "exec -x -- true", EINVAL, "invalid process name"},
		{"reserved name", id, "exec config.json -- true", EINVAL, "reserved"},
		{"no such command", id, "exec nocmd -- /no/such/command", EIO, "/no/such/command"},
		{"created container", created, "exec x -- true", EBUSY, "not running"},
		{"paused container", paused, "exec x -- true", EBUSY, "not running"},
		{"stopped container", stopped, "exec x -- true", EBUSY, "not running"},
		{"one bad line, nothing runs", id, "exec ok1 -- true\nexec x --user root -- id", EINVAL, "line 2"},

		{"resize non-tty", id + "/processes/live", "resize 80 24", ENOTTY, "no terminal"},
		{"resize init (no tty)", id + "/processes/init", "resize 80 24", ENOTTY, "no terminal"},
		{"resize 0", id + "/processes/tty1", "resize 0 24", EINVAL, "from 1 to 65535"},
		{"resize one number", id + "/processes/tty1", "resize 80", EINVAL, "usage"},
		{"resize exited", id + "/processes/done1", "resize 80 24", ENOTTY, "no terminal"},
		{"close-stdin without stdin", id + "/processes/live", "close-stdin", EPIPE, "no stdin"},
		{"kill exited", id + "/processes/done1", "kill", EBUSY, "has exited"},
		{"kill bad signal", id + "/processes/live", "kill FOO", EINVAL, "unknown signal"},
		{"kill --all", id + "/processes/live", "kill --all", EINVAL, "unknown option"},
		{"container verb on a process", id + "/processes/live", "pause", EINVAL, "unknown verb"},
	}
	for _, c := range ctlCases {
		t.Run(c.name, func(t *testing.T) {
			d := d.on(t)
			res, err := d.ctl(c.input, c.target)
			if !errors.Is(err, c.errno) {
				t.Fatalf("write %q: %v, want %v; result %q", c.input, err, c.errno, res)
			}
			if !strings.HasPrefix(res, "error: ") || !strings.Contains(res, c.text) || !strings.Contains(res, "("+errnoNames[c.errno]+")") {
				t.Errorf("result from the same file = %q, want an error naming %q and %s", res, c.text, errnoNames[c.errno])
			}
			if fresh := d.read(c.target, "ctl"); !strings.Contains(fresh, "last error: ") || !strings.Contains(fresh, c.text) {
				t.Errorf("fresh read of ctl = %q, want the last error", fresh)
			}
		})
	}

	// stdin of a process without one: EPIPE, the text from the same file
	// and from ctl.
	t.Run("stdin without stdin", func(t *testing.T) {
		d := d.on(t)
		res, err := transact(d.path(id, "processes", "live", "stdin"), []byte("ping\n"))
		if !errors.Is(err, EPIPE) || !strings.Contains(res, "no stdin") || !strings.Contains(res, "(EPIPE)") {
			t.Errorf("write to live/stdin: %v, result %q; want EPIPE and why", err, res)
		}
		if fresh := d.read(id, "processes", "live", "ctl"); !strings.Contains(fresh, "no stdin") {
			t.Errorf("live/ctl after it: %q", fresh)
		}
		r := d.bash(`echo ping > $C/processes/done1/stdin || cat $C/processes/done1/ctl`, "C="+d.path(id))
		if !strings.Contains(r.stderr, "Broken pipe") || !strings.Contains(r.stdout, "last error: stdin:") {
			t.Errorf("echo > stdin || cat ctl of an exited process: %s", r)
		}
	})
	t.Run("rmdir", func(t *testing.T) {
		d := d.on(t)
		for _, c := range []struct {
			name  string
			errno syscall.Errno
			text  string
		}{{"live", EBUSY, "is running"}, {"init", EBUSY, "lasts as long as"}, {"nosuch", ENOENT, ""}} {
			p := d.path(id, "processes", c.name)
			_, err := within(opTimeout, "rmdir "+p, func() (int, error) { return 0, os.Remove(p) })
			if !errors.Is(err, c.errno) {
				t.Errorf("rmdir %s: %v, want %v", c.name, err, c.errno)
			}
			if c.text != "" {
				if fresh := d.read(id, "processes", c.name, "ctl"); !strings.Contains(fresh, c.text) {
					t.Errorf("%s/ctl after rmdir = %q, want %q", c.name, fresh, c.text)
				}
			}
		}
	})
	t.Run("read-only files", func(t *testing.T) {
		d := d.on(t)
		for _, f := range []string{"stdout", "stderr", "exit", "pid", "spec", "wait", "state"} {
			if err := d.write("x", id, "processes", "live", f); !errors.Is(err, syscall.EACCES) {
				t.Errorf("write to %s: %v, want EACCES", f, err)
			}
		}
	})

	// Nothing was left behind.
	if got := d.readDir(id, "processes"); !reflect.DeepEqual(got, procsBefore) {
		t.Errorf("processes/ after bad input = %v, want %v", got, procsBefore)
	}
	if got := d.stateEntries(); !reflect.DeepEqual(got, stateBefore) {
		t.Errorf("state dir after bad input = %v, want %v", got, stateBefore)
	}
	if got := entries(t, filepath.Join(d.state, id)); !reflect.DeepEqual(got, dirBefore) {
		t.Errorf("%s's state dir after bad input = %v, want %v", id, got, dirBefore)
	}
	for _, c := range []string{created, paused, stopped} {
		if got := entries(t, filepath.Join(d.state, c)); !reflect.DeepEqual(got, []string{"config.json", "init", "state.json"}) {
			t.Errorf("%s's state dir = %v", c, got)
		}
	}
	if !d.alive() {
		t.Fatal("the daemon died")
	}
	if got := d.readTrim(id, "processes", "live", "state"); got != "running" {
		t.Errorf("live after all that: %q", got)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}

// TestExecRemove: an exited exec stays listed with its status until rmdir
// removes it; the name is free again afterwards, for a new process with
// new output.
func TestExecRemove(t *testing.T) {
	d := startDaemon(t)
	id := newID("xrm")
	d.run(id, demoBundle(t))
	d.mustExec(id, "once -- echo first")
	d.waitExit(id, "once", "0")
	time.Sleep(100 * time.Millisecond) // a finished exec stays: nothing removes it on its own
	if got := d.readDir(id, "processes"); !reflect.DeepEqual(got, []string{"init", "once"}) {
		t.Fatalf("processes/ = %v", got)
	}
	p := d.path(id, "processes", "once")
	if _, err := within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(p) }); err != nil {
		t.Fatalf("rmdir of an exited exec: %v", err)
	}
	if got := d.readDir(id, "processes"); !reflect.DeepEqual(got, []string{"init"}) {
		t.Errorf("processes/ after rmdir = %v", got)
	}
	if _, err := os.Stat(filepath.Join(d.state, id, "once")); !os.IsNotExist(err) {
		t.Errorf("state dir of the removed exec: %v", err)
	}
	if _, err := d.tryRead(id, "processes", "once", "exit"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("exit of a removed exec: %v, want ENOENT", err)
	}
	d.mustExec(id, "once -- echo second")
	d.waitExit(id, "once", "0")
	if got := d.read(id, "processes", "once", "stdout"); got != "second\n" {
		t.Errorf("stdout of the new process of a reused name = %q", got)
	}
	// Deleting the container removes the execs with it.
	d.mustExec(id, "long -- sleep 1000")
	d.forceDelete(id)
	if _, err := os.Stat(filepath.Join(d.state, id)); !os.IsNotExist(err) {
		t.Errorf("state dir after delete: %v", err)
	}
}

// TestConcurrentExecs runs 20 execs into one container at once: every one
// must run, under its own name, with its own exit status and output.
func TestConcurrentExecs(t *testing.T) {
	d := startDaemon(t)
	id := newID("xconc")
	d.run(id, demoBundle(t))
	const n = 20
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := d.ctl(fmt.Sprintf("exec p%d -- sh -c 'echo out %d; echo err %d >&2; exit %d'", i, i, i, i+100), id)
			if err != nil {
				errs[i] = fmt.Errorf("%v: %s", err, res)
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("exec p%d: %v", i, err)
		}
	}
	var want []string
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("p%d", i)
		want = append(want, name)
		d.waitExit(id, name, fmt.Sprint(i+100))
		if got := d.read(id, "processes", name, "stdout"); got != fmt.Sprintf("out %d\n", i) {
			t.Errorf("%s stdout = %q", name, got)
		}
		if got := d.read(id, "processes", name, "stderr"); got != fmt.Sprintf("err %d\n", i) {
			t.Errorf("%s stderr = %q", name, got)
		}
	}
	want = append(want, "init")
	sort.Strings(want)
	if got := d.readDir(id, "processes"); !reflect.DeepEqual(got, want) {
		t.Errorf("processes/ = %v", got)
	}
}
