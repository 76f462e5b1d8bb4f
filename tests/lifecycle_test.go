package tests

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ---------------------------------------------------------------------------
// Checks shared by the lifecycle tests

// checkPids requires ID/pids to list host pids, one a line, ascending,
// including want (init, when not 0), each still running in init's cgroup
// unless it has exited since (the demo's date and sleep are short-lived).
func checkPids(t *testing.T, d *daemon, id string, want int) []int {
	t.Helper()
	s := d.read(id, "pids")
	var pids []int
	for _, l := range lines(s) {
		p, err := strconv.Atoi(l)
		if err != nil || p <= 0 {
			t.Fatalf("%s/pids: line %q is not a pid\n%s", id, l, s)
		}
		pids = append(pids, p)
	}
	if want != 0 {
		initCg := pidsCgroup(want)
		if initCg == "" {
			t.Errorf("init %d has no pids cgroup (is it alive?)", want)
		}
		for _, p := range pids {
			if cg := pidsCgroup(p); cg != "" && cg != initCg {
				t.Errorf("%s/pids: %d is in the pids cgroup %q, init %d in %q", id, p, cg, want, initCg)
			}
		}
	}
	if len(pids) == 0 {
		t.Fatalf("%s/pids is empty while the container runs", id)
	}
	if !slices.IsSorted(pids) {
		t.Errorf("%s/pids is not ascending: %v", id, pids)
	}
	if want != 0 && !slices.Contains(pids, want) {
		t.Errorf("%s/pids = %v, does not hold init's pid %d", id, pids, want)
	}
	return pids
}

func strField(t *testing.T, st map[string]any, key string) string {
	t.Helper()
	v, ok := st[key]
	if !ok {
		t.Errorf("status: no field %q in %v", key, st)
		return ""
	}
	s, ok := v.(string)
	if !ok {
		t.Errorf("status: %q = %#v, want a string", key, v)
	}
	return s
}

func numField(t *testing.T, st map[string]any, key string) (float64, bool) {
	t.Helper()
	v, ok := st[key]
	if !ok {
		t.Errorf("status: no field %q in %v", key, st)
		return 0, false
	}
	n, ok := v.(float64)
	if !ok {
		t.Errorf("status: %q = %#v, want a number", key, v)
	}
	return n, ok
}

func timeField(t *testing.T, st map[string]any, key string) time.Time {
	t.Helper()
	s := strField(t, st, key)
	if s == "" {
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("status: %q = %q is not an RFC 3339 time: %v", key, s, err)
	}
	return tm
}

// checkStatus checks the documented fields of a status object for a
// container in state, with init pid (0 once stopped) and, when stopped,
// exit status exit (-1: unknown).
func checkStatus(t *testing.T, st map[string]any, id, state, bundle string, pid int, exit int) {
	t.Helper()
	if got := strField(t, st, "id"); got != id {
		t.Errorf("status.id = %q, want %q", got, id)
	}
	if got := strField(t, st, "state"); got != state {
		t.Errorf("status.state = %q, want %q", got, state)
	}
	if n, ok := numField(t, st, "pid"); ok && int(n) != pid {
		t.Errorf("status.pid = %v, want %d", n, pid)
	}
	if got := strField(t, st, "bundle"); got != bundle {
		t.Errorf("status.bundle = %q, want %q", got, bundle)
	}
	if got := strField(t, st, "rootfs"); got != filepath.Join(bundle, "rootfs") {
		t.Errorf("status.rootfs = %q, want %q", got, filepath.Join(bundle, "rootfs"))
	}
	if got := strField(t, st, "runtime"); got != "runc" {
		t.Errorf("status.runtime = %q, want runc", got)
	}
	if rp := strField(t, st, "runtime_path"); !filepath.IsAbs(rp) {
		t.Errorf("status.runtime_path = %q, want an absolute path", rp)
	} else if _, err := os.Stat(rp); err != nil {
		t.Errorf("status.runtime_path: %v", err)
	}
	if v, ok := st["runtime_args"]; ok && v != nil {
		if _, ok := v.([]any); !ok {
			t.Errorf("status.runtime_args = %#v, want an array", v)
		}
	}
	if got := strField(t, st, "oci_version"); got == "" {
		t.Errorf("status.oci_version is empty")
	}
	created := timeField(t, st, "created")
	_, hasStarted := st["started"]
	switch state {
	case "created":
		if hasStarted {
			t.Errorf("status.started = %v in state created, want it absent", st["started"])
		}
	default:
		if !hasStarted {
			t.Errorf("status: no started time in state %s", state)
		} else if started := timeField(t, st, "started"); started.Before(created) {
			t.Errorf("status.started %v before created %v", started, created)
		}
	}
	_, hasExited := st["exited"]
	es, hasExit := st["exit_status"]
	if state == "stopped" {
		if !hasExited {
			t.Errorf("status: no exited time once stopped")
		}
		if !hasExit {
			t.Errorf("status: no exit_status once stopped")
		} else if exit >= 0 {
			if n, ok := es.(float64); !ok || int(n) != exit {
				t.Errorf("status.exit_status = %#v, want %d", es, exit)
			}
		} else if es != nil {
			t.Errorf("status.exit_status = %#v, want null (unknown)", es)
		}
	} else {
		if hasExited {
			t.Errorf("status.exited = %v in state %s, want it absent", st["exited"], state)
		}
		if hasExit {
			t.Errorf("status.exit_status = %v in state %s, want it absent", es, state)
		}
	}
	if v, ok := st["labels"]; ok && v != nil {
		if _, ok := v.(map[string]any); !ok {
			t.Errorf("status.labels = %#v, want an object", v)
		}
	}
	if v, ok := st["annotations"]; ok && v != nil {
		if _, ok := v.(map[string]any); !ok {
			t.Errorf("status.annotations = %#v, want an object", v)
		}
	}
}

// checkStopped checks every file of a stopped container whose init exited
// with exit.
func checkStopped(t *testing.T, d *daemon, id, bundle string, exit int) {
	t.Helper()
	if got := d.readTrim(id, "state"); got != "stopped" {
		t.Errorf("%s/state = %q, want stopped", id, got)
	}
	if got := d.readTrim(id, "processes", "init", "exit"); got != strconv.Itoa(exit) {
		t.Errorf("%s/processes/init/exit = %q, want %d", id, got, exit)
	}
	if got := d.readTrim(id, "processes", "init", "state"); got != "exited" {
		t.Errorf("%s/processes/init/state = %q, want exited", id, got)
	}
	if got := d.read(id, "pid"); got != "" {
		t.Errorf("%s/pid = %q once stopped, want empty", id, got)
	}
	if got := d.read(id, "pids"); got != "" {
		t.Errorf("%s/pids = %q once stopped, want empty", id, got)
	}
	checkStatus(t, d.status(id), id, "stopped", bundle, 0, exit)
}

// checkGone requires a deleted container to be gone from the mount, the
// state dir and runc.
func checkGone(t *testing.T, d *daemon, id string) {
	t.Helper()
	if slices.Contains(d.containers(), id) {
		t.Errorf("%s still listed in %s after delete", id, d.mnt)
	}
	if _, err := d.tryRead(id, "state"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("read %s/state after delete: %v, want ENOENT", id, err)
	}
	waitFor(t, id+" to leave the state dir", func() (bool, string) {
		_, err := os.Stat(filepath.Join(d.state, id))
		return os.IsNotExist(err), fmt.Sprint(err)
	})
	if slices.Contains(d.runcIDs(), id) {
		t.Errorf("runc still lists %s after delete", id)
	}
}

// ---------------------------------------------------------------------------
// The user session of the issue

// TestSessionGo drives the session of the issue from Go with os.ReadFile
// and os.WriteFile.
func TestSessionGo(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("demo")

	if err := d.write("run "+id+" "+b+"\n", "ctl"); err != nil {
		t.Fatalf("write run: %v\n%s", err, d.read("ctl"))
	}
	names := d.readDir()
	wantLs := []string{"ctl", "events", "images", "ps", "version", id}
	slices.Sort(wantLs)
	if !reflect.DeepEqual(names, wantLs) {
		t.Errorf("ls %s = %v, want %v", d.mnt, names, wantLs)
	}
	if got := d.containers(); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("container dirs = %v, want [%s]", got, id)
	}
	if got := d.readTrim(id, "state"); got != "running" {
		t.Fatalf("state = %q, want running", got)
	}
	pid := d.initPid(id)
	pf, _, err := readPidFile(filepath.Join(d.state, id, "init", "pid"))
	if err != nil {
		t.Errorf("state dir pid file: %v", err)
	} else if pf != pid {
		t.Errorf("%s/pid = %d, state dir's init/pid says %d", id, pid, pf)
	}
	checkPids(t, d, id, pid)
	if got := d.readTrim(id, "processes", "init", "pid"); got != strconv.Itoa(pid) {
		t.Errorf("processes/init/pid = %q, want %d", got, pid)
	}
	if got := d.readTrim(id, "processes", "init", "state"); got != "running" {
		t.Errorf("processes/init/state = %q, want running", got)
	}
	if got := d.read(id, "processes", "init", "exit"); got != "" {
		t.Errorf("processes/init/exit = %q while running, want empty", got)
	}
	checkStatus(t, d.status(id), id, "running", b, pid, 0)

	d.mustWrite("pause\n", id, "ctl")
	if got := d.readTrim(id, "state"); got != "paused" {
		t.Errorf("state after pause = %q, want paused", got)
	}
	if fs := freezerState(pid); fs != "FROZEN" {
		t.Errorf("freezer state after pause = %q, want FROZEN", fs)
	}
	checkStatus(t, d.status(id), id, "paused", b, pid, 0)

	d.mustWrite("resume\n", id, "ctl")
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("state after resume = %q, want running", got)
	}
	if fs := freezerState(pid); fs != "THAWED" {
		t.Errorf("freezer state after resume = %q, want THAWED", fs)
	}

	d.waitDemoReady(id)
	d.mustWrite("kill TERM\n", id, "ctl")
	d.waitContent("143", id, "processes", "init", "exit")
	d.waitState(id, "stopped")
	checkStopped(t, d, id, b, 143)
	if processAlive(pid, 0) {
		t.Errorf("init pid %d still alive once stopped", pid)
	}

	if _, err := within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(d.path(id)) }); err != nil {
		t.Fatalf("rmdir %s: %v", id, err)
	}
	checkGone(t, d, id)

	if err := d.write("pause\n", "nosuch", "ctl"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("write pause to nosuch/ctl: %v, want ENOENT", err)
	}
	if err := d.write("run -x /b\n", "ctl"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf(`write "run -x /b": %v, want EINVAL`, err)
	}
	fresh := d.read("ctl")
	if !strings.Contains(fresh, "last error:") || !strings.Contains(fresh, "EINVAL") {
		t.Errorf("fresh read of ctl after a bad run does not show the EINVAL error:\n%s", fresh)
	}
	if got := d.containers(); len(got) != 0 {
		t.Errorf("container dirs at the end = %v, want none", got)
	}
}

// TestSessionShell drives the same session with sh -c, cat, echo, ls and
// rmdir, as the issue shows it.
func TestSessionShell(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("demo")
	env := []string{"ID=" + id, "B=" + b}

	d.mustSh(`echo "run $ID $B" > $MNT/ctl`, env...)
	ls := strings.Fields(d.mustSh(`ls $MNT`, env...))
	for _, want := range []string{"ctl", "version", id} {
		if !slices.Contains(ls, want) {
			t.Errorf("ls $MNT = %v, want %s in it", ls, want)
		}
	}
	if got := d.mustSh(`cat $MNT/$ID/state`, env...); got != "running\n" {
		t.Fatalf("cat state = %q, want running", got)
	}
	pids := lines(d.mustSh(`cat $MNT/$ID/pids`, env...))
	if len(pids) == 0 {
		t.Errorf("cat pids: empty")
	}
	for _, p := range pids {
		if n, err := strconv.Atoi(p); err != nil || n <= 0 {
			t.Errorf("cat pids: %q is not a pid", p)
		}
	}
	pid := d.mustSh(`cat $MNT/$ID/pid`, env...)
	if !slices.Contains(pids, strings.TrimSpace(pid)) {
		t.Errorf("cat pids = %v, does not hold cat pid = %q", pids, pid)
	}
	st := d.mustSh(`cat $MNT/$ID/status`, env...)
	var m map[string]any
	if err := json.Unmarshal([]byte(st), &m); err != nil {
		t.Errorf("cat status: not JSON: %v\n%s", err, st)
	}
	if got := d.mustSh(`echo pause > $MNT/$ID/ctl && cat $MNT/$ID/state`, env...); got != "paused\n" {
		t.Errorf("echo pause && cat state = %q, want paused", got)
	}
	if got := d.mustSh(`echo resume > $MNT/$ID/ctl && cat $MNT/$ID/state`, env...); got != "running\n" {
		t.Errorf("echo resume && cat state = %q, want running", got)
	}
	d.waitDemoReady(id)
	d.mustSh(`echo "kill TERM" > $MNT/$ID/ctl`, env...)
	waitFor(t, "cat exit to print 143", func() (bool, string) {
		r := d.sh(`cat $MNT/$ID/processes/init/exit`, env...)
		return r.code == 0 && r.stdout == "143\n", r.String()
	})
	if got := d.mustSh(`cat $MNT/$ID/state`, env...); got != "stopped\n" {
		t.Errorf("cat state after exit = %q, want stopped", got)
	}
	d.mustSh(`rmdir $MNT/$ID`, env...)
	if ls := strings.Fields(d.mustSh(`ls $MNT`, env...)); slices.Contains(ls, id) {
		t.Errorf("ls $MNT after rmdir = %v, still has %s", ls, id)
	}

	// dash says "Directory nonexistent" for ENOENT on a redirection, bash
	// "No such file or directory".
	r := d.sh(`echo "pause" > $MNT/nosuch/ctl`, env...)
	if r.code == 0 || !(strings.Contains(r.stderr, "No such file or directory") || strings.Contains(r.stderr, "Directory nonexistent")) {
		t.Errorf(`echo pause > $MNT/nosuch/ctl: %s, want a failure "No such file or directory"`, r)
	}
	r = d.sh(`echo "run -x /b" > $MNT/ctl || cat $MNT/ctl`, env...)
	if r.code != 0 {
		t.Errorf("cat $MNT/ctl after the failed write: %s", r)
	}
	if r.stderr == "" {
		t.Errorf(`echo "run -x /b" > $MNT/ctl: no error on stderr: %s`, r)
	}
	if !strings.Contains(r.stdout, "EINVAL") || !strings.Contains(r.stdout, "last error:") {
		t.Errorf("cat $MNT/ctl after the failed write does not tell the EINVAL error:\n%s", r.stdout)
	}
	// dash's echo reports every write error as "I/O error"; bash names the
	// errno, so the user sees EINVAL for what it is.
	if _, err := exec.LookPath("bash"); err == nil {
		r = d.bash(`echo "run -x /b" > $MNT/ctl`, env...)
		if r.code == 0 || !strings.Contains(r.stderr, "Invalid argument") {
			t.Errorf(`bash: echo "run -x /b" > $MNT/ctl: %s, want "Invalid argument"`, r)
		}
		r = d.bash(`echo "pause" > $MNT/nosuch/ctl`, env...)
		if r.code == 0 || !strings.Contains(r.stderr, "No such file or directory") {
			t.Errorf(`bash: echo pause > $MNT/nosuch/ctl: %s, want "No such file or directory"`, r)
		}
	}
}

// TestVersion checks the version file.
func TestVersion(t *testing.T) {
	d := startDaemon(t)
	v := d.read("version")
	ls := lines(v)
	if len(ls) < 2 || !strings.HasPrefix(ls[0], "ctrfs ") {
		t.Fatalf("version = %q, want \"ctrfs VERSION\\nruntime runc VERSION\\n\"", v)
	}
	out, err := exec.Command("runc", "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(lines(string(out))[0]) // runc version 1.1.5+ds1
	if want := "runtime runc " + f[len(f)-1]; ls[1] != want {
		t.Errorf("version line 2 = %q, want %q", ls[1], want)
	}
}

// ---------------------------------------------------------------------------
// More of the lifecycle

// TestCreateStart checks create (state created, init waiting) then start.
func TestCreateStart(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("cs")

	d.mustCtl("create " + id + " " + b + "\n")
	if got := d.readTrim(id, "state"); got != "created" {
		t.Fatalf("state after create = %q, want created", got)
	}
	pid := d.initPid(id)
	if got := d.readTrim(id, "processes", "init", "state"); got != "running" {
		t.Errorf("processes/init/state of a created container = %q, want running", got)
	}
	if got := d.read(id, "processes", "init", "exit"); got != "" {
		t.Errorf("processes/init/exit of a created container = %q, want empty", got)
	}
	checkStatus(t, d.status(id), id, "created", b, pid, 0)
	if res, err := d.ctl("pause\n", id); !errors.Is(err, syscall.EBUSY) || !strings.Contains(res, "EBUSY") {
		t.Errorf("pause of a created container: %v, result %q; want EBUSY", err, res)
	}

	res := d.mustCtl("start\n", id)
	if !strings.HasPrefix(res, "ok: start") {
		t.Errorf("result of start = %q, want \"ok: start\"", res)
	}
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("state after start = %q, want running", got)
	}
	if got := d.initPid(id); got != pid {
		t.Errorf("pid after start = %d, was %d at create", got, pid)
	}
	checkPids(t, d, id, pid)
	checkStatus(t, d.status(id), id, "running", b, pid, 0)

	res, err := d.ctl("start\n", id)
	if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("start of a running container: %v, want EBUSY", err)
	}
	if !strings.HasPrefix(res, "error: start") || !strings.Contains(res, "EBUSY") {
		t.Errorf("result of start of a running container = %q, want \"error: start: ... (EBUSY)\"", res)
	}
	d.forceDelete(id)
	checkGone(t, d, id)
	if processAlive(pid, 0) {
		t.Errorf("init %d still alive after delete --force", pid)
	}
}

// TestKillSignals checks kill with signal names, numbers, the default, and
// --all, and the exit status each gives.
func TestKillSignals(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	for _, tc := range []struct {
		cmd  string
		exit int
	}{
		{"kill KILL", 137},
		{"kill 9", 137},
		{"kill -9", 137},
		{"kill SIGKILL", 137},
		{"kill sigkill", 137},
		{"kill", 143},
		{"kill 15", 143},
		{"kill term", 143},
		{"kill --all", 143},
		{"kill KILL --all", 137},
	} {
		t.Run(strings.ReplaceAll(tc.cmd, " ", "_"), func(t *testing.T) {
			d := d.on(t)
			id := newID("kill")
			d.run(id, b)
			pid := d.initPid(id)
			res := d.mustCtl(tc.cmd+"\n", id)
			if !strings.HasPrefix(res, "ok: kill") {
				t.Errorf("result of %q = %q, want \"ok: kill...\"", tc.cmd, res)
			}
			d.waitContent(strconv.Itoa(tc.exit), id, "processes", "init", "exit")
			d.waitState(id, "stopped")
			checkStopped(t, d, id, b, tc.exit)
			if processAlive(pid, 0) {
				t.Errorf("init %d alive once stopped", pid)
			}
			if res, err := d.ctl(tc.cmd+"\n", id); !errors.Is(err, syscall.EBUSY) {
				t.Errorf("%q on a stopped container: %v (%q), want EBUSY", tc.cmd, err, res)
			}
			d.mustCtl("delete " + id + "\n")
			checkGone(t, d, id)
		})
	}
}

// TestLabelsAndFiles checks labels, bundle, runtime, config.json (a copy
// taken at create) and processes/init/spec.
func TestLabelsAndFiles(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", demoScript)
	id := newID("files")
	d.run(id, b, "--label b=2", "--label a=1", "--label a=3", `--label "c=hello world"`, "--label x.y/z=v=w")

	if got, want := d.read(id, "labels"), "a=3\nb=2\nc=hello world\nx.y/z=v=w\n"; got != want {
		t.Errorf("labels = %q, want %q", got, want)
	}
	st := d.status(id)
	wantLabels := map[string]any{"a": "3", "b": "2", "c": "hello world", "x.y/z": "v=w"}
	if !reflect.DeepEqual(st["labels"], wantLabels) {
		t.Errorf("status.labels = %#v, want %#v", st["labels"], wantLabels)
	}
	checkStatus(t, st, id, "running", b, d.initPid(id), 0)
	if got := strings.TrimSpace(d.read(id, "bundle")); got != b {
		t.Errorf("bundle = %q, want %q", got, b)
	}
	if got := strings.TrimSpace(d.read(id, "runtime")); got != "runc" {
		t.Errorf("runtime = %q, want runc", got)
	}

	orig, err := os.ReadFile(filepath.Join(b, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want, got any
	if err := json.Unmarshal(orig, &want); err != nil {
		t.Fatal(err)
	}
	cfg := d.read(id, "config.json")
	if err := json.Unmarshal([]byte(cfg), &got); err != nil {
		t.Fatalf("config.json is not JSON: %v\n%s", err, cfg)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config.json differs from the bundle's:\n%s", cfg)
	}
	var spec specs.Spec
	if err := json.Unmarshal(orig, &spec); err != nil {
		t.Fatal(err)
	}
	if v := strField(t, st, "oci_version"); v != spec.Version {
		t.Errorf("status.oci_version = %q, want %q", v, spec.Version)
	}

	// A later edit of the bundle does not change what config.json shows.
	edited := strings.Replace(string(orig), "while :", "while true", 1)
	if edited == string(orig) {
		t.Fatal("test bug: the edit changed nothing")
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if cfg2 := d.read(id, "config.json"); cfg2 != cfg {
		t.Errorf("config.json changed after an edit of the bundle:\n%s", cfg2)
	}

	ps := d.read(id, "processes", "init", "spec")
	var proc specs.Process
	if err := json.Unmarshal([]byte(ps), &proc); err != nil {
		t.Fatalf("processes/init/spec is not an OCI process: %v\n%s", err, ps)
	}
	if !reflect.DeepEqual(proc.Args, spec.Process.Args) {
		t.Errorf("processes/init/spec args = %q, want %q", proc.Args, spec.Process.Args)
	}
	d.forceDelete(id)
	checkGone(t, d, id)
}

// TestDelete checks delete and rmdir in every state.
func TestDelete(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)

	t.Run("running", func(t *testing.T) {
		d := d.on(t)
		id := newID("del")
		d.run(id, b)
		pid := d.initPid(id)
		res, err := d.ctl("delete " + id + "\n")
		if !errors.Is(err, syscall.EBUSY) || !strings.Contains(res, "EBUSY") {
			t.Errorf("delete of a running container: %v, result %q; want EBUSY", err, res)
		}
		_, err = within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(d.path(id)) })
		if !errors.Is(err, syscall.EBUSY) {
			t.Errorf("rmdir of a running container: %v, want EBUSY", err)
		}
		if fresh := d.read(id, "ctl"); !strings.Contains(fresh, "EBUSY") {
			t.Logf("note: fresh read of %s/ctl after a failed rmdir does not name EBUSY:\n%s", id, fresh)
		}
		if got := d.readTrim(id, "state"); got != "running" {
			t.Errorf("state after refused deletes = %q, want running", got)
		}
		res = d.mustCtl("delete " + id + " --force\n")
		if !strings.HasPrefix(res, "ok: delete") {
			t.Errorf("result of delete --force = %q, want \"ok: delete...\"", res)
		}
		checkGone(t, d, id)
		if processAlive(pid, 0) {
			t.Errorf("init %d alive after delete --force", pid)
		}
	})

	t.Run("paused", func(t *testing.T) {
		d := d.on(t)
		id := newID("del")
		d.run(id, b)
		pid := d.initPid(id)
		d.mustCtl("pause\n", id)
		if _, err := d.ctl("delete\n", id); !errors.Is(err, syscall.EBUSY) {
			t.Errorf("delete of a paused container: %v, want EBUSY", err)
		}
		_, err := within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(d.path(id)) })
		if !errors.Is(err, syscall.EBUSY) {
			t.Errorf("rmdir of a paused container: %v, want EBUSY", err)
		}
		// delete --force through the container's own ctl.
		if res, err := d.ctl("delete --force\n", id); err != nil {
			t.Fatalf("delete --force on %s/ctl: %v (%q)", id, err, res)
		}
		checkGone(t, d, id)
		if processAlive(pid, 0) {
			t.Errorf("init %d alive after delete --force of a paused container", pid)
		}
	})

	t.Run("created", func(t *testing.T) {
		d := d.on(t)
		id := newID("del")
		d.mustCtl("create " + id + " " + b + "\n")
		pid := d.initPid(id)
		d.mustCtl("delete " + id + "\n")
		checkGone(t, d, id)
		waitFor(t, "the created init to be gone", func() (bool, string) {
			return !processAlive(pid, 0), fmt.Sprintf("pid %d alive", pid)
		})
	})

	t.Run("stopped_rmdir", func(t *testing.T) {
		d := d.on(t)
		id := newID("del")
		d.run(id, b)
		d.mustCtl("kill KILL\n", id)
		d.waitState(id, "stopped")
		if _, err := within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(d.path(id)) }); err != nil {
			t.Fatalf("rmdir of a stopped container: %v", err)
		}
		checkGone(t, d, id)
	})

	t.Run("nosuch", func(t *testing.T) {
		d := d.on(t)
		res, err := d.ctl("delete " + newID("nosuch") + "\n")
		if !errors.Is(err, syscall.ENOENT) || !strings.Contains(res, "ENOENT") {
			t.Errorf("delete of no such container: %v, result %q; want ENOENT", err, res)
		}
	})

	if got := d.containers(); len(got) != 0 {
		t.Errorf("containers left: %v", got)
	}
	if got := d.runcIDs(); len(got) != 0 {
		t.Errorf("runc containers left: %v", got)
	}
}

// TestMultiCommand checks several commands in one write, a final line
// without a newline, comments, parse-all-first and stop-at-first-failure.
func TestMultiCommand(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	a, c := newID("multi"), newID("multi")

	res := d.mustCtl("run " + a + " " + b + "\nrun " + c + " " + b + "\n")
	if ls := lines(res); len(ls) != 2 || !strings.HasPrefix(ls[0], "ok: run") || !strings.HasPrefix(ls[1], "ok: run") {
		t.Errorf("result of two runs in one write = %q, want two \"ok: run\" lines", res)
	}
	for _, id := range []string{a, c} {
		if got := d.readTrim(id, "state"); got != "running" {
			t.Errorf("%s/state = %q, want running", id, got)
		}
	}

	res = d.mustCtl("pause\nresume\npause", a) // final line without newline
	if ls := lines(res); len(ls) != 3 || ls[0] != "ok: pause" || ls[1] != "ok: resume" || ls[2] != "ok: pause" {
		t.Errorf("result of pause,resume,pause = %q, want ok: pause / ok: resume / ok: pause", res)
	}
	if got := d.readTrim(a, "state"); got != "paused" {
		t.Errorf("state after pause,resume,pause = %q, want paused", got)
	}

	res = d.mustCtl("# a comment\n\nresume\n\n", a)
	if ls := lines(res); len(ls) != 1 || ls[0] != "ok: resume" {
		t.Errorf("result of a comment, empty lines and resume = %q, want ok: resume", res)
	}
	if got := d.readTrim(a, "state"); got != "running" {
		t.Errorf("state = %q, want running", got)
	}

	// The whole write is parsed before anything runs.
	res, err := d.ctl("pause\nfrobnicate\n", a)
	if !errors.Is(err, syscall.EINVAL) || !strings.Contains(res, "EINVAL") {
		t.Errorf("pause + unknown verb: %v, result %q; want EINVAL", err, res)
	}
	if got := d.readTrim(a, "state"); got != "running" {
		t.Errorf("state after a write with a bad line = %q, want running (nothing runs)", got)
	}

	// The first failure stops the rest.
	res, err = d.ctl("pause\npause\nresume\n", a)
	if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("pause,pause,resume: %v, want EBUSY", err)
	}
	ls := lines(res)
	if len(ls) != 3 || ls[0] != "ok: pause" || !strings.HasPrefix(ls[1], "error: pause") ||
		!strings.Contains(ls[1], "EBUSY") || !strings.HasPrefix(ls[2], "skipped: resume") {
		t.Errorf("result of pause,pause,resume = %q, want ok: pause / error: pause: ... (EBUSY) / skipped: resume", res)
	}
	if got := d.readTrim(a, "state"); got != "paused" {
		t.Errorf("state after pause,pause,resume = %q, want paused", got)
	}

	// From a shell: printf without a trailing newline.
	env := []string{"ID=" + a}
	if got := d.mustSh(`printf resume > $MNT/$ID/ctl && cat $MNT/$ID/state`, env...); got != "running\n" {
		t.Errorf("printf resume (no newline): state %q, want running", got)
	}
	if got := d.mustSh(`printf 'pause\nresume\npause' > $MNT/$ID/ctl && cat $MNT/$ID/state`, env...); got != "paused\n" {
		t.Errorf("printf 'pause\\nresume\\npause': state %q, want paused", got)
	}

	// Root ctl: the first delete fails (running), the second is skipped.
	res, err = d.ctl("delete " + c + "\ndelete " + a + " --force\n")
	if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("delete running + delete --force: %v, want EBUSY", err)
	}
	if ls := lines(res); len(ls) != 2 || !strings.HasPrefix(ls[1], "skipped: delete") {
		t.Errorf("result = %q, want error then skipped", res)
	}
	if got := d.containers(); len(got) != 2 {
		t.Errorf("containers after a failed batch = %v, want both", got)
	}
	d.mustCtl("delete " + a + " --force\ndelete " + c + " --force")
	checkGone(t, d, a)
	checkGone(t, d, c)
}

// TestResultSameFile checks that the result of a write is read from the same
// open file, and that a fresh read shows the verbs and the last error.
func TestResultSameFile(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("res")
	d.run(id, b)

	res := d.mustCtl("pause\n", id)
	if res != "ok: pause\n" {
		t.Errorf("result of pause = %q, want \"ok: pause\\n\"", res)
	}
	res = d.mustCtl("resume\n", id)
	if res != "ok: resume\n" {
		t.Errorf("result of resume = %q, want \"ok: resume\\n\"", res)
	}
	res, err := d.ctl("resume\n", id)
	if !errors.Is(err, syscall.EBUSY) {
		t.Errorf("resume of a running container: %v, want EBUSY", err)
	}
	if !strings.HasPrefix(res, "error: resume: ") || !strings.Contains(res, "(EBUSY)") || len(lines(res)) != 1 {
		t.Errorf("result of resume of a running container = %q, want one line \"error: resume: ... (EBUSY)\"", res)
	}
	fresh := d.read(id, "ctl")
	verbs, lastErr := "", ""
	for _, l := range lines(fresh) {
		if strings.HasPrefix(l, "verbs:") {
			verbs = l
		}
		if strings.HasPrefix(l, "last error:") {
			lastErr = l
		}
	}
	for _, v := range []string{"start", "pause", "resume", "kill", "delete"} {
		if !strings.Contains(verbs, v) {
			t.Errorf("fresh read of %s/ctl: verbs line %q lacks %s\n%s", id, verbs, v, fresh)
		}
	}
	if !strings.Contains(lastErr, "resume") || !strings.Contains(lastErr, "EBUSY") {
		t.Errorf("fresh read of %s/ctl: last error %q, want the resume EBUSY\n%s", id, lastErr, fresh)
	}
	root := d.read("ctl")
	for _, v := range []string{"verbs:", "create", "run", "delete"} {
		if !strings.Contains(root, v) {
			t.Errorf("fresh read of the root ctl lacks %q:\n%s", v, root)
		}
	}
	if strings.Contains(root, "resume") && strings.Contains(root, "EBUSY") {
		t.Errorf("the root ctl shows the container's last error:\n%s", root)
	}

	// The same from a shell, as the docs show it.
	env := []string{"ID=" + id}
	if got := d.mustSh(`exec 3<>$MNT/$ID/ctl; echo pause >&3; cat <&3`, env...); got != "ok: pause\n" {
		t.Errorf("exec 3<>ctl; echo pause >&3; cat <&3 = %q, want \"ok: pause\\n\"", got)
	}
	r := d.sh(`exec 3<>$MNT/$ID/ctl; echo pause >&3; cat <&3`, env...)
	if !strings.HasPrefix(r.stdout, "error: pause") || !strings.Contains(r.stdout, "EBUSY") || len(lines(r.stdout)) != 1 {
		t.Errorf("second pause from a shell: %s; want one line, the EBUSY error, from cat <&3", r)
	}
	if r.stderr == "" {
		t.Errorf("second pause from a shell: no error on stderr: %s", r)
	}
	if _, err := exec.LookPath("bash"); err == nil {
		r := d.bash(`exec 3<>$MNT/$ID/ctl; echo pause >&3; cat <&3`, env...)
		if !strings.Contains(r.stderr, "Device or resource busy") || len(lines(r.stdout)) != 1 {
			t.Errorf("second pause from bash: %s; want \"Device or resource busy\" and one error line", r)
		}
	}
	d.forceDelete(id)
}

// TestMissingPrerequisites starts ctrfs without runc, without fusermount3
// and with a runtime that does not exist: each must be a one-line error
// that names what to install, and nothing may be mounted.
func TestMissingPrerequisites(t *testing.T) {
	requireIntegration(t)
	dir := t.TempDir()
	onlyFuse := filepath.Join(dir, "path-fuse-only")
	if err := os.Mkdir(onlyFuse, 0o755); err != nil {
		t.Fatal(err)
	}
	fm, err := exec.LookPath("fusermount3")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fm, filepath.Join(onlyFuse, "fusermount3")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string // $PATH for the daemon
		args []string
		want []string // words the error must hold
	}{
		{"no runc", onlyFuse, nil, []string{"runc", "install"}},
		{"no fusermount3", filepath.Join(dir, "empty-path"), nil, []string{"fuse3", "install"}},
		{"runtime not found", os.Getenv("PATH"), []string{"--runtime", "/nonexistent/runc"}, []string{"/nonexistent/runc", "install"}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			mnt := filepath.Join(dir, "mnt-"+strings.ReplaceAll(tc.name, " ", "-"))
			state := filepath.Join(dir, "state-"+strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"mount", "--state-dir", state}, tc.args...)
			args = append(args, mnt)
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			cmd := exec.CommandContext(ctx, ctrfsBin, args...)
			cmd.Env = append(os.Environ(), "PATH="+tc.path)
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if isMounted(mnt) {
				exec.Command("umount", "-l", mnt).Run()
				t.Fatalf("ctrfs mounted %s despite a missing prerequisite", mnt)
			}
			if ctx.Err() != nil {
				t.Fatalf("ctrfs still running after %v with a missing prerequisite", waitTimeout)
			}
			if err == nil {
				t.Fatalf("ctrfs exited 0 with a missing prerequisite; stderr %q", stderr.String())
			}
			ls := lines(stderr.String())
			if len(ls) != 1 {
				t.Errorf("stderr = %q, want one line", stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr = %q, want it to name %q", stderr.String(), w)
				}
			}
		})
	}
}
