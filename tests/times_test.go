package tests

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Times and sizes (issue 13, docs/files.md "Times and sizes"): every file's
// mtime is when its content last changed, as stat, ls -lt and find -newer
// see it, and a file held in memory shows its real size.

// stamps are the mtime and ctime of a file, read with stat(2) under a
// timeout.
type stamps struct{ mtime, ctime, atime time.Time }

func (d *daemon) stamps(elem ...string) stamps {
	d.tb.Helper()
	st, err := within(opTimeout, "stat", func() (*syscall.Stat_t, error) {
		var st syscall.Stat_t
		return &st, syscall.Stat(d.path(elem...), &st)
	})
	if err != nil {
		d.tb.Fatalf("stat %s: %v", filepath.Join(elem...), err)
	}
	return stamps{
		mtime: time.Unix(st.Mtim.Unix()),
		ctime: time.Unix(st.Ctim.Unix()),
		atime: time.Unix(st.Atim.Unix()),
	}
}

// statusTime reads an RFC 3339 time field of ID/status.
func (d *daemon) statusTime(id, field string) time.Time {
	d.tb.Helper()
	s, _ := d.status(id)[field].(string)
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.tb.Fatalf("%s/status %s: %q: %v", id, field, s, err)
	}
	return at
}

// TestTimesMoveWithChanges: state's mtime moves with a pause and nothing
// else's but status's, events' and stats'; twice stat'ed without a change,
// identical; the exit moves exit, state, pid and pids; ls -lt and find
// -newer see it; the container directory keeps its create time; sizes
// are the contents' lengths.
func TestTimesMoveWithChanges(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id := newID("times")
	d.run(id, demoBundle(t))
	t.Cleanup(func() { d.ctl("delete " + id + " --force\n") })

	fixed := []string{"labels", "bundle", "runtime", "config.json", "pid", "oom", "pids", "ctl",
		"processes/init/pid", "processes/init/exit", "processes/init/spec", "processes/init/ctl"}
	before := map[string]stamps{}
	for _, f := range append(fixed, "state", "status", ".") {
		before[f] = d.stamps(id, f)
		if again := d.stamps(id, f); again != before[f] {
			t.Errorf("%s: stat twice without a change: %+v then %+v", f, before[f], again)
		}
		if s := before[f]; !s.ctime.Equal(s.mtime) || !s.atime.Equal(s.mtime) {
			t.Errorf("%s: ctime %v atime %v, want its mtime %v", f, s.ctime, s.atime, s.mtime)
		}
	}
	created := d.statusTime(id, "created")
	started := d.statusTime(id, "started")
	if dir := before["."].mtime; !dir.Equal(created) {
		t.Errorf("the container directory's mtime %v, want its create time %v", dir, created)
	}
	if !before["state"].mtime.Equal(started) && !before["state"].mtime.After(created) {
		t.Errorf("state's mtime %v: want the start (%v)", before["state"].mtime, started)
	}

	// A reference file made now: find -newer REF finds what changes after.
	// Its mtime comes from the kernel's coarse clock, a tick behind the
	// daemon's time.Now() at most: made within a tick of the start it
	// could seem older than pids' time, the start.
	time.Sleep(20 * time.Millisecond)
	ref := filepath.Join(t.TempDir(), "ref")
	if err := os.WriteFile(ref, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the reference's mtime is behind whatever comes next
	d.mustCtl("pause", id)
	paused := d.stamps(id, "state")
	if !paused.mtime.After(before["state"].mtime) || !paused.mtime.After(fileMtime(t, ref)) {
		t.Errorf("state's mtime after pause %v, before %v: did not move", paused.mtime, before["state"].mtime)
	}
	if st := d.stamps(id, "status"); !st.mtime.Equal(paused.mtime) {
		t.Errorf("status's mtime after pause %v, want state's %v", st.mtime, paused.mtime)
	}
	for _, f := range append(fixed, ".") {
		if now := d.stamps(id, f); now != before[f] {
			t.Errorf("%s: times moved with a pause: %+v then %+v", f, before[f], now)
		}
	}
	newer := lines(d.mustSh(`cd $MNT/$ID && timeout 10 find . -newer "$REF" | sort`, "ID="+id, "REF="+ref))
	for _, want := range []string{"./state", "./status", "./events", "./stats"} {
		if !slices.Contains(newer, want) {
			t.Errorf("find -newer REF after pause: %q missing from %q", want, newer)
		}
	}
	for _, f := range fixed {
		if slices.Contains(newer, "./"+f) {
			t.Errorf("find -newer REF after pause lists %s, which did not change: %q", f, newer)
		}
	}
	// ls -lt: newest first. stats is of now; state, status and events
	// changed with the pause; labels and bundle at the create.
	order := lines(d.mustSh(`timeout 10 ls -t $MNT/$ID`, "ID="+id))
	pos := func(name string) int {
		i := slices.Index(order, name)
		if i < 0 {
			t.Fatalf("ls -t %s: no %s in %q", id, name, order)
		}
		return i
	}
	if order[0] != "stats" || pos("state") > pos("labels") || pos("status") > pos("bundle") || pos("events") > pos("config.json") {
		t.Errorf("ls -t after pause: %q, want stats first and state, status, events before labels, bundle, config.json", order)
	}
	d.mustSh(`timeout 10 ls -lt --full-time $MNT/$ID >&2`, "ID="+id)

	// The exit moves exit, state, pid and pids, to the exit's time.
	d.mustCtl("resume", id)
	d.mustCtl("kill KILL", id)
	d.waitState(id, "stopped")
	exited := d.statusTime(id, "exited")
	for _, f := range []string{"processes/init/exit", "processes/init/state", "state", "pid", "pids"} {
		if got := d.stamps(id, f).mtime; !got.Equal(exited) {
			t.Errorf("%s's mtime after the exit %v, want the exit's %v", f, got, exited)
		}
	}
	if got := d.stamps(id, "processes/init/pid").mtime; !got.Equal(before["processes/init/pid"].mtime) {
		t.Errorf("processes/init/pid's mtime moved with the exit: %v", got)
	}

	// Sizes: the content's length, for every file held in memory.
	out := d.mustSh(`cd $MNT/$ID && for f in state pid oom labels bundle runtime config.json processes/init/spec processes/init/state processes/init/pid processes/init/exit ../version; do
		echo "$f $(timeout 10 stat -c %s $f) $(timeout 10 cat $f | wc -c)"; done`, "ID="+id)
	for _, l := range lines(out) {
		f := strings.Fields(l)
		if len(f) != 3 || f[1] != f[2] {
			t.Errorf("size (stat -c %%s) and content (wc -c) differ: %q", l)
		}
	}
	if got := strings.Fields(d.mustSh(`timeout 10 stat -c %s $MNT/$ID/ctl`, "ID="+id)); len(got) != 1 || got[0] != "65536" {
		t.Errorf("ctl's size %q, want 65536 (parallel writes)", got)
	}
}

func fileMtime(t *testing.T, path string) time.Time {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.ModTime()
}

// TestTimesOOM: oom's mtime moves with a kill, and the state's does not.
func TestTimesOOM(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id := newID("toom")
	b := oomBundle(t, "while [ ! -e /tmp/go ]; do sleep 0.05; done; "+hog+"; exec sleep 1000")
	d.run(id, b)
	t.Cleanup(func() { d.ctl("delete " + id + " --force\n") })
	oom, state := d.stamps(id, "oom"), d.stamps(id, "state")
	if again := d.stamps(id, "oom"); again != oom {
		t.Errorf("oom: stat twice without a change: %+v then %+v", oom, again)
	}
	if err := os.WriteFile(filepath.Join(b, "rootfs", "tmp", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "an OOM kill", func() (bool, string) {
		s := d.readTrim(id, "oom")
		n, _ := strconv.Atoi(s)
		return n >= 1, s
	})
	if got := d.stamps(id, "oom"); !got.mtime.After(oom.mtime) {
		t.Errorf("oom's mtime after a kill %v, before %v: did not move", got.mtime, oom.mtime)
	}
	if got := d.stamps(id, "state"); got != state {
		t.Errorf("state's times moved with an OOM kill: %+v then %+v", state, got)
	}
}

// TestTimesSurviveRestart: after kill -9 and a restart, every container's
// times are those it had: running, paused, created, stopped, an exec.
func TestTimesSurviveRestart(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	b := demoBundle(t)
	run, paused, made, stopped := newID("trun"), newID("tpaused"), newID("tmade"), newID("tstop")
	d.run(run, b)
	d.run(paused, b)
	d.mustCtl("create " + made + " " + b + "\n")
	d.run(stopped, b)
	t.Cleanup(func() {
		for _, id := range []string{run, paused, made, stopped} {
			d.ctl("delete " + id + " --force\n")
		}
	})
	d.mustCtl("exec e1 -- true\n", run)
	d.waitContent("0", run, "processes", "e1", "exit")
	d.mustCtl("pause", paused)
	d.mustCtl("pause", run)
	d.mustCtl("resume", run)
	d.mustCtl("update pids=50", run)
	d.mustCtl("kill KILL", stopped)
	d.waitState(stopped, "stopped")

	files := []string{".", "state", "status", "pid", "pids", "oom", "labels", "processes/init", "processes/init/state",
		"processes/init/exit", "processes/init/pid"}
	record := func() map[string]stamps {
		m := map[string]stamps{}
		for _, id := range []string{run, paused, made, stopped} {
			for _, f := range files {
				m[id+"/"+f] = d.stamps(id, f)
			}
		}
		for _, f := range []string{"processes/e1", "processes/e1/exit", "processes/e1/state"} {
			m[run+"/"+f] = d.stamps(run, f)
		}
		return m
	}
	was := record()
	if got, st := was[run+"/status"].mtime, was[run+"/state"].mtime; !got.After(st) {
		t.Errorf("status's mtime %v after an update, want later than the state's %v", got, st)
	}
	d.kill()
	d.restart()
	now := record()
	for k, s := range was {
		if now[k] != s {
			t.Errorf("%s: times changed across a restart: %v then %v", k, s.mtime, now[k].mtime)
		}
	}
}
