package tests

import (
	"bytes"
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

	"github.com/ctrfs/ctrfs/tests/bundle"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// pid returns the pid of the daemon process last started.
func (d *daemon) pid() int {
	d.tb.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil || d.cmd.Process == nil {
		d.tb.Fatal("daemon.pid: the daemon was never started")
	}
	return d.cmd.Process.Pid
}

// stateEntries lists every name in the state dir.
func (d *daemon) stateEntries() []string {
	d.tb.Helper()
	ents, err := os.ReadDir(d.state)
	if err != nil {
		d.tb.Fatalf("state dir: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// runcState returns the "status" runc reports for id in root.
func runcState(root, id string) (string, error) {
	out, err := exec.Command("runc", "--root", root, "state", id).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("runc --root %s state %s: %v: %s", root, id, err, bytes.TrimSpace(out))
	}
	var st struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return "", fmt.Errorf("runc state %s: %v: %s", id, err, out)
	}
	return st.Status, nil
}

// TestReservedIDs requires the ids the mount's root and the state dir use
// (ctl, version, events, images, ps, runc, lock) to be refused with EINVAL, with a
// text that says they are reserved, and nothing to be created.
func TestReservedIDs(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	lsBefore := d.readDir()
	stateBefore := d.stateEntries()
	for _, id := range []string{"ctl", "version", "events", "images", "ps", "runc", "lock"} {
		cmd := "run " + id + " " + b + "\n"
		res, err := d.ctl(cmd)
		if errors.Is(err, errHung) {
			t.Fatal(err)
		}
		if !errors.Is(err, syscall.EINVAL) {
			t.Errorf("%q: write error %v, want EINVAL; result: %q", cmd, err, res)
		}
		if !strings.Contains(res, "reserved") {
			t.Errorf("%q: result from the same open file = %q, want it to mention \"reserved\"", cmd, res)
		}
	}
	if got := d.readDir(); !reflect.DeepEqual(got, lsBefore) {
		t.Errorf("ls %s after the refused runs = %q, want %q", d.mnt, got, lsBefore)
	}
	if got := d.stateEntries(); !reflect.DeepEqual(got, stateBefore) {
		t.Errorf("state dir after the refused runs = %q, want %q", got, stateBefore)
	}
	if ids := d.runcIDs(); len(ids) != 0 {
		t.Errorf("runc lists %q after the refused runs, want nothing", ids)
	}
	if v := d.read("version"); !strings.HasPrefix(v, "ctrfs ") {
		t.Errorf("version after the refused runs = %q", v)
	}
}

// TestTreeIsImmutable requires every change of the tree's shape (remove,
// rename, symlink, mkdir, create, rmdir of anything but a container) to
// fail with EACCES and change nothing.
func TestTreeIsImmutable(t *testing.T) {
	d := startDaemon(t)
	b := demoBundle(t)
	id := newID("immutable")
	d.run(id, b)

	ops := []struct {
		what string
		op   func() error
	}{
		{"rm MNT/ID/state", func() error { return os.Remove(d.path(id, "state")) }},
		{"mv MNT/ID MNT/other", func() error { return os.Rename(d.path(id), d.path("other")) }},
		{"mv MNT/ID/state MNT/ID/s2", func() error { return os.Rename(d.path(id, "state"), d.path(id, "s2")) }},
		{"ln -s x MNT/l", func() error { return os.Symlink("x", d.path("l")) }},
		{"mkdir MNT/newdir", func() error { return os.Mkdir(d.path("newdir"), 0o755) }},
		{"touch MNT/newfile", func() error {
			f, err := os.OpenFile(d.path("newfile"), os.O_WRONLY|os.O_CREATE, 0o644)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"rmdir MNT/ID/processes", func() error { return syscall.Rmdir(d.path(id, "processes")) }},
	}
	for _, o := range ops {
		_, err := within(opTimeout, o.what, func() (struct{}, error) { return struct{}{}, o.op() })
		if errors.Is(err, errHung) {
			t.Fatal(err)
		}
		if !errors.Is(err, syscall.EACCES) {
			t.Errorf("%s: %v, want EACCES", o.what, err)
		}
	}

	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("%s/state after the refused changes = %q, want running", id, got)
	}
	if got := d.containers(); !reflect.DeepEqual(got, []string{id}) {
		t.Errorf("containers after the refused changes = %q, want [%s]", got, id)
	}
	ls := d.readDir()
	for _, name := range []string{"other", "l", "newdir", "newfile"} {
		if slices.Contains(ls, name) {
			t.Errorf("%s appeared in %s", name, d.mnt)
		}
	}
	if slices.Contains(d.readDir(id), "s2") {
		t.Errorf("s2 appeared in %s", d.path(id))
	}
	if !slices.Contains(d.readDir(id), "state") || !slices.Contains(d.readDir(id), "processes") {
		t.Errorf("%s lost state or processes: %q", d.path(id), d.readDir(id))
	}
	d.forceDelete(id)
	checkGone(t, d, id)
}

// TestStateDirLock starts a second daemon on the state dir of a running
// one: it must exit non-zero at once with a one-line error naming the
// holder, mount nothing, and leave the first daemon serving.
func TestStateDirLock(t *testing.T) {
	d := startDaemon(t)
	holder := d.pid()
	dir, err := os.MkdirTemp("", "ctrfs-e2e-lock-")
	if err != nil {
		t.Fatal(err)
	}
	mnt2 := filepath.Join(dir, "mnt2")
	if err := os.Mkdir(mnt2, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if isMounted(mnt2) {
			abortFuseConnection(mnt2)
			exec.Command("fusermount3", "-u", mnt2).Run()
			if isMounted(mnt2) {
				exec.Command("umount", "-l", mnt2).Run()
			}
		}
		if !isMountedUnder(dir) {
			os.RemoveAll(dir)
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ctrfsBin, "mount", "--state-dir", d.state, mnt2)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("a second ctrfs on the state dir %s still ran after %v (it should refuse at once): %s", d.state, waitTimeout, out)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 {
		t.Errorf("a second ctrfs on the state dir in use: %v, want a non-zero exit; output: %q", err, out)
	}
	msg := strings.TrimRight(string(out), "\n")
	if msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("output of the second ctrfs = %q, want one line", out)
	}
	if !strings.Contains(msg, "in use") || !strings.Contains(msg, strconv.Itoa(holder)) {
		t.Errorf("output of the second ctrfs = %q, want it to say \"in use\" and name pid %d", msg, holder)
	}
	if isMounted(mnt2) {
		t.Errorf("%s is mounted by the refused second ctrfs", mnt2)
	}
	if !d.alive() {
		t.Fatalf("the first ctrfs died: %v", d.exitErr())
	}
	if v := d.read("version"); !strings.HasPrefix(v, "ctrfs ") {
		t.Errorf("version of the first ctrfs after the refused second = %q", v)
	}
	// It still works, not only answers.
	id := newID("lock")
	d.run(id, demoBundle(t))
	d.forceDelete(id)
	checkGone(t, d, id)
}

// TestRelativeStateDir starts the daemon with a relative --state-dir: it is
// resolved against the daemon's working directory, and containers work.
func TestRelativeStateDir(t *testing.T) {
	d := startDaemonRelative(t, "st")
	if d.state != filepath.Join(d.dir, "st") {
		t.Fatalf("harness: state dir %s, want %s", d.state, filepath.Join(d.dir, "st"))
	}
	if fi, err := os.Stat(d.state); err != nil || !fi.IsDir() {
		t.Fatalf("state dir %s after start: %v, want a directory", d.state, err)
	}
	id := newID("relative")
	d.run(id, demoBundle(t))
	if _, err := os.Stat(filepath.Join(d.state, id, "state.json")); err != nil {
		t.Errorf("the container's record in %s: %v", d.state, err)
	}
	if st, err := runcState(filepath.Join(d.state, "runc"), id); err != nil || st != "running" {
		t.Errorf("runc state in %s/runc: %q, %v; want running", d.state, st, err)
	}
	pid := d.initPid(id)
	d.forceDelete(id)
	checkGone(t, d, id)
	if processAlive(pid, 0) {
		t.Errorf("init %d alive after delete --force", pid)
	}
	d.stop()
}

// TestSigtermBusyMount sends SIGTERM to a daemon whose mount is in use (a
// process's cwd is in it): the daemon must still exit, with status 0, and
// leave its containers running; a new daemon then mounts on the same
// mountpoint.
func TestSigtermBusyMount(t *testing.T) {
	d := startDaemon(t)
	id := newID("busy")
	d.run(id, demoBundle(t))
	pid := d.initPid(id)

	sleep := exec.Command("sleep", "30")
	sleep.Dir = d.mnt
	sleep.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sleep.Start(); err != nil {
		t.Fatalf("start sleep in %s: %v", d.mnt, err)
	}
	sleepDone := make(chan struct{})
	go func() {
		sleep.Wait()
		close(sleepDone)
	}()
	killSleep := func() {
		_ = sleep.Process.Kill()
		select {
		case <-sleepDone:
		case <-time.After(waitTimeout):
			t.Errorf("sleep %d (cwd in the mount) not gone %v after SIGKILL", sleep.Process.Pid, waitTimeout)
		}
	}
	t.Cleanup(killSleep)
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", sleep.Process.Pid)); err != nil || cwd != d.mnt {
		t.Fatalf("cwd of sleep = %q, %v; want %s", cwd, err, d.mnt)
	}

	if !d.signal(syscall.SIGTERM, waitTimeout) {
		t.Fatalf("ctrfs with a busy mount did not exit within %v of SIGTERM\n%s", waitTimeout, d.logTail())
	}
	if err := d.exitErr(); err != nil {
		t.Errorf("ctrfs exited with %v after SIGTERM on a busy mount, want exit status 0", err)
	}
	if !processAlive(pid, 0) {
		t.Errorf("init %d died when ctrfs stopped", pid)
	}
	if st, err := runcState(filepath.Join(d.state, "runc"), id); err != nil || st != "running" {
		t.Errorf("after ctrfs exited: runc state %q, %v; want running", st, err)
	}

	killSleep()
	d.restart()
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("%s/state after restart = %q, want running", id, got)
	}
	if got := d.initPid(id); got != pid {
		t.Errorf("%s/pid after restart = %d, want %d", id, got, pid)
	}
	if n := strings.Count(mountinfoText(), " "+d.mnt+" "); n != 1 {
		t.Errorf("%s is mounted %d times after restart, want once", d.mnt, n)
	}
	d.forceDelete(id)
	checkGone(t, d, id)
}

// TestDeleteForceStopped deletes with --force a container whose init has
// exited already: that must succeed as a plain delete does.
func TestDeleteForceStopped(t *testing.T) {
	d := startDaemon(t)
	id := newID("forcestopped")
	d.run(id, demoBundle(t))
	d.mustCtl("kill KILL\n", id)
	d.waitState(id, "stopped")
	d.forceDelete(id)
	checkGone(t, d, id)
}

// hookBundle makes a bundle whose createRuntime hook sleeps for secs
// seconds on the host, so that a create takes that long.
func hookBundle(t *testing.T, secs int) string {
	t.Helper()
	b := newBundle(t, "sh", "-c", demoScript)
	config := filepath.Join(b, "config.json")
	data, err := os.ReadFile(config)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Hooks == nil {
		spec.Hooks = &specs.Hooks{}
	}
	spec.Hooks.CreateRuntime = []specs.Hook{{Path: bundle.BusyboxPath, Args: []string{"busybox", "sleep", strconv.Itoa(secs)}}}
	data, err = json.MarshalIndent(&spec, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// processesMentioning returns "PID: cmdline" of every process whose
// command line contains one of subs.
func processesMentioning(subs ...string) []string {
	ents, _ := os.ReadDir("/proc")
	var found []string
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(raw) == 0 {
			continue
		}
		cmdline := strings.TrimRight(strings.ReplaceAll(string(raw), "\x00", " "), " ")
		for _, s := range subs {
			if strings.Contains(cmdline, s) {
				if processAlive(pid, 0) {
					found = append(found, fmt.Sprintf("%d: %s", pid, cmdline))
				}
				break
			}
		}
	}
	return found
}

// TestCrashMidCreateUndone kills the daemon with SIGKILL while a create is
// under way (a createRuntime hook makes it last 3 s): the restarted daemon
// must undo it entirely: not listed, no state dir left, nothing in runc, no
// shim nor runtime process left.
func TestCrashMidCreateUndone(t *testing.T) {
	d := startDaemon(t)
	b := hookBundle(t, 3)
	id := newID("midcreate")
	dir := filepath.Join(d.state, id)

	type result struct {
		res string
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := d.ctl("run " + id + " " + b + "\n")
		done <- result{res, err}
	}()

	// The create is under way once its shim has recorded itself.
	shimPidFile := filepath.Join(dir, "init", "shim.pid")
	waitFor(t, "the create's shim.pid", func() (bool, string) {
		_, _, err := readPidFile(shimPidFile)
		return err == nil, fmt.Sprint(err)
	})
	spid, sstart, err := readPidFile(shimPidFile)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	select {
	case r := <-done:
		t.Fatalf("the create returned before the crash (the hook did not hold it): %v: %q", r.err, r.res)
	default:
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		t.Fatalf("%s/state.json exists before the crash: the create is not under way", dir)
	}
	t.Logf("killing ctrfs mid-create; shim %d; processes: %q", spid, processesMentioning(dir, id))
	d.kill()
	select {
	case r := <-done:
		t.Logf("the interrupted write (the daemon died): %v: %q", r.err, r.res)
	case <-time.After(opTimeout + 5*time.Second):
		t.Errorf("the write to ctl did not return after the daemon died")
	}

	d.restart()
	if slices.Contains(d.containers(), id) {
		t.Errorf("%s listed after the restart, want the cut-short create undone", id)
	}
	if _, err := d.tryRead(id, "state"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("read %s/state after the restart: %v, want ENOENT", id, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s after the restart: %v, want it gone", dir, err)
	}
	for _, name := range d.stateEntries() {
		if strings.Contains(name, id) {
			t.Errorf("%s left in the state dir after the restart", name)
		}
	}
	if slices.Contains(d.runcIDs(), id) {
		t.Errorf("runc lists %s after the restart", id)
	}
	if processAlive(spid, sstart) {
		t.Errorf("the shim %d of the cut-short create is alive after the restart", spid)
	}
	waitFor(t, "no process to mention "+id, func() (bool, string) {
		left := processesMentioning(dir, id)
		return len(left) == 0, fmt.Sprintf("%q", left)
	})
	// The id is free again.
	d.run(id, demoBundle(t))
	d.forceDelete(id)
	checkGone(t, d, id)
}
