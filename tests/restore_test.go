package tests

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// snap is what a restart must not change about a container.
type snap struct {
	State, Exit, Pid, InitState string
	Status                      map[string]any // the stable fields of status
}

// stableStatusFields are the status fields a restart must keep as they are.
var stableStatusFields = []string{"id", "state", "pid", "bundle", "created", "started", "exited", "exit_status", "exit_reason", "labels"}

func snapshot(t *testing.T, d *daemon, ids []string) map[string]snap {
	t.Helper()
	m := map[string]snap{}
	for _, id := range ids {
		st := d.status(id)
		stable := map[string]any{}
		for _, k := range stableStatusFields {
			if v, ok := st[k]; ok {
				stable[k] = v
			}
		}
		m[id] = snap{
			State:     d.readTrim(id, "state"),
			Exit:      d.readTrim(id, "processes", "init", "exit"),
			Pid:       d.readTrim(id, "pid"),
			InitState: d.readTrim(id, "processes", "init", "state"),
			Status:    stable,
		}
	}
	return m
}

func compareSnapshots(t *testing.T, what string, before, after map[string]snap) {
	t.Helper()
	for id, b := range before {
		a, ok := after[id]
		if !ok {
			t.Errorf("%s: %s missing", what, id)
			continue
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s changed %s:\nbefore: %+v\nafter:  %+v", what, id, b, a)
		}
	}
}

// checkStaleMount requires the mountpoint of a killed daemon to answer
// ENOTCONN ("transport endpoint is not connected"), as the kernel leaves it.
func checkStaleMount(t *testing.T, d *daemon) {
	t.Helper()
	if !isMounted(d.mnt) {
		t.Fatalf("%s is not mounted after kill -9 of ctrfs: the test cannot check the stale mount cleanup", d.mnt)
	}
	_, err := within(opTimeout, "stat "+d.mnt, func() (os.FileInfo, error) { return os.Stat(d.mnt) })
	if errors.Is(err, errHung) {
		t.Fatalf("stat of the mountpoint of a killed ctrfs hangs (is the /dev/fuse fd leaked to a child, e.g. a shim?): %v", err)
	}
	if !errors.Is(err, syscall.ENOTCONN) {
		t.Fatalf("stat of the mountpoint of a killed ctrfs: %v, want ENOTCONN", err)
	}
}

// TestStaleMountpoint kills the daemon with SIGKILL, which leaves a dead
// mount ("transport endpoint is not connected"), and requires a new daemon
// to clean it up and mount again on the same mountpoint.
func TestStaleMountpoint(t *testing.T) {
	d := startDaemon(t)
	d.kill()
	checkStaleMount(t, d)
	d.restart()
	if v := d.read("version"); !strings.HasPrefix(v, "ctrfs ") {
		t.Errorf("version after restart on a stale mountpoint = %q", v)
	}
	if n := strings.Count(mountinfoText(), " "+d.mnt+" "); n != 1 {
		t.Errorf("%s is mounted %d times after restart, want once", d.mnt, n)
	}
	d.stop()
	if _, err := os.Stat(d.mnt); err != nil {
		t.Errorf("the mountpoint after SIGTERM: %v, want a plain directory", err)
	}
}

func mountinfoText() string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	return string(data)
}

// TestStopKeepsContainers stops the daemon with SIGTERM: it must exit 0 and
// unmount, and its containers must keep running and be found again.
func TestStopKeepsContainers(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("keep")
	d.run(id, b)
	pid := d.initPid(id)
	d.stop()
	if !processAlive(pid, 0) {
		t.Fatalf("init %d died when ctrfs stopped", pid)
	}
	d.restart()
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("state after restart = %q, want running", got)
	}
	if got := d.initPid(id); got != pid {
		t.Errorf("pid after restart = %d, want %d", got, pid)
	}
	// The reattached init is still watched: its exit is seen.
	d.mustCtl("kill TERM\n", id)
	d.waitContent("143", id, "processes", "init", "exit")
	d.waitState(id, "stopped")
	checkStopped(t, d, id, b, 143)
	d.mustCtl("delete " + id + "\n")
	checkGone(t, d, id)
}

// TestRestore kills the daemon with SIGKILL while containers run, kills one
// container's init while the daemon is down, and restarts it on the same
// state dir: every container must be there in its state, the one that
// exited with its real exit status; further restarts change nothing.
func TestRestore(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	var (
		running = newID("rs-running")
		victim  = newID("rs-victim")
		paused  = newID("rs-paused")
		created = newID("rs-created")
		stopped = newID("rs-stopped")
	)
	ids := []string{running, victim, paused, created, stopped}
	sort.Strings(ids)
	d.run(running, b)
	d.run(victim, b)
	d.run(paused, b)
	d.mustCtl("pause\n", paused)
	d.mustCtl("create " + created + " " + b + "\n")
	d.run(stopped, b)
	d.mustCtl("kill TERM\n", stopped)
	d.waitState(stopped, "stopped")

	pids := map[string]int{}
	for _, id := range []string{running, victim, paused, created} {
		pids[id] = d.initPid(id)
	}
	type pidStart struct {
		pid   int
		start uint64
	}
	shims := map[string]pidStart{}
	for _, id := range []string{running, victim, paused, created} {
		pid, start, err := readPidFile(filepath.Join(d.state, id, "init", "shim.pid"))
		if err != nil {
			t.Fatalf("shim.pid of %s: %v", id, err)
		}
		if !processAlive(pid, start) {
			t.Fatalf("shim %d of %s is not running", pid, id)
		}
		shims[id] = pidStart{pid, start}
	}
	vpid, vstart, err := readPidFile(filepath.Join(d.state, victim, "init", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	if vpid != pids[victim] || !processAlive(vpid, vstart) {
		t.Fatalf("victim's pid file says %d (start %d), its pid file in the mount %d", vpid, vstart, pids[victim])
	}

	d.kill()
	for id, pid := range pids {
		if !processAlive(pid, 0) {
			t.Errorf("init %d of %s died with the daemon", pid, id)
		}
	}
	for id, s := range shims {
		if !processAlive(s.pid, s.start) {
			t.Errorf("shim %d of %s died with the daemon", s.pid, id)
		}
	}
	checkStaleMount(t, d)

	// The victim's init dies while the daemon is down; its shim reaps it,
	// records the status and exits.
	if err := syscall.Kill(vpid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", vpid, err)
	}
	waitFor(t, "the victim's init and shim to be gone", func() (bool, string) {
		a, b := processAlive(vpid, vstart), processAlive(shims[victim].pid, shims[victim].start)
		return !a && !b, fmt.Sprintf("init alive %v, shim alive %v", a, b)
	})

	d.restart()
	if got := d.containers(); !reflect.DeepEqual(got, ids) {
		t.Fatalf("containers after restart = %v, want %v", got, ids)
	}
	wantState := map[string]string{running: "running", victim: "stopped", paused: "paused", created: "created", stopped: "stopped"}
	wantExit := map[string]string{running: "", victim: "137", paused: "", created: "", stopped: "143"}
	for _, id := range ids {
		if got := d.readTrim(id, "state"); got != wantState[id] {
			t.Errorf("%s/state after restart = %q, want %s", id, got, wantState[id])
		}
		if got := d.readTrim(id, "processes", "init", "exit"); got != wantExit[id] {
			t.Errorf("%s/processes/init/exit after restart = %q, want %q", id, got, wantExit[id])
		}
		if pid, ok := pids[id]; ok && wantState[id] != "stopped" {
			if got := d.readTrim(id, "pid"); got != strconv.Itoa(pid) {
				t.Errorf("%s/pid after restart = %q, want %d", id, got, pid)
			}
		}
	}
	checkStopped(t, d, victim, b, 137)
	checkStopped(t, d, stopped, b, 143)
	checkStatus(t, d.status(running), running, "running", b, pids[running], 0)
	checkStatus(t, d.status(paused), paused, "paused", b, pids[paused], 0)
	checkStatus(t, d.status(created), created, "created", b, pids[created], 0)
	checkPids(t, d, running, pids[running])
	if t.Failed() {
		t.FailNow()
	}

	first := snapshot(t, d, ids)
	d.stop()
	d.restart()
	compareSnapshots(t, "a second restart (after SIGTERM)", first, snapshot(t, d, ids))
	d.kill()
	checkStaleMount(t, d)
	d.restart()
	compareSnapshots(t, "a third restart (after SIGKILL)", first, snapshot(t, d, ids))

	// The restored containers still obey, and their exits are still seen.
	d.mustCtl("resume\n", paused)
	if got := d.readTrim(paused, "state"); got != "running" {
		t.Errorf("%s/state after resume = %q, want running", paused, got)
	}
	d.mustCtl("start\n", created)
	if got := d.readTrim(created, "state"); got != "running" {
		t.Errorf("%s/state after start = %q, want running", created, got)
	}
	d.mustCtl("kill KILL\n", running)
	d.waitContent("137", running, "processes", "init", "exit")
	d.waitState(running, "stopped")
	for _, id := range ids {
		d.forceDelete(id)
		checkGone(t, d, id)
	}
	for id, pid := range pids {
		if processAlive(pid, 0) {
			t.Errorf("init %d of %s alive after delete --force", pid, id)
		}
	}
}

// TestShimKilled kills a running container's shim with SIGKILL: the
// container must be reported stopped with a truthful status (a real exit
// status or "unknown", never empty) and its processes must be gone.
func TestShimKilled(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("shimkill")
	d.run(id, b)
	pid := d.initPid(id)
	_, istart, err := readPidFile(filepath.Join(d.state, id, "init", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	spid, sstart, err := readPidFile(filepath.Join(d.state, id, "init", "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if !processAlive(spid, sstart) {
		t.Fatalf("shim %d is not running", spid)
	}
	if err := syscall.Kill(spid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}

	d.waitState(id, "stopped")
	exit := d.readTrim(id, "processes", "init", "exit")
	code, convErr := strconv.Atoi(exit)
	switch {
	case exit == "unknown":
	case convErr == nil && code >= 0 && code <= 255:
	default:
		t.Errorf("processes/init/exit of a container whose shim was killed = %q, want a number or \"unknown\"", exit)
	}
	if got := d.readTrim(id, "processes", "init", "state"); got != "exited" {
		t.Errorf("processes/init/state = %q, want exited", got)
	}
	st := d.status(id)
	t.Logf("after kill -9 of the shim: processes/init/exit = %q, status.exit_status = %v, exit_reason = %v", exit, st["exit_status"], st["exit_reason"])
	want := -1
	if exit != "unknown" {
		want = code
	}
	checkStatus(t, st, id, "stopped", b, 0, want)
	if exit == "unknown" {
		if r, _ := st["exit_reason"].(string); r == "" {
			t.Errorf("status.exit_reason = %#v with an unknown exit status, want why", st["exit_reason"])
		}
	}
	waitFor(t, "the container's processes to be gone", func() (bool, string) {
		s, err := d.tryRead(id, "pids")
		alive := processAlive(pid, istart)
		return err == nil && s == "" && !alive, fmt.Sprintf("pids %q (%v), init alive %v", s, err, alive)
	})
	if got := d.read(id, "pid"); got != "" {
		t.Errorf("pid once stopped = %q, want empty", got)
	}

	// A restart keeps the same story.
	before := snapshot(t, d, []string{id})
	d.kill()
	d.restart()
	compareSnapshots(t, "a restart after the shim's death", before, snapshot(t, d, []string{id}))

	if _, err := within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(d.path(id)) }); err != nil {
		t.Fatalf("rmdir: %v", err)
	}
	checkGone(t, d, id)
}
