package tests

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// criuCheck says whether CRIU can checkpoint on this host: "" when `criu
// check` passes, else why not (criu missing, or its own reason).
func criuCheck(tb testing.TB) string {
	tb.Helper()
	if _, err := exec.LookPath("criu"); err != nil {
		return "criu is not installed"
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "criu", "check").CombinedOutput()
	if err == nil {
		return ""
	}
	// Its error lines, "Error (criu/vdso.c:613): vdso: ...", without the
	// source positions; the last few say why.
	var why []string
	for _, l := range lines(string(out)) {
		if _, msg, ok := strings.Cut(l, "): "); ok && strings.Contains(l, "Error (") && !strings.HasPrefix(msg, "exited, status=") {
			why = append(why, msg)
		}
	}
	if len(why) > 3 {
		why = why[len(why)-3:]
	}
	if len(why) == 0 {
		return "criu check: " + err.Error()
	}
	return "criu check: " + strings.Join(why, "; ")
}

// mkdirIn runs mkdir on the mount, bounded in time.
func (d *daemon) mkdirIn(elem ...string) error {
	p := d.path(elem...)
	_, err := within(opTimeout, "mkdir "+p, func() (int, error) { return 0, os.Mkdir(p, 0o755) })
	return err
}

func (d *daemon) rmdirIn(elem ...string) error {
	p := d.path(elem...)
	_, err := within(opTimeout, "rmdir "+p, func() (int, error) { return 0, syscall.Rmdir(p) })
	return err
}

// fakeCheckpoint makes dir/name/config.json by hand, as a checkpoint that
// criu cannot make on this host would have it.
func fakeCheckpoint(tb testing.TB, dir, name string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		tb.Fatal(err)
	}
	cfg := `{"name":"` + name + `","created":"2026-11-28T10:00:00Z","exit":false,"tcp":false,"unixSockets":false,"shell":false}`
	if err := os.WriteFile(filepath.Join(dir, name, "config.json"), []byte(cfg), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// dirNames lists a host directory (nil if it does not exist).
func dirNames(tb testing.TB, dir string) []string {
	tb.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestCheckpointBadInput: bad names and options, a name that is taken, a
// container that is not running: the right errno and text, from ctl and
// from mkdir/rmdir in checkpoints/, and nothing made.
func TestCheckpointBadInput(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", steadyScript)
	cps := filepath.Join(b, "checkpoints")
	fakeCheckpoint(t, cps, "taken")
	running, created, stopped := newID("cpb-run"), newID("cpb-cre"), newID("cpb-stop")
	d.run(running, b)
	pid := d.initPid(running)
	d.mustCtl("create " + created + " " + b)
	d.run(stopped, b)
	d.mustCtl("kill KILL", stopped)
	d.waitState(stopped, "stopped")

	for _, c := range []struct {
		id, cmd string
		errno   syscall.Errno
		text    string
	}{
		{running, "checkpoint", syscall.EINVAL, "usage"},
		{running, "checkpoint a b", syscall.EINVAL, "usage"},
		{running, "checkpoint -x", syscall.EINVAL, "unknown option"},
		{running, "checkpoint --root", syscall.EINVAL, "unknown option"},
		{running, "checkpoint ../up", syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint a/b", syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint .hidden", syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint ..", syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint ''", syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint " + strings.Repeat("c", 129), syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint 'a b'", syscall.EINVAL, "invalid checkpoint name"},
		{running, "checkpoint cp --dir", syscall.EINVAL, "needs a value"},
		{running, "checkpoint cp --dir rel/dir", syscall.EINVAL, "absolute"},
		{running, "checkpoint cp --empty-ns ipc", syscall.EINVAL, "network"},
		{running, "checkpoint cp --leave-running", syscall.EINVAL, "unknown option"},
		{running, "checkpoint taken", syscall.EEXIST, "already exists"},
		{running, "checkpoint taken --exit", syscall.EEXIST, "already exists"},
		{running, "checkpoint cp --dir /nonexistent-ctrfs-dir", syscall.ENOENT, "does not exist"},
		{created, "checkpoint cp", syscall.EBUSY, "created"},
		{stopped, "checkpoint cp", syscall.EBUSY, "stopped"},
		{stopped, "checkpoint cp --exit", syscall.EBUSY, "stopped"},
	} {
		res, err := d.ctl(c.cmd, c.id)
		if !errors.Is(err, c.errno) || !strings.Contains(res, c.text) || !strings.Contains(res, errnoNames[c.errno]) {
			t.Errorf("%s: %q: %v, %q; want %s and %q", c.id, trunc(c.cmd), err, trunc(res), errnoNames[c.errno], c.text)
		}
		checkResultLines(t, res)
	}
	// The same through checkpoints/: mkdir and rmdir.
	for _, c := range []struct {
		op, id, name string
		errno        syscall.Errno
	}{
		{"mkdir", running, "taken", syscall.EEXIST}, // the kernel sees it listed
		{"mkdir", running, "-x", syscall.EINVAL},
		{"mkdir", running, ".x", syscall.EINVAL},
		{"mkdir", running, "a b", syscall.EINVAL},
		{"mkdir", created, "cp", syscall.EBUSY},
		{"mkdir", stopped, "cp", syscall.EBUSY},
		{"rmdir", running, "nosuch", syscall.ENOENT},
		{"rmdir", running, "..x", syscall.ENOENT},
	} {
		var err error
		if c.op == "mkdir" {
			err = d.mkdirIn(c.id, "checkpoints", c.name)
		} else {
			err = d.rmdirIn(c.id, "checkpoints", c.name)
		}
		if !errors.Is(err, c.errno) {
			t.Errorf("%s %s/checkpoints/%s: %v, want %s", c.op, c.id, c.name, err, errnoNames[c.errno])
		}
	}
	if text := d.read(created, "ctl"); !strings.Contains(text, "last error: checkpoint") || !strings.Contains(text, "EBUSY") {
		t.Errorf("a failed mkdir in checkpoints/ is not the container's last error:\n%s", text)
	}
	// Nothing was made, nothing was disturbed.
	if got := dirNames(t, cps); !reflect.DeepEqual(got, []string{"taken"}) {
		t.Errorf("%s holds %v after the bad input, want [taken]", cps, got)
	}
	if got := d.readDir(running, "checkpoints"); !reflect.DeepEqual(got, []string{"taken"}) {
		t.Errorf("ls checkpoints = %v", got)
	}
	if got := d.initPid(running); got != pid || d.readTrim(running, "state") != "running" {
		t.Errorf("%s after the bad input: pid %d (was %d), state %s", running, got, pid, d.readTrim(running, "state"))
	}
	if !d.alive() {
		t.Fatal("ctrfs died")
	}
	for _, id := range []string{running, created, stopped} {
		d.forceDelete(id)
	}
}

// TestCheckpointListing: checkpoints/ lists the checkpoints of the
// bundle, NAME/config.json reads theirs, rmdir deletes them, in any state
// of the container; checkpoints being made (hidden temporary names) and
// directories without config.json are not listed.
func TestCheckpointListing(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", steadyScript)
	cps := filepath.Join(b, "checkpoints")
	id := newID("cpl")
	d.run(id, b)
	if got := d.readDir(id, "checkpoints"); len(got) != 0 {
		t.Errorf("ls checkpoints of a new bundle = %v", got)
	}
	fakeCheckpoint(t, cps, "cp1")
	fakeCheckpoint(t, cps, "cp2")
	fakeCheckpoint(t, cps, ".cp3.tmp-123")
	os.MkdirAll(filepath.Join(cps, "noconfig"), 0o755)
	if got := d.readDir(id, "checkpoints"); !reflect.DeepEqual(got, []string{"cp1", "cp2"}) {
		t.Errorf("ls checkpoints = %v, want [cp1 cp2]", got)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(d.read(id, "checkpoints", "cp1", "config.json")), &cfg); err != nil || cfg["name"] != "cp1" {
		t.Errorf("cp1/config.json: %v, %v", cfg, err)
	}
	if got := d.readDir(id, "checkpoints", "cp1"); !reflect.DeepEqual(got, []string{"config.json"}) {
		t.Errorf("ls checkpoints/cp1 = %v", got)
	}
	if err := d.rmdirIn(id, "checkpoints", "cp1"); err != nil {
		t.Fatalf("rmdir checkpoints/cp1: %v", err)
	}
	if _, err := os.Stat(filepath.Join(cps, "cp1")); !os.IsNotExist(err) {
		t.Errorf("cp1 still in the bundle after rmdir: %v", err)
	}
	if _, err := d.tryRead(id, "checkpoints", "cp1", "config.json"); !os.IsNotExist(err) {
		t.Errorf("cp1/config.json after rmdir: %v, want ENOENT", err)
	}
	// Deleted by hand in the bundle: gone from the tree at once.
	os.RemoveAll(filepath.Join(cps, "cp2"))
	if got := d.readDir(id, "checkpoints"); len(got) != 0 {
		t.Errorf("ls checkpoints after removing cp2 by hand = %v", got)
	}
	// A stopped container's checkpoints are still there to list and delete.
	fakeCheckpoint(t, cps, "cp4")
	d.mustCtl("kill KILL", id)
	d.waitState(id, "stopped")
	if got := d.readDir(id, "checkpoints"); !reflect.DeepEqual(got, []string{"cp4"}) {
		t.Errorf("ls checkpoints once stopped = %v", got)
	}
	if err := d.rmdirIn(id, "checkpoints", "cp4"); err != nil {
		t.Errorf("rmdir checkpoints/cp4 once stopped: %v", err)
	}
	d.forceDelete(id)
}

// TestCheckpointFailsCleanly runs where CRIU cannot checkpoint (criu check
// fails, as criu 3.17 on Linux 6.18): every way to checkpoint fails with
// EIO and a message that says why, leaves no checkpoint directory behind,
// and the container runs on. A restore from a checkpoint fails the same
// way and leaves no container behind.
func TestCheckpointFailsCleanly(t *testing.T) {
	requireIntegration(t)
	why := criuCheck(t)
	if why == "" {
		t.Skip("criu check passes here: TestCheckpointRestore runs the real checkpoint and restore")
	}
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", steadyScript)
	cps := filepath.Join(b, "checkpoints")
	id := newID("cpf")
	d.run(id, b)
	pid := d.initPid(id)
	events := d.openEvents(id, "events")
	want := "criu check fails on this host"
	if why == "criu is not installed" {
		want = "criu is not installed"
	}
	for _, cmd := range []string{"checkpoint cp1", "checkpoint cp2 --exit --tcp", "checkpoint cp3 --unix-sockets --shell --empty-ns network"} {
		res, err := d.ctl(cmd, id)
		if !errors.Is(err, syscall.EIO) || !strings.Contains(res, want) || !strings.Contains(res, "(EIO)") {
			t.Errorf("%q: %v, %q; want EIO saying %q", cmd, err, res, want)
		}
		if e := events.until(id, "error"); !strings.Contains(e[len(e)-1].Message, "checkpoint") {
			t.Errorf("error event: %+v", e[len(e)-1])
		}
	}
	if err := d.mkdirIn(id, "checkpoints", "cp4"); !errors.Is(err, syscall.EIO) {
		t.Errorf("mkdir checkpoints/cp4: %v, want EIO", err)
	}
	if text := d.read(id, "ctl"); !strings.Contains(text, want) {
		t.Errorf("cat ctl after a failed mkdir does not say why:\n%s", text)
	}
	// The --dir form: nothing left in DIR either.
	dir := t.TempDir()
	if _, err := d.ctl("checkpoint cp5 --dir "+dir, id); !errors.Is(err, syscall.EIO) {
		t.Errorf("checkpoint --dir: %v, want EIO", err)
	}
	if got := dirNames(t, dir); len(got) != 0 {
		t.Errorf("%s holds %v after a failed checkpoint", dir, got)
	}
	if _, err := os.Stat(cps); !os.IsNotExist(err) {
		t.Errorf("%s exists after failed checkpoints (%v): %v", cps, err, dirNames(t, cps))
	}
	if got := d.readDir(id, "checkpoints"); len(got) != 0 {
		t.Errorf("ls checkpoints = %v", got)
	}
	if got := d.initPid(id); got != pid || d.readTrim(id, "state") != "running" {
		t.Errorf("after failed checkpoints: pid %d (was %d), state %s", got, pid, d.readTrim(id, "state"))
	}

	// Restore from a checkpoint that CRIU cannot restore: EIO, and no
	// container, state dir or runc container left.
	fakeCheckpoint(t, cps, "fake")
	restored := newID("cpf-rest")
	res, err := d.ctl("run " + restored + " " + b + " --checkpoint fake")
	if !errors.Is(err, syscall.EIO) || !strings.Contains(res, "restore") {
		t.Errorf("restore from a fake checkpoint: %v, %q; want EIO", err, res)
	}
	if res, err := d.ctl("create " + restored + " " + b + " --checkpoint nosuch"); !errors.Is(err, syscall.ENOENT) || !strings.Contains(res, "no checkpoint") {
		t.Errorf("restore from no checkpoint: %v, %q; want ENOENT", err, res)
	}
	if got := d.containers(); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("containers after failed restores = %v", got)
	}
	if got := d.stateDirs(); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("state dirs after failed restores = %v", got)
	}
	if got := d.runcIDs(); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("runc list after failed restores = %v", got)
	}
	d.forceDelete(id)
}

// TestCheckpointWithoutCriu: a daemon whose $PATH has no criu says so.
func TestCheckpointWithoutCriu(t *testing.T) {
	requireIntegration(t)
	bin := t.TempDir()
	for _, prog := range []string{"runc", "fusermount3"} {
		p, err := exec.LookPath(prog)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, prog)); err != nil {
			t.Fatal(err)
		}
	}
	d := startDaemonEnv(t, []string{"PATH=" + bin})
	b := newBundle(t, "sh", "-c", steadyScript)
	id := newID("cpn")
	d.run(id, b)
	res, err := d.ctl("checkpoint cp1", id)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(res, "criu is not installed") {
		t.Errorf("checkpoint without criu: %v, %q", err, res)
	}
	fakeCheckpoint(t, filepath.Join(b, "checkpoints"), "fake")
	if res, err := d.ctl("run " + newID("cpn-r") + " " + b + " --checkpoint fake"); !errors.Is(err, syscall.EIO) || !strings.Contains(res, "criu is not installed") {
		t.Errorf("restore without criu: %v, %q", err, res)
	}
	if got := dirNames(t, filepath.Join(b, "checkpoints")); !reflect.DeepEqual(got, []string{"fake"}) {
		t.Errorf("checkpoints dir = %v", got)
	}
	d.forceDelete(id)
}

// requireCRIU skips tb where CRIU cannot checkpoint at all (criu check
// fails), even with CTRFS_REQUIRE_INTEGRATION=1: a kernel limitation,
// nothing the project can install fixes it.
func requireCRIU(tb testing.TB) {
	tb.Helper()
	requireIntegration(tb)
	if why := criuCheck(tb); why != "" {
		tb.Skipf("skipped: CRIU cannot checkpoint on this host (%s); a kernel limitation, not a missing prerequisite, "+
			"so this skips even with CTRFS_REQUIRE_INTEGRATION=1; TestCheckpointFailsCleanly tests the error path", why)
	}
}

// counterScript counts in the bundle's /tmp/count, ten times a second.
const counterScript = `i=0; while :; do i=$((i+1)); echo $i > /tmp/count; sleep 0.1; done`

// counter reads the count of counterScript in bundle b, and waits for it
// to pass a number.
func counter(t *testing.T, b string) (count func() int, waitCount func(above int)) {
	countFile := filepath.Join(b, "rootfs", "tmp", "count")
	count = func() int {
		data, _ := os.ReadFile(countFile)
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	waitCount = func(above int) {
		t.Helper()
		waitFor(t, "the counter to pass "+strconv.Itoa(above), func() (bool, string) {
			n := count()
			return n > above, strconv.Itoa(n)
		})
	}
	return count, waitCount
}

// TestCheckpointRestore is the real thing, where CRIU works: a counter is
// checkpointed (mkdir: it runs on; --exit: it stops), restored into a new
// container from the bundle's checkpoints/ and from a --dir, and counts on
// from where it was.
func TestCheckpointRestore(t *testing.T) {
	requireCRIU(t)
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", counterScript)
	count, waitCount := counter(t, b)
	id := newID("cpr")
	d.run(id, b)
	waitCount(3)
	events := d.openEvents(id, "events")

	// mkdir: a checkpoint, and the container runs on.
	if err := d.mkdirIn(id, "checkpoints", "cp1"); err != nil {
		t.Fatalf("mkdir checkpoints/cp1: %v\n%s", err, d.read(id, "ctl"))
	}
	if e := events.until(id, "checkpoint"); e[len(e)-1].Checkpoint != "cp1" {
		t.Errorf("checkpoint event = %+v", e[len(e)-1])
	}
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("state after mkdir checkpoints/cp1 = %q", got)
	}
	n := count()
	waitCount(n + 2)

	// --exit: saved, then stopped.
	d.mustCtl("checkpoint cp2 --exit", id)
	if got := d.readTrim(id, "state"); got != "stopped" {
		t.Errorf("state once checkpoint --exit returned = %q, want stopped", got)
	}
	time.Sleep(300 * time.Millisecond) // nothing counts any more
	stoppedAt := count()
	if got := d.readDir(id, "checkpoints"); !reflect.DeepEqual(got, []string{"cp1", "cp2"}) {
		t.Errorf("ls checkpoints = %v", got)
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(d.read(id, "checkpoints", "cp2", "config.json")), &cfg); err != nil || cfg["name"] != "cp2" || cfg["exit"] != true {
		t.Errorf("cp2/config.json = %v, %v", cfg, err)
	}

	// Restore into a new container: it counts on from where it stopped.
	id2 := newID("cpr2")
	d.mustCtl("create " + id2 + " " + b + " --checkpoint cp2")
	if got := d.readTrim(id2, "state"); got != "running" {
		t.Errorf("restored container's state = %q, want running", got)
	}
	if got := strField(t, d.status(id2), "restored_from"); got != filepath.Join(b, "checkpoints", "cp2") {
		t.Errorf("status.restored_from = %q", got)
	}
	waitCount(stoppedAt + 3)
	if first := count(); first < stoppedAt {
		t.Errorf("the restored counter is at %d, below %d: it started over", first, stoppedAt)
	}
	if s := d.readStats(id2); s.Pids.Current < 1 {
		t.Errorf("stats of the restored container: %+v", s)
	}

	// --dir, and a restore from there.
	dir := t.TempDir()
	d.mustCtl("checkpoint cp3 --exit --dir "+dir, id2)
	if got := dirNames(t, dir); !reflect.DeepEqual(got, []string{"cp3"}) {
		t.Errorf("--dir %s holds %v", dir, got)
	}
	stoppedAt = count()
	id3 := newID("cpr3")
	d.mustCtl("run " + id3 + " " + b + " --checkpoint cp3 --checkpoint-dir " + dir)
	waitCount(stoppedAt + 3)

	if err := d.rmdirIn(id, "checkpoints", "cp1"); err != nil {
		t.Errorf("rmdir checkpoints/cp1: %v", err)
	}
	if got := d.readDir(id3, "checkpoints"); !reflect.DeepEqual(got, []string{"cp2"}) {
		t.Errorf("ls checkpoints after rmdir = %v", got)
	}
	for _, c := range []string{id, id2, id3} {
		d.forceDelete(c)
	}
}
