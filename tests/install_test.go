package tests

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// `make install` and the systemd service: the files it installs, the unit
// as systemd-analyze reads it, and the readiness protocol the unit's
// Type=notify relies on, spoken by the installed daemon.

// needTool skips tb when a tool is missing (fails it under
// CTRFS_REQUIRE_INTEGRATION=1).
func needTool(tb testing.TB, tool string) string {
	tb.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
			tb.Fatalf("%s not found (CTRFS_REQUIRE_INTEGRATION=1)", tool)
		}
		tb.Skipf("%s not found", tool)
	}
	return p
}

// hostOnly skips a test in the QEMU guests (tests/vm sets
// CTRFS_TEST_IN_GUEST=1) that needs what only the build host has; the host
// suite of the same `make test` runs it, so the skip hides nothing.
func hostOnly(tb testing.TB, why string) {
	tb.Helper()
	if os.Getenv("CTRFS_TEST_IN_GUEST") == "1" {
		tb.Skipf("host suite only: %s", why)
	}
}

// makeInstall runs `make install` in the repository with vars
// (NAME=VALUE) and returns its output.
func makeInstall(tb testing.TB, target string, vars ...string) string {
	tb.Helper()
	hostOnly(tb, "make install builds with the Go toolchain, which the guest image has not")
	needTool(tb, "make")
	cmd := exec.Command("make", append([]string{"-C", "..", target}, vars...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tb.Fatalf("make %s %v: %v\n%s", target, vars, err, out)
	}
	return string(out)
}

func TestMakeInstall(t *testing.T) {
	dest := t.TempDir()
	makeInstall(t, "install", "DESTDIR="+dest)
	want := map[string]os.FileMode{
		"usr/local/bin/ctrfs":                            0o755,
		"usr/local/bin/ctrfs-shim":                       0o755,
		"usr/local/bin/ctrfs-cri":                        0o755,
		"usr/local/lib/systemd/system/ctrfs.service":     0o644,
		"usr/local/lib/systemd/system/ctrfs-cri.service": 0o644,
		"etc/default/ctrfs":                              0o644,
		"etc/default/ctrfs-cri":                          0o644,
		"usr/local/share/man/man8/ctrfs.8":               0o644,
	}
	var got []string
	filepath.Walk(dest, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			rel, _ := filepath.Rel(dest, p)
			got = append(got, rel)
			if m, ok := want[rel]; !ok {
				t.Errorf("make install put %s, which it should not", rel)
			} else if fi.Mode().Perm() != m {
				t.Errorf("%s: mode %v, want %v", rel, fi.Mode().Perm(), m)
			}
		}
		return nil
	})
	if len(got) != len(want) {
		t.Errorf("make install DESTDIR put %v, want %d files", got, len(want))
	}

	// The installed daemon runs and knows its version.
	if out, err := exec.Command(filepath.Join(dest, "usr/local/bin/ctrfs"), "version").Output(); err != nil || !strings.HasPrefix(string(out), "ctrfs ") {
		t.Errorf("installed ctrfs version: %q, %v", out, err)
	}

	unit := readFile(t, filepath.Join(dest, "usr/local/lib/systemd/system/ctrfs.service"))
	for _, line := range []string{
		"Type=notify", "KillMode=process", "Restart=on-failure", "Delegate=yes",
		"EnvironmentFile=-/etc/default/ctrfs",
		"ExecStart=/usr/local/bin/ctrfs mount $CTRFS_OPTS ${CTRFS_MOUNTPOINT}",
	} {
		if !strings.Contains(unit, "\n"+line+"\n") {
			t.Errorf("ctrfs.service has no line %q:\n%s", line, unit)
		}
	}
	if strings.Contains(unit, "@") {
		t.Errorf("ctrfs.service still has a placeholder:\n%s", unit)
	}
	criUnit := readFile(t, filepath.Join(dest, "usr/local/lib/systemd/system/ctrfs-cri.service"))
	for _, line := range []string{
		"Wants=ctrfs.service", "EnvironmentFile=-/etc/default/ctrfs", "EnvironmentFile=-/etc/default/ctrfs-cri",
		"ExecStart=/usr/local/bin/ctrfs-cri --mount ${CTRFS_MOUNTPOINT} $CTRFS_CRI_OPTS",
	} {
		if !strings.Contains(criUnit, "\n"+line+"\n") || strings.Contains(criUnit, "@") {
			t.Errorf("ctrfs-cri.service has no line %q, or a placeholder:\n%s", line, criUnit)
		}
	}
	if env := readFile(t, filepath.Join(dest, "etc/default/ctrfs-cri")); !strings.Contains(env, "\nCTRFS_CRI_OPTS=\"--listen /run/ctrfs-cri.sock") {
		t.Errorf("/etc/default/ctrfs-cri:\n%s", env)
	}
	env := readFile(t, filepath.Join(dest, "etc/default/ctrfs"))
	if !strings.Contains(env, "\nCTRFS_MOUNTPOINT=/mnt/ctr\n") || !strings.Contains(env, "\nCTRFS_OPTS=") {
		t.Errorf("/etc/default/ctrfs:\n%s", env)
	}

	// The man page: rendered without a warning, with every flag of the
	// daemon and the file tree of docs/files.md in it.
	man := filepath.Join(dest, "usr/local/share/man/man8/ctrfs.8")
	needTool(t, "groff")
	cmd := exec.Command("groff", "-man", "-Tutf8", "-ww", "-P-cbou")
	cmd.Stdin = bytes.NewReader([]byte(readFile(t, man)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	page, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Errorf("groff of ctrfs.8: %v\n%s", err, stderr.String())
	}
	flags, _ := exec.Command(ctrfsBin, "mount", "-h").CombinedOutput()
	for _, l := range strings.Split(string(flags), "\n") {
		if f, ok := strings.CutPrefix(l, "  -"); ok {
			name := "--" + strings.Fields(f)[0]
			if !bytes.Contains(page, []byte(name)) {
				t.Errorf("ctrfs(8) does not document %s", name)
			}
		}
	}
	for _, s := range []string{"SYNOPSIS", "OPTIONS", "THE FILE TREE", "/mnt/ctr/ps (mode 0440)", "KillMode=process", "EBUSY"} {
		if !bytes.Contains(page, []byte(s)) {
			t.Errorf("ctrfs(8) has no %q", s)
		}
	}

	// A second install keeps the admin's settings; uninstall keeps them too.
	os.WriteFile(filepath.Join(dest, "etc/default/ctrfs"), []byte("CTRFS_OPTS=--log-level debug\n"), 0o644)
	if out := makeInstall(t, "install", "DESTDIR="+dest); !strings.Contains(out, "kept ") {
		t.Errorf("second make install did not say it kept the flags file:\n%s", out)
	}
	if got := readFile(t, filepath.Join(dest, "etc/default/ctrfs")); got != "CTRFS_OPTS=--log-level debug\n" {
		t.Errorf("make install overwrote /etc/default/ctrfs: %q", got)
	}
	makeInstall(t, "uninstall", "DESTDIR="+dest)
	for rel := range want {
		if _, err := os.Stat(filepath.Join(dest, rel)); strings.HasPrefix(rel, "etc/default/") != (err == nil) {
			t.Errorf("after uninstall, %s: %v", rel, err)
		}
	}
}

func readFile(tb testing.TB, p string) string {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// TestInstalledUnitVerifies installs under a temp PREFIX (so the unit's
// paths exist) and has systemd-analyze verify the unit; a broken copy must
// fail, so the check is known to check.
func TestInstalledUnitVerifies(t *testing.T) {
	hostOnly(t, "make install builds with the Go toolchain, which the guest image has not")
	analyze := needTool(t, "systemd-analyze")
	root := t.TempDir()
	makeInstall(t, "install", "PREFIX="+root+"/usr", "SYSCONFDIR="+root+"/etc")
	unit := filepath.Join(root, "usr/lib/systemd/system/ctrfs.service")
	verify := func(path string) (string, error) {
		cmd := exec.Command(analyze, "verify", path)
		// Documentation=man:ctrfs(8) is checked with man(1).
		cmd.Env = append(os.Environ(), "MANPATH="+root+"/usr/share/man")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, u := range []string{unit, filepath.Join(root, "usr/lib/systemd/system/ctrfs-cri.service")} {
		if out, err := verify(u); err != nil || strings.TrimSpace(out) != "" {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	broken := filepath.Join(t.TempDir(), "ctrfs.service")
	os.WriteFile(broken, []byte(strings.Replace(readFile(t, unit), root+"/usr/bin/ctrfs", root+"/nosuch/ctrfs", 1)), 0o644)
	if out, err := verify(broken); err == nil {
		t.Errorf("systemd-analyze verify passed a unit whose ExecStart does not exist:\n%s", out)
	}
}

// TestNotifyReady runs the installed daemon as systemd would, with
// $NOTIFY_SOCKET naming an abstract socket the test listens on: READY=1
// arrives once the mount serves, a container runs (the installed daemon
// finds the installed shim) and none of its processes sees the socket,
// and SIGTERM sends STOPPING=1.
func TestNotifyReady(t *testing.T) {
	root := t.TempDir()
	makeInstall(t, "install", "PREFIX="+root+"/usr", "SYSCONFDIR="+root+"/etc")
	name := fmt.Sprintf("@ctrfs-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	type note struct {
		msg            string
		mounted, reads bool
	}
	notes := make(chan note, 8)
	d := newDaemon(t)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := sock.Read(buf)
			if err != nil {
				close(notes)
				return
			}
			nt := note{msg: string(buf[:n])}
			if strings.Contains(nt.msg, "READY=1") {
				// Checked the moment it arrives.
				nt.mounted = isMounted(d.mnt)
				_, err := readWithin(d.path("version"), opTimeout)
				nt.reads = err == nil
			}
			notes <- nt
		}
	}()
	next := func(what string) note {
		t.Helper()
		select {
		case nt := <-notes:
			return nt
		case <-time.After(waitTimeout):
			t.Fatalf("no %s notification in %v\n%s", what, waitTimeout, d.logTail())
		}
		return note{}
	}
	d.bin = filepath.Join(root, "usr/bin/ctrfs")
	d.env = []string{"NOTIFY_SOCKET=" + name}
	d.start()
	ready := next("READY=1")
	if ready.msg != "READY=1\nSTATUS=serving "+d.mnt || !ready.mounted || !ready.reads {
		t.Errorf("first notification %q: mounted %v, version readable %v; want READY=1 once serving", ready.msg, ready.mounted, ready.reads)
	}

	id := newID("notify")
	d.run(id, demoBundle(t))
	shimPid, _, err := readPidFile(filepath.Join(d.state, id, "init", "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range []int{shimPid, d.initPid(id)} {
		environ, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(environ, []byte("NOTIFY_SOCKET")) {
			t.Errorf("process %d of the container has NOTIFY_SOCKET in its environment", pid)
		}
	}
	d.stop()
	if nt := next("STOPPING=1"); nt.msg != "STOPPING=1" {
		t.Errorf("notification at SIGTERM = %q, want STOPPING=1", nt.msg)
	}
	select {
	case nt, ok := <-notes:
		if ok {
			t.Errorf("more notifications than READY and STOPPING: %q", nt.msg)
		}
	default:
	}
	if !processAlive(shimPid, 0) {
		t.Error("the container's shim died with the daemon")
	}
	var ee *exec.ExitError
	if err := d.exitErr(); errors.As(err, &ee) {
		t.Errorf("daemon exit: %v", err)
	}
}

// guestSlowCRI is why the CRI tests that touch neither cgroups nor CRIU
// (pod network, streams, user names) run on the host only: under the
// guests' emulation each takes minutes, and the cgroup version changes
// nothing they check.
const guestSlowCRI = "the pod network, streams and user names do not depend on the cgroup version, and under emulation this test takes minutes"
