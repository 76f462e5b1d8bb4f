package tests

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
)

var errnoNames = map[syscall.Errno]string{
	syscall.EINVAL: "EINVAL",
	syscall.ENOENT: "ENOENT",
	syscall.EEXIST: "EEXIST",
	syscall.EBUSY:  "EBUSY",
	syscall.EIO:    "EIO",
	syscall.EFBIG:  "EFBIG",
	syscall.EACCES: "EACCES",
	syscall.EPIPE:  "EPIPE",
	syscall.ENOTTY: "ENOTTY",
}

// TestBadInput writes a table of bad commands: each must fail with the
// documented errno, its text must be readable from the same open file and
// from a fresh read of ctl, and nothing may be left behind: no directory in
// the mount or the state dir, no runc container, no dead daemon.
func TestBadInput(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	running := newID("bad-running")
	stopped := newID("bad-stopped")
	// Cases that would end a container if the daemon got them wrong get a
	// container of their own, so that one bug does not hide the next.
	killTarget := newID("bad-kill")
	delTarget := newID("bad-del")
	live := []string{running, killTarget, delTarget}
	livePids := map[string]int{}
	for _, id := range live {
		d.run(id, b)
		livePids[id] = d.initPid(id)
	}
	d.run(stopped, b)
	d.mustCtl("kill KILL\n", stopped)
	d.waitState(stopped, "stopped")

	emptyBundle, err := os.MkdirTemp("", "ctrfs-e2e-empty-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(emptyBundle) })
	if err := os.Mkdir(filepath.Join(emptyBundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}

	// fresh returns an id never used, for commands that must fail.
	fresh := func() string { return newID("bad") }
	var (
		EINVAL = syscall.EINVAL
		ENOENT = syscall.ENOENT
		EEXIST = syscall.EEXIST
		EBUSY  = syscall.EBUSY
		EFBIG  = syscall.EFBIG
	)
	type tc struct {
		name  string
		dir   string // "" for the root ctl, else the container whose ctl
		input string
		errno syscall.Errno
	}
	cases := []tc{
		{"unknown verb", "", "frobnicate " + fresh() + " " + b, EINVAL},
		{"container verb on root", "", "pause", EINVAL},
		{"create without args", "", "create", EINVAL},
		{"run without args", "", "run\n", EINVAL},
		{"create without bundle", "", "create " + fresh(), EINVAL},
		{"delete without id", "", "delete", EINVAL},
		{"run extra arg", "", "run " + fresh() + " " + b + " extra", EINVAL},
		{"delete extra arg", "", "delete " + delTarget + " --force extra", EINVAL},
		{"run bad option", "", "run " + fresh() + " " + b + " --bogus", EINVAL},
		{"run label without value", "", "run " + fresh() + " " + b + " --label", EINVAL},
		{"run label bad key", "", "run " + fresh() + " " + b + " --label =v", EINVAL},
		{"run label without =", "", "run " + fresh() + " " + b + " --label novalue", EINVAL},
		{"runtime-arg --root", "", "run " + fresh() + " " + b + " --runtime-arg --root=/tmp/x", EINVAL},
		{"runtime-arg --log", "", "run " + fresh() + " " + b + " --runtime-arg --log=/tmp/x", EINVAL},
		{"runtime-arg without --", "", "run " + fresh() + " " + b + " --runtime-arg debug", EINVAL},
		{"bundle without config.json", "", "run " + fresh() + " " + emptyBundle, EINVAL},
		{"bundle that does not exist", "", "run " + fresh() + " /nonexistent-ctrfs-bundle", EINVAL},
		{"bundle is a file", "", "run " + fresh() + " " + filepath.Join(b, "config.json"), EINVAL},
		{"relative bundle", "", "run " + fresh() + " tests/demo", EINVAL},
		{"relative bundle dot", "", "create " + fresh() + " .", EINVAL},
		{"unbalanced double quote", "", `run "` + fresh() + " " + b, EINVAL},
		{"unbalanced single quote", "", "run " + fresh() + " '" + b, EINVAL},
		{"NUL byte", "", "run " + fresh() + "\x00x " + b, EINVAL},
		{"60 KiB id", "", "run " + strings.Repeat("a", 60<<10) + " " + b, EINVAL},
		{"one bad line stops the batch", "", "run " + fresh() + " " + b + "\nfrobnicate\n", EINVAL},
		{"1 MiB write", "", "run " + fresh() + " " + b + "\n" + strings.Repeat("x", 1<<20), EFBIG},
		{"64 KiB + 1 write", "", "#" + strings.Repeat("x", 64<<10), EFBIG},
		{"create taken id", "", "create " + running + " " + b, EEXIST},
		{"run taken id", "", "run " + running + " " + b, EEXIST},
		{"run id of a stopped container", "", "run " + stopped + " " + b, EEXIST},
		{"delete no such container", "", "delete " + fresh(), ENOENT},
		{"delete running", "", "delete " + delTarget, EBUSY},

		{"kill FOO", running, "kill FOO", EINVAL},
		{"kill SIGFOO", running, "kill SIGFOO", EINVAL},
		{"kill 0", running, "kill 0", EINVAL},
		{"kill 65", running, "kill 65", EINVAL},
		{"kill 99", running, "kill 99", EINVAL},
		{"kill -0", killTarget, "kill -0", EINVAL},
		{"kill -FOO", killTarget, "kill -FOO", EINVAL},
		{"kill extra arg", running, "kill TERM KILL", EINVAL},
		{"kill bad option", running, "kill TERM --bogus", EINVAL},
		{"container unknown verb", running, "frobnicate", EINVAL},
		{"root verb on container", running, "run x " + b, EINVAL},
		{"pause extra arg", running, "pause now", EINVAL},
		{"start extra arg", running, "start now", EINVAL},
		{"delete bad option", running, "delete --bogus", EINVAL},
		{"container unbalanced quote", running, `kill "TERM`, EINVAL},
		{"container 1 MiB write", running, strings.Repeat("pause\n", (1<<20)/6+1), EFBIG},
		{"start running", running, "start", EBUSY},
		{"resume running", running, "resume", EBUSY},
		{"delete running (container ctl)", delTarget, "delete", EBUSY},
		{"pause stopped", stopped, "pause", EBUSY},
		{"resume stopped", stopped, "resume", EBUSY},
		{"start stopped", stopped, "start", EBUSY},
		{"kill stopped", stopped, "kill KILL", EBUSY},

		{"update without args", running, "update", EINVAL},
		{"update unknown key", running, "update bogus=1", EINVAL},
		{"update without =", running, "update memory", EINVAL},
		{"update bad size", running, "update memory=12q", EINVAL},
		{"update negative size", running, "update memory=-5M", EINVAL},
		{"update key twice", running, "update pids=5 pids=6", EINVAL},
		{"update pids 0", running, "update pids=0", EINVAL},
		{"update shares out of range", running, "update cpu-shares=1", EINVAL},
		{"update swap below memory", running, "update memory=64M memory-swap=32M", EINVAL},
		{"update bad cpuset", running, "update cpuset-cpus=1-0", EINVAL},
		{"update offline cpu", running, "update cpuset-cpus=4095", EINVAL},
		{"update bad JSON", running, `update {"memory":`, EINVAL},
		{"update JSON unknown field", running, `update {"memroy":{"limit":1}}`, EINVAL},
		{"update JSON devices", running, `update {"devices":[{"allow":true,"access":"rwm"}]}`, EINVAL},
		{"update JSON and keys", running, `update pids=5 {"cpu":{"shares":2}}`, EINVAL},
		{"update JSON trailing text", running, `update {"pids":{"limit":5}} x`, EINVAL},
		{"update stopped", stopped, "update memory=64M", EBUSY},
		{"checkpoint without name", running, "checkpoint", EINVAL},
		{"checkpoint bad name", running, "checkpoint ../x", EINVAL},
		{"checkpoint flag as name", running, "checkpoint --tcp", EINVAL},
		{"checkpoint relative dir", running, "checkpoint cp --dir tmp", EINVAL},
		{"checkpoint bad empty-ns", running, "checkpoint cp --empty-ns pid", EINVAL},
		{"checkpoint stopped", stopped, "checkpoint cp", EBUSY},
		{"restore bad checkpoint name", "", "run " + fresh() + " " + b + " --checkpoint ../x", EINVAL},
		{"restore relative checkpoint dir", "", "run " + fresh() + " " + b + " --checkpoint cp --checkpoint-dir rel", EINVAL},
		{"checkpoint-dir without checkpoint", "", "create " + fresh() + " " + b + " --checkpoint-dir /tmp", EINVAL},
		{"restore no such checkpoint", "", "run " + fresh() + " " + b + " --checkpoint nosuch", ENOENT},
	}
	badIDs := []string{"-x", "--root", "../a", "a/b", ".a", "..", ".", "_a", strings.Repeat("a", 200), strings.Repeat("b", 129), `''`, `"a b"`, `'a$b'`, `a\;b`, "é"}
	for _, id := range badIDs {
		cases = append(cases,
			tc{"run bad id " + trunc(id), "", "run " + id + " " + b, EINVAL},
			tc{"create bad id " + trunc(id), "", "create " + id + " " + b, EINVAL},
			tc{"delete bad id " + trunc(id), "", "delete " + id, EINVAL},
		)
	}
	cases = append(cases, tc{"run empty id", "", "run '' " + b, EINVAL})

	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			d := d.on(t)
			var elem []string
			if c.dir != "" {
				elem = []string{c.dir}
			}
			path := d.path(append(elem, "ctl")...)
			res, err := transact(path, []byte(c.input))
			name := errnoNames[c.errno]
			if !errors.Is(err, c.errno) {
				t.Errorf("write %q: %v, want %s", trunc(c.input), err, name)
			}
			if !strings.Contains(res, "error:") || !strings.Contains(res, name) {
				t.Errorf("result read from the same file = %q, want an \"error:\" line naming %s", trunc(res), name)
			}
			checkResultLines(t, res)
			text, err := d.tryRead(append(elem, "ctl")...)
			if err != nil {
				t.Fatalf("fresh read of %s: %v", path, err)
			}
			if !strings.Contains(text, "last error:") || !strings.Contains(text, name) {
				t.Errorf("fresh read of %s does not show the last error (%s):\n%s", path, name, trunc(text))
			}
			if !d.alive() {
				t.Fatalf("ctrfs died on %q", trunc(c.input))
			}
		})
	}

	// Read-only files refuse to be opened for writing or truncated.
	roFiles := [][]string{
		{"version"},
		{running, "state"}, {running, "status"}, {running, "pid"}, {running, "pids"},
		{running, "labels"}, {running, "bundle"}, {running, "runtime"}, {running, "config.json"},
		{running, "stats"}, {stopped, "stats"},
		{running, "processes", "init", "pid"}, {running, "processes", "init", "state"},
		{running, "processes", "init", "exit"}, {running, "processes", "init", "spec"},
		{stopped, "state"},
	}
	for _, elem := range roFiles {
		t.Run("readonly_"+strings.Join(elem, "_"), func(t *testing.T) {
			d := d.on(t)
			p := d.path(elem...)
			for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC} {
				_, err := within(opTimeout, "open "+p, func() (int, error) {
					f, err := os.OpenFile(p, flag, 0)
					if err == nil {
						f.Close()
					}
					return 0, err
				})
				if !errors.Is(err, syscall.EACCES) {
					t.Errorf("open %s with flags %#x: %v, want EACCES", p, flag, err)
				}
			}
			_, err := within(opTimeout, "truncate "+p, func() (int, error) { return 0, os.Truncate(p, 0) })
			if !errors.Is(err, syscall.EACCES) {
				t.Errorf("truncate %s: %v, want EACCES", p, err)
			}
		})
	}
	r := d.sh(`echo running > $MNT/$ID/state`, "ID="+running)
	if r.code == 0 || !strings.Contains(r.stderr, "Permission denied") {
		t.Errorf("echo running > state: %s, want \"Permission denied\"", r)
	}
	if err := d.write("pause\n", "nosuch-"+running, "ctl"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("write to nosuch/ctl: %v, want ENOENT", err)
	}

	// Nothing was left behind, nothing was disturbed, and the daemon lives.
	if !d.alive() {
		t.Fatalf("ctrfs is dead after the bad input table: %v", d.exitErr())
	}
	want := append([]string{stopped}, live...)
	sort.Strings(want)
	if got := d.containers(); !reflect.DeepEqual(got, want) {
		t.Errorf("container dirs after the bad input table = %v, want %v", got, want)
	}
	wantLs := append([]string{"ctl", "events", "images", "ps", "version"}, want...)
	sort.Strings(wantLs)
	if got := d.readDir(); !reflect.DeepEqual(got, wantLs) {
		t.Errorf("ls of the mount after the bad input table = %v, want %v", got, wantLs)
	}
	if got := d.stateDirs(); !reflect.DeepEqual(got, want) {
		t.Errorf("state dir after the bad input table holds %v, want %v", got, want)
	}
	if got := d.runcIDs(); !reflect.DeepEqual(got, want) {
		t.Errorf("runc list after the bad input table = %v, want %v", got, want)
	}
	for _, id := range live {
		if got := d.readTrim(id, "state"); got != "running" {
			t.Errorf("%s/state = %q, want running", id, got)
			continue
		}
		if got := d.initPid(id); got != livePids[id] {
			t.Errorf("%s/pid = %d, was %d", id, got, livePids[id])
		}
	}
	if got := d.readTrim(stopped, "state"); got != "stopped" {
		t.Errorf("%s/state = %q, want stopped", stopped, got)
	}
	if got := d.readTrim(stopped, "processes", "init", "exit"); got != "137" {
		t.Errorf("%s/processes/init/exit = %q, want 137", stopped, got)
	}
	if v := d.read("version"); !strings.HasPrefix(v, "ctrfs ") {
		t.Errorf("version = %q", v)
	}
	for _, id := range want {
		d.forceDelete(id)
	}
}

// TestIDBoundaries checks the edges of the id pattern that must be accepted:
// 128 characters, and every allowed character.
func TestIDBoundaries(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	long := newID("long")
	long += strings.Repeat("x", 128-len(long))
	odd := "Z9_." + newID("a-b")
	for _, id := range []string{long, odd} {
		d.run(id, b)
		if got := d.containers(); len(got) != 1 || got[0] != id {
			t.Errorf("container dirs = %v, want [%s]", got, id)
		}
		d.forceDelete(id)
		checkGone(t, d, id)
	}
	if res, err := d.ctl("run " + long + "y " + b + "\n"); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("run of a 129-character id: %v (%q), want EINVAL", err, res)
	}
	if got := d.stateDirs(); len(got) != 0 {
		t.Errorf("state dir holds %v", got)
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// checkResultLines requires every line of a ctl result to be an "ok:",
// "error:" or "skipped:" line (each result given once, nothing else).
func checkResultLines(t *testing.T, res string) {
	t.Helper()
	for _, l := range lines(res) {
		if !strings.HasPrefix(l, "ok: ") && !strings.HasPrefix(l, "error: ") && !strings.HasPrefix(l, "skipped: ") {
			t.Errorf("result read back from the same file has a stray line %q in %q", trunc(l), trunc(res))
			return
		}
	}
}
