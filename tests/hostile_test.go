package tests

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/images/imagetest"
)

// ctlErr runs cmd on the ctl at elem and wants it refused with errno want,
// the result text holding each of texts.
func (d *daemon) ctlErr(cmd string, want syscall.Errno, texts []string, elem ...string) {
	d.tb.Helper()
	out, err := d.ctl(cmd, elem...)
	if !errors.Is(err, want) {
		d.tb.Errorf("%q: err %v, want %v (result %q)", cmd, err, want, out)
		return
	}
	for _, t := range texts {
		if !strings.Contains(out, t) {
			d.tb.Errorf("%q: result %q, want it to say %q", cmd, out, t)
		}
	}
}

// TestHostileBundleConfig: a bundle's config.json that is a FIFO, a link to
// /dev/zero or out of the bundle, or too large is refused at once with
// EINVAL and a reason; nothing is left, the daemon lives. A link that stays
// inside the bundle is followed. --checkpoint-dir's NAME/config.json too.
func TestHostileBundleConfig(t *testing.T) {
	d := startDaemon(t)
	good := newBundle(t, "sleep", "1000")
	raw, err := os.ReadFile(filepath.Join(good, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(name string, make func(cfg string) error) string {
		b := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := make(filepath.Join(b, "config.json")); err != nil {
			t.Fatal(err)
		}
		return b
	}
	outside := filepath.Join(t.TempDir(), "outside.json")
	os.WriteFile(outside, raw, 0o644)
	for _, c := range []struct {
		name, bundle, says string
	}{
		{"fifo", mk("fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }), "FIFO"},
		{"dev-zero", mk("zero", func(p string) error { return os.Symlink("/dev/zero", p) }), "leads out of"},
		{"link-out", mk("out", func(p string) error { return os.Symlink(outside, p) }), "leads out of"},
		{"dot-dot", mk("dotdot", func(p string) error { return os.Symlink("../../outside.json", p) }), "leads out of"},
		{"dir", mk("dir", func(p string) error { return os.Mkdir(p, 0o755) }), "directory"},
		{"too-large", mk("large", func(p string) error { return os.WriteFile(p, make([]byte, 5<<20), 0o644) }), "too large"},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := d.on(t)
			id := newID("hb")
			d.ctlErr("run "+id+" "+c.bundle+"\n", syscall.EINVAL, []string{"config.json", c.says})
			if got := d.containers(); len(got) != 0 {
				t.Errorf("containers after a refused run: %v", got)
			}
		})
	}
	t.Run("link-inside", func(t *testing.T) {
		d := d.on(t)
		var spec map[string]any
		json.Unmarshal(raw, &spec)
		spec["root"].(map[string]any)["path"] = filepath.Join(good, "rootfs")
		absRoot, _ := json.Marshal(spec)
		inside := mk("in", func(p string) error {
			os.WriteFile(filepath.Join(filepath.Dir(p), "real.json"), absRoot, 0o644)
			return os.Symlink("real.json", p)
		})
		id := newID("hb")
		d.mustCtl("create " + id + " " + inside + "\n")
		d.forceDelete(id)
	})
	t.Run("checkpoint-dir-fifo", func(t *testing.T) {
		d := d.on(t)
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "cp"), 0o755)
		syscall.Mkfifo(filepath.Join(dir, "cp", "config.json"), 0o644)
		d.ctlErr("run "+newID("hb")+" "+good+" --checkpoint cp --checkpoint-dir "+dir+"\n", syscall.EINVAL, []string{"FIFO"})
	})
	t.Run("checkpoint-dir-zero", func(t *testing.T) {
		d := d.on(t)
		dir := t.TempDir()
		os.Mkdir(filepath.Join(dir, "cp"), 0o755)
		os.Symlink("/dev/zero", filepath.Join(dir, "cp", "config.json"))
		d.ctlErr("run "+newID("hb")+" "+good+" --checkpoint cp --checkpoint-dir "+dir+"\n", syscall.EINVAL, []string{"config.json"})
	})
	if !d.alive() {
		t.Fatal("the daemon died")
	}
	if got := d.stateDirs(); len(got) != 0 {
		t.Errorf("state dirs left: %v", got)
	}
}

// TestHostileCheckpointsDir: the bundle's owner (not root) turns
// checkpoints/ into a symlink to a root-owned directory elsewhere, links a
// checkpoint's config.json to /dev/zero, links a checkpoint to a directory
// elsewhere: ls, cat and rmdir in checkpoints/ never follow them, never
// delete outside the bundle, never read /dev/zero.
func TestHostileCheckpointsDir(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sleep", "1000")
	id := newID("hc")
	d.run(id, b)
	defer d.forceDelete(id)
	const owner = 65534
	chownR(t, b, owner)

	victim := t.TempDir() // root's
	precious := filepath.Join(victim, "keep")
	os.Mkdir(precious, 0o700)
	os.WriteFile(filepath.Join(precious, "config.json"), []byte(`{"name":"keep"}`), 0o600)
	cps := filepath.Join(b, "checkpoints")

	// checkpoints -> a root-owned directory elsewhere.
	symlinkAs(t, victim, cps, owner)
	if err := os.Remove(d.path(id, "checkpoints", "keep")); err == nil {
		t.Error("rmdir checkpoints/keep through a symlinked checkpoints/ succeeded")
	}
	if _, err := os.Stat(filepath.Join(precious, "config.json")); err != nil {
		t.Fatalf("the directory outside the bundle was touched: %v", err)
	}
	if names, _ := os.ReadDir(d.path(id, "checkpoints")); len(names) != 0 {
		t.Errorf("checkpoints/ through a symlink lists %v", names)
	}
	os.Remove(cps)

	// A real checkpoints/ with links inside.
	os.Mkdir(cps, 0o755)
	os.Chown(cps, owner, owner)
	os.Mkdir(filepath.Join(cps, "zero"), 0o755)
	symlinkAs(t, "/dev/zero", filepath.Join(cps, "zero", "config.json"), owner)
	symlinkAs(t, precious, filepath.Join(cps, "away"), owner)
	os.Mkdir(filepath.Join(cps, "big"), 0o755)
	os.WriteFile(filepath.Join(cps, "big", "config.json"), make([]byte, 1<<20), 0o644)
	os.Mkdir(filepath.Join(cps, "ok"), 0o755)
	os.WriteFile(filepath.Join(cps, "ok", "config.json"), []byte(`{"name":"ok"}`), 0o644)
	if got := d.readDir(id, "checkpoints"); strings.Join(got, " ") != "big ok" {
		t.Errorf("checkpoints/ lists %v, want [big ok]", got)
	}
	for _, name := range []string{"zero", "away", "big"} {
		if _, err := readWithin(d.path(id, "checkpoints", name, "config.json"), 20*time.Second); err == nil {
			t.Errorf("checkpoints/%s/config.json was read", name)
		}
	}
	if err := os.Remove(d.path(id, "checkpoints", "away")); err == nil {
		t.Error("rmdir checkpoints/away (a symlink out) succeeded")
	}
	if _, err := os.Stat(filepath.Join(precious, "config.json")); err != nil {
		t.Fatalf("rmdir followed a symlink out of the bundle: %v", err)
	}
	if got := d.read(id, "checkpoints", "ok", "config.json"); got != `{"name":"ok"}` {
		t.Errorf("ok/config.json = %q", got)
	}
	// A checkpoint with a symlink inside: removed, the link's target kept.
	symlinkAs(t, precious, filepath.Join(cps, "ok", "link"), owner)
	if err := os.Remove(d.path(id, "checkpoints", "ok")); err != nil {
		t.Errorf("rmdir checkpoints/ok: %v", err)
	}
	if _, err := os.Stat(filepath.Join(precious, "config.json")); err != nil {
		t.Fatalf("removing a checkpoint followed its symlink: %v", err)
	}
	if !d.alive() {
		t.Fatal("the daemon died")
	}
}

func chownR(t *testing.T, dir string, uid int) {
	t.Helper()
	filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			os.Lchown(p, uid, uid)
		}
		return nil
	})
}

// symlinkAs makes the symlink as the bundle's owner would.
func symlinkAs(t *testing.T, target, link string, uid int) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	os.Lchown(link, uid, uid)
}

// TestHostileBytes: arguments, environment and labels that are not UTF-8
// would be changed to U+FFFD on their way through JSON: refused, EINVAL.
// UTF-8 ones keep their bytes, across a kill -9 and restart too.
func TestHostileBytes(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sleep", "1000")
	id := newID("hy")
	d.ctlErr("run "+id+" "+b+" --label k=a\xff\xfeb\n", syscall.EINVAL, []string{"UTF-8"})
	label := "é✓\u00a0ok"
	d.run(id, b, "--label", "k="+label)
	defer d.forceDelete(id)
	d.ctlErr("exec x -- printf %s \xff\xfe\n", syscall.EINVAL, []string{"UTF-8"}, id)
	d.ctlErr("exec x --env A=\xff -- true\n", syscall.EINVAL, []string{"UTF-8"}, id)
	d.ctlErr("exec x {\"args\":[\"printf\",\"\xff\"]}\n", syscall.EINVAL, []string{"UTF-8"}, id)
	// UTF-8 bytes reach the process exactly.
	d.mustCtl("exec x -- printf %s "+label+"\n", id)
	d.waitContent("0", id, "processes", "x", "exit")
	if got := d.read(id, "processes", "x", "stdout"); got != label {
		t.Errorf("the process printed %q, want %q", got, label)
	}
	if got := d.read(id, "labels"); !strings.Contains(got, label) {
		t.Errorf("labels = %q, want %q in it", got, label)
	}
	d.kill()
	d.restart()
	if got := d.read(id, "labels"); !strings.Contains(got, label) {
		t.Errorf("labels after a restart = %q, want %q in it", got, label)
	}
}

// TestHostileChmod: chmod and chown on the mount are refused (EACCES), not
// accepted and ignored.
func TestHostileChmod(t *testing.T) {
	d := startDaemon(t)
	id := newID("hm")
	d.run(id, newBundle(t, "sleep", "1000"))
	defer d.forceDelete(id)
	for _, p := range [][]string{{}, {"ctl"}, {id}, {id, "state"}, {id, "ctl"}, {id, "processes", "init"}, {id, "processes", "init", "stdout"}} {
		path := d.path(p...)
		if err := os.Chmod(path, 0o777); !errors.Is(err, syscall.EACCES) {
			t.Errorf("chmod %s: %v, want EACCES", path, err)
		}
		if err := os.Chown(path, 1, 1); !errors.Is(err, syscall.EACCES) {
			t.Errorf("chown %s: %v, want EACCES", path, err)
		}
	}
}

// TestHostileUser: --user above what runc takes is refused by ctrfs.
func TestHostileUser(t *testing.T) {
	d := startDaemon(t)
	id := newID("hu")
	d.run(id, newBundle(t, "sleep", "1000"))
	defer d.forceDelete(id)
	for _, u := range []string{"2147483648", "4294967294", "0:2147483648"} {
		d.ctlErr("exec x --user "+u+" -- true\n", syscall.EINVAL, []string{"2147483647"}, id)
	}
	d.mustCtl("exec y --user 2147483647 -- true\n", id)
	d.waitContent("0", id, "processes", "y", "exit")
}

// TestHostileStateDirMode: an existing state dir open to others is
// tightened to 0700 at start.
func TestHostileStateDirMode(t *testing.T) {
	d := newDaemon(t)
	if err := os.MkdirAll(d.state, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(d.state, 0o755)
	d.start()
	st, err := os.Stat(d.state)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %v, want 0700", st.Mode().Perm())
	}
}

// TestHostileSIGPIPE: the daemon's stderr is a pipe whose reader has gone
// (a `| tee` interrupted): the daemon lives on and serves the mount.
func TestHostileSIGPIPE(t *testing.T) {
	requireIntegration(t)
	dir := t.TempDir()
	mnt, state := filepath.Join(dir, "mnt"), filepath.Join(dir, "state")
	os.Mkdir(mnt, 0o755)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(ctrfsBin, "mount", "--state-dir", state, "--log-level", "debug", mnt)
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	pr.Close() // the reader goes
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
		}
		exec.Command("fusermount3", "-u", mnt).Run()
		exec.Command("umount", "-l", mnt).Run()
		cleanupRunc(t, filepath.Join(state, "runc"))
	})
	waitFor(t, "the mount", func() (bool, string) {
		_, err := readWithin(filepath.Join(mnt, "version"), 2*time.Second)
		return err == nil, strconv.Quote(errString(err))
	})
	// Orders log: each log line now meets EPIPE.
	b := newBundle(t, "sleep", "1000")
	id := newID("hp")
	for i := 0; i < 3; i++ {
		transact(filepath.Join(mnt, "ctl"), []byte("run "+id+" "+b+"\n"))
		transact(filepath.Join(mnt, id, "ctl"), []byte("delete --force\n"))
	}
	select {
	case err := <-done:
		t.Fatalf("the daemon died: %v", err)
	default:
	}
	if _, err := readWithin(filepath.Join(mnt, "version"), 5*time.Second); err != nil {
		t.Fatalf("the mount does not answer: %v", err)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestHostileUpdateFullState: with the state directory full, `update
// pids=100` fails, and status.resources says what the kernel has.
func TestHostileUpdateFullState(t *testing.T) {
	requireIntegration(t)
	state := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", state).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		cleanupRunc(t, filepath.Join(state, "runc"))
		exec.Command("umount", "-l", state).Run()
	})
	d := startDaemon(t, "--state-dir", state)
	id := newID("hf")
	d.run(id, limitedBundle(t, 64<<20, 50, "sleep", "1000"))
	defer d.forceDelete(id)
	pid := d.initPid(id)
	filler := filepath.Join(state, "filler")
	exec.Command("dd", "if=/dev/zero", "of="+filler, "bs=64k").Run() // until ENOSPC
	_, err := d.ctl("update pids=100\n", id)
	os.Remove(filler)
	if err == nil {
		t.Log("update succeeded on a full state dir")
	}
	kernel := readUintFile(t, hostCgroupFile(t, pid, "pids", "pids.max"))
	status := jsonPath(d.statusResources(id), "pids", "limit")
	if n, ok := status.(float64); !ok || uint64(n) != kernel {
		t.Errorf("after update (err %v): status pids.limit %v, kernel pids.max %d", err, status, kernel)
	}
}

// TestHostileCheckpointCutShort: kill -9 of the daemon while a checkpoint
// runs (a runtime wrapper whose `checkpoint` writes an image and waits in a
// child, as runc waits for CRIU): at the next start the runtime and its
// child are killed, the temporary directory and checkpoints/ removed.
func TestHostileCheckpointCutShort(t *testing.T) {
	requireIntegration(t)
	if _, err := exec.LookPath("criu"); err != nil {
		imagetest.SkipOrFail(t, "criu is not installed (apt-get install criu): ctrfs refuses to checkpoint without it")
	}
	wrapDir := t.TempDir()
	wrapper := filepath.Join(wrapDir, "runc-wrap")
	script := `#!/bin/sh
for a; do
	if [ "$a" = checkpoint ]; then
		img=
		prev=
		for b; do [ "$prev" = --image-path ] && img=$b; prev=$b; done
		echo image > "$img/pages-1.img"
		echo $$ > ` + wrapDir + `/runc.pid
		sleep 1000 &
		echo $! > ` + wrapDir + `/criu.pid
		wait
		exit 1
	fi
done
exec runc "$@"
`
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--runtime", wrapper)
	b := newBundle(t, "sleep", "1000")
	id := newID("hk")
	d.run(id, b)
	defer d.forceDelete(id)
	go d.ctl("checkpoint cp1\n", id) // ends with the daemon
	pidOf := func(name string) int {
		s, _ := os.ReadFile(filepath.Join(wrapDir, name))
		n, _ := strconv.Atoi(strings.TrimSpace(string(s)))
		return n
	}
	waitFor(t, "the checkpoint under way", func() (bool, string) {
		tmps, _ := filepath.Glob(filepath.Join(b, "checkpoints", ".cp1.tmp-*", "pages-1.img"))
		return len(tmps) == 1 && pidOf("criu.pid") > 0, strings.Join(tmps, " ")
	})
	runcPid, criuPid := pidOf("runc.pid"), pidOf("criu.pid")
	t.Cleanup(func() { syscall.Kill(runcPid, syscall.SIGKILL); syscall.Kill(criuPid, syscall.SIGKILL) })
	d.kill()
	d.restart()
	for _, p := range []int{runcPid, criuPid} {
		pid := p
		waitFor(t, "the runtime's processes gone", func() (bool, string) {
			return !processAlive(pid, 0), strconv.Itoa(pid)
		})
	}
	if left, _ := filepath.Glob(filepath.Join(b, "checkpoints", "*")); len(left) != 0 {
		t.Errorf("left in checkpoints/: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(b, "checkpoints", ".*")); len(left) != 0 {
		t.Errorf("left in checkpoints/: %v", left)
	}
	if _, err := os.Stat(filepath.Join(b, "checkpoints")); err == nil {
		t.Error("checkpoints/, made by the order, is left")
	}
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("state after the restart: %q", got)
	}
	if !strings.Contains(d.logTail(), "checkpoint cut short") {
		t.Error("the daemon's log does not say it undid a checkpoint")
	}
}
