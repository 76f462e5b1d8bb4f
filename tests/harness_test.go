// Package tests holds the end-to-end tests of ctrfs: a real daemon and shim
// built from this tree, a real FUSE mount, real runc and real containers.
//
// They need root, /dev/fuse, runc, fusermount3 and a static busybox. Without
// them every test skips and says why, unless CTRFS_REQUIRE_INTEGRATION=1 is
// set (as CI does), in which case a missing prerequisite is a failure.
package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/internal/procfs"
	"github.com/ctrfs/ctrfs/tests/bundle"
)

var (
	// waitTimeout bounds every wait for a state change. Generous on purpose:
	// the tests assert what happens, never how fast.
	waitTimeout = 20 * time.Second * timeoutScale()
	// opTimeout bounds one file system operation, so that a hung FUSE server
	// fails the test instead of hanging it.
	opTimeout = 30 * time.Second * timeoutScale()
)

// timeoutScale is CTRFS_TEST_TIMEOUT_SCALE (default 1): tests/vm sets it, as
// its guests run under software emulation, several times slower.
func timeoutScale() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("CTRFS_TEST_TIMEOUT_SCALE")); err == nil && n > 1 {
		return time.Duration(n)
	}
	return 1
}

const (
	// pollEvery is the polling period of the waits.
	pollEvery = 20 * time.Millisecond
	// logTail is how many lines of the daemon's log a failed test shows.
	logTail = 80
)

var (
	// binDir holds ctrfs and ctrfs-shim, built by TestMain.
	binDir   string
	ctrfsBin string
	shimBin  string
	buildErr error
	buildOut string
)

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "ctrfs-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "tests:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		ctrfsBin = filepath.Join(dir, "ctrfs")
		shimBin = filepath.Join(dir, "ctrfs-shim")
		cmd := exec.Command("go", "build", "-o", dir+"/", "./cmd/ctrfs", "./cmd/ctrfs-shim")
		cmd.Dir = ".."                                  // the repository root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as `make build` makes them
		if os.Getenv("CTRFS_RACE") == "1" {
			// The daemon and the shim under the race detector (it needs cgo);
			// a race report makes the binary exit 66.
			cmd = exec.Command("go", "build", "-race", "-o", dir+"/", "./cmd/ctrfs", "./cmd/ctrfs-shim")
			cmd.Dir = ".."
		}
		if pre := os.Getenv("CTRFS_TEST_BIN_DIR"); pre != "" {
			// Built beforehand, where there is no Go toolchain (the VM suite, tests/vm).
			cmd = exec.Command("cp", filepath.Join(pre, "ctrfs"), filepath.Join(pre, "ctrfs-shim"), dir+"/")
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			buildOut = string(out)
		}
		code := m.Run()
		if demoParent != "" {
			os.RemoveAll(demoParent)
		}
		printRatios()
		return code
	}()
	os.Exit(code)
}

// missingPrerequisite says what the integration tests lack on this machine,
// or "" when nothing is missing.
func missingPrerequisite() string {
	if os.Geteuid() != 0 {
		return "not root"
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return "no /dev/fuse"
	}
	for _, bin := range []string{"runc", "fusermount3"} {
		if _, err := exec.LookPath(bin); err != nil {
			return "no " + bin + " in $PATH"
		}
	}
	if _, err := os.Stat(bundle.BusyboxPath); err != nil {
		return "no " + bundle.BusyboxPath + " (busybox-static)"
	}
	return ""
}

// requireIntegration skips tb when the machine lacks what the end-to-end
// tests need, or fails it when CTRFS_REQUIRE_INTEGRATION=1. It fails tb when
// the binaries did not build.
func requireIntegration(tb testing.TB) {
	tb.Helper()
	if why := missingPrerequisite(); why != "" {
		if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
			tb.Fatalf("integration prerequisite missing: %s (CTRFS_REQUIRE_INTEGRATION=1)", why)
		}
		tb.Skipf("integration prerequisite missing: %s", why)
	}
	if buildErr != nil {
		tb.Fatalf("go build ./cmd/ctrfs ./cmd/ctrfs-shim: %v\n%s", buildErr, buildOut)
	}
}

// ---------------------------------------------------------------------------
// Bundles and ids

var (
	demoOnce   sync.Once
	demoDir    string
	demoErr    error
	demoParent string
)

// demoScript is the init of the demo container: prints the date every second
// and exits 143 on TERM (pid 1 of a pid namespace needs the trap).
const demoScript = `trap "exit 143" TERM; while :; do date; sleep 1 & wait $!; done`

// demoBundle returns the path of a bundle shared by the whole run, whose
// init is demoScript. Tests must not modify it.
func demoBundle(tb testing.TB) string {
	tb.Helper()
	demoOnce.Do(func() {
		demoParent, demoErr = os.MkdirTemp("", "ctrfs-e2e-bundle-")
		if demoErr != nil {
			return
		}
		demoDir = filepath.Join(demoParent, "demo")
		demoErr = bundle.Busybox(demoDir, "sh", "-c", demoScript)
	})
	if demoErr != nil {
		tb.Fatalf("demo bundle: %v", demoErr)
	}
	return demoDir
}

// newBundle makes a bundle of its own for tb, running args.
func newBundle(tb testing.TB, args ...string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "ctrfs-e2e-bundle-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	b := filepath.Join(dir, "b")
	if err := bundle.Busybox(b, args...); err != nil {
		tb.Fatalf("bundle: %v", err)
	}
	return b
}

// newID returns a container id unique to this run: runc puts a container
// without cgroupsPath in the cgroup /<id>, shared by every runc root of the
// host, so ids must never collide with another test's or another user's.
func newID(prefix string) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + "-" + hex.EncodeToString(b[:])
}

// ---------------------------------------------------------------------------
// The daemon

// daemon is one ctrfs mount served by a ctrfs process built from this tree.
// Its mountpoint and state dir live as long as the test; the process can be
// stopped, killed and started again on them.
//
// A daemon value reports failures to one test; on gives a view of the same
// daemon for a subtest.
type daemon struct {
	tb testing.TB
	*daemonProc
}

type daemonProc struct {
	dir   string // temp dir holding everything below
	mnt   string // the mountpoint
	state string // --state-dir
	log   string // the daemon's stdout+stderr, across restarts
	args  []string
	// cwd and stateArg, when set, are the daemon's working directory and
	// the --state-dir it is given (relative to cwd); state is then their
	// join.
	cwd, stateArg string
	// env is added to the daemon's environment (KEY=VALUE).
	env []string
	// bin is the ctrfs binary to run; ctrfsBin when empty.
	bin string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error
	starts  int
}

// on returns the same daemon reporting to tb (a subtest).
func (d *daemon) on(tb testing.TB) *daemon {
	return &daemon{tb: tb, daemonProc: d.daemonProc}
}

// startDaemon mounts a new ctrfs for tb and waits until it answers. Extra
// args go before the mountpoint. Everything is cleaned up when tb ends.
func startDaemon(tb testing.TB, args ...string) *daemon {
	tb.Helper()
	d := newDaemon(tb, args...)
	d.start()
	return d
}

// startDaemonRelative is startDaemon with the daemon started in its temp
// dir (cmd.Dir) and given `--state-dir stateRel`, a relative path: the
// state dir is TEMP/stateRel.
func startDaemonRelative(tb testing.TB, stateRel string, args ...string) *daemon {
	tb.Helper()
	d := newDaemon(tb, args...)
	d.cwd, d.stateArg = d.dir, stateRel
	d.state = filepath.Join(d.dir, stateRel)
	d.start()
	return d
}

// startDaemonEnv is startDaemon with env (KEY=VALUE) added to the daemon's
// environment, e.g. a $PATH without some program.
func startDaemonEnv(tb testing.TB, env []string, args ...string) *daemon {
	tb.Helper()
	d := newDaemon(tb, args...)
	d.env = env
	d.start()
	return d
}

// newDaemon prepares a daemon's temp dir and mountpoint, and its cleanup,
// without starting it.
func newDaemon(tb testing.TB, args ...string) *daemon {
	tb.Helper()
	requireIntegration(tb)
	dir, err := os.MkdirTemp("", "ctrfs-e2e-")
	if err != nil {
		tb.Fatal(err)
	}
	d := &daemon{tb: tb, daemonProc: &daemonProc{
		dir:   dir,
		mnt:   filepath.Join(dir, "mnt"),
		state: filepath.Join(dir, "state"),
		log:   filepath.Join(dir, "daemon.log"),
		args:  args,
	}}
	if err := os.Mkdir(d.mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(d.cleanup)
	return d
}

// path joins elem under the mountpoint.
func (d *daemon) path(elem ...string) string {
	return filepath.Join(append([]string{d.mnt}, elem...)...)
}

// start starts the daemon process on d's mountpoint and state dir and waits
// until MNT/version answers.
func (d *daemon) start() {
	d.tb.Helper()
	d.mu.Lock()
	if d.cmd != nil && !d.exited() {
		d.mu.Unlock()
		d.tb.Fatal("daemon.start: the daemon is running already")
	}
	d.starts++
	logf, err := os.OpenFile(d.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		d.mu.Unlock()
		d.tb.Fatal(err)
	}
	fmt.Fprintf(logf, "==== test harness: start #%d of ctrfs at %s ====\n", d.starts, time.Now().Format(time.RFC3339Nano))
	stateArg := d.state
	if d.stateArg != "" {
		stateArg = d.stateArg
	}
	// Never the default /var/lib/ctrfs/images: each test has its own store.
	args := []string{"mount", "--state-dir", stateArg, "--log-level", "debug", "--image-dir", filepath.Join(d.dir, "images")}
	args = append(args, d.args...)
	args = append(args, d.mnt)
	bin := ctrfsBin
	if d.bin != "" {
		bin = d.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = d.cwd
	if len(d.env) > 0 {
		cmd.Env = append(os.Environ(), d.env...)
	}
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	// The daemon must not outlive the test binary with a mount in /tmp.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		d.mu.Unlock()
		d.tb.Fatalf("start ctrfs: %v", err)
	}
	logf.Close()
	done := make(chan struct{})
	d.cmd, d.done, d.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(done)
	}()
	d.mu.Unlock()

	deadline := time.Now().Add(waitTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			d.tb.Fatalf("ctrfs exited before its mount answered: %v\n%s", d.exitErr(), d.logTail())
		default:
		}
		_, err := readWithin(d.path("version"), opTimeout)
		if err == nil {
			return
		}
		lastErr = err
		time.Sleep(pollEvery)
	}
	d.tb.Fatalf("ctrfs mount did not answer in %v: last read of version: %v\n%s", waitTimeout, lastErr, d.logTail())
}

func (d *daemon) exited() bool {
	if d.done == nil {
		return true
	}
	select {
	case <-d.done:
		return true
	default:
		return false
	}
}

// alive reports whether the daemon process is running.
func (d *daemon) alive() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.exited()
}

func (d *daemon) exitErr() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.waitErr
}

// signal sends sig to the daemon and waits up to timeout for it to exit.
// It returns false when the daemon is still running after timeout.
func (d *daemon) signal(sig syscall.Signal, timeout time.Duration) bool {
	d.mu.Lock()
	cmd, done := d.cmd, d.done
	d.mu.Unlock()
	if cmd == nil || done == nil {
		return true
	}
	select {
	case <-done:
		return true
	default:
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// stop sends SIGTERM and requires the daemon to exit 0 and leave its
// mountpoint unmounted.
func (d *daemon) stop() {
	d.tb.Helper()
	if !d.signal(syscall.SIGTERM, waitTimeout) {
		d.tb.Fatalf("ctrfs did not exit within %v of SIGTERM\n%s", waitTimeout, d.logTail())
	}
	if err := d.exitErr(); err != nil {
		d.tb.Errorf("ctrfs exited with %v after SIGTERM, want exit status 0\n%s", err, d.logTail())
	}
	if isMounted(d.mnt) {
		d.tb.Errorf("%s is still mounted after ctrfs exited on SIGTERM", d.mnt)
	}
}

// kill sends SIGKILL and waits for the daemon to be gone. Its mount is left
// behind, as after a crash.
func (d *daemon) kill() {
	d.tb.Helper()
	if !d.signal(syscall.SIGKILL, waitTimeout) {
		d.tb.Fatalf("ctrfs still running %v after SIGKILL", waitTimeout)
	}
}

// restart starts the daemon again on the same state dir and mountpoint.
func (d *daemon) restart() {
	d.tb.Helper()
	d.start()
}

// logTail returns the last lines of the daemon's log.
func (d *daemon) logTail() string {
	data, err := os.ReadFile(d.log)
	if err != nil {
		return fmt.Sprintf("(no daemon log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > logTail {
		lines = lines[len(lines)-logTail:]
	}
	return "---- tail of the daemon log (" + d.log + ") ----\n" + strings.Join(lines, "\n") + "\n---- end of the daemon log ----"
}

// cleanup runs when the test ends, whatever happened: it stops the daemon,
// deletes every runc container of the state dir, kills leftover shims and
// processes (by the pids the state dir names, checked against their start
// times), unmounts and removes the temp dirs.
func (d *daemon) cleanup() {
	tb := d.tb
	if tb.Failed() {
		tb.Log(d.logTail())
	}
	if !d.signal(syscall.SIGTERM, 10*time.Second) {
		tb.Logf("cleanup: ctrfs ignored SIGTERM for 10s; sending SIGKILL")
		d.signal(syscall.SIGKILL, 10*time.Second)
	}
	if isMounted(d.mnt) {
		abortFuseConnection(d.mnt)
		if out, err := exec.Command("fusermount3", "-u", d.mnt).CombinedOutput(); err != nil {
			tb.Logf("cleanup: fusermount3 -u %s: %v: %s", d.mnt, err, bytes.TrimSpace(out))
		}
		if isMounted(d.mnt) {
			if out, err := exec.Command("umount", "-l", d.mnt).CombinedOutput(); err != nil {
				tb.Logf("cleanup: umount -l %s: %v: %s", d.mnt, err, bytes.TrimSpace(out))
			}
		}
	}
	runcRoot := filepath.Join(d.state, "runc")
	cleanupRunc(tb, runcRoot)
	// Shims first (so they cannot start anything more), then any process
	// the pid files still name.
	for _, pf := range globAll(d.state, "*", "*", "shim.pid") {
		killByPidFile(tb, pf)
	}
	for _, pf := range globAll(d.state, "*", "*", "pid") {
		killByPidFile(tb, pf)
	}
	if isMountedUnder(d.dir) {
		tb.Logf("cleanup: something is still mounted under %s; leaving it", d.dir)
		return
	}
	if err := os.RemoveAll(d.dir); err != nil {
		tb.Logf("cleanup: %v", err)
	}
}

// cleanupRunc force-deletes every container of a runc root.
func cleanupRunc(tb testing.TB, root string) {
	if _, err := os.Stat(root); err != nil {
		return
	}
	for _, id := range runcList(tb, root) {
		if out, err := exec.Command("runc", "--root", root, "delete", "-f", id).CombinedOutput(); err != nil {
			tb.Logf("cleanup: runc delete -f %s: %v: %s", id, err, bytes.TrimSpace(out))
		}
	}
}

// runcList returns the ids `runc --root root list -q` prints, sorted.
func runcList(tb testing.TB, root string) []string {
	out, err := exec.Command("runc", "--root", root, "list", "-q").Output()
	if err != nil {
		tb.Logf("runc --root %s list -q: %v", root, err)
		return nil
	}
	ids := strings.Fields(string(out))
	sort.Strings(ids)
	return ids
}

func globAll(elem ...string) []string {
	m, _ := filepath.Glob(filepath.Join(elem...))
	return m
}

// readPidFile parses a "PID STARTTIME\n" file.
func readPidFile(path string) (pid int, start uint64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(data))
	if len(f) < 1 {
		return 0, 0, fmt.Errorf("%s: empty", path)
	}
	pid, err = strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("%s: bad pid %q", path, f[0])
	}
	if len(f) >= 2 {
		start, err = strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: bad start time %q", path, f[1])
		}
	}
	return pid, start, nil
}

// processAlive reports whether pid runs (not a zombie) and, when start is
// not 0, is still the process that started at start.
func processAlive(pid int, start uint64) bool { return procfs.Alive(pid, start) }

// killByPidFile SIGKILLs the process a pid file names if it is still that
// process.
func killByPidFile(tb testing.TB, path string) {
	pid, start, err := readPidFile(path)
	if err != nil || start == 0 {
		return
	}
	if processAlive(pid, start) {
		tb.Logf("cleanup: killing pid %d of %s", pid, path)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// mountPoints returns the mount points of /proc/self/mountinfo with their
// device numbers ("MAJ:MIN").
func mountPoints() map[string]string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		m[unescapeMountinfo(f[4])] = f[2]
	}
	return m
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isMounted(dir string) bool {
	_, ok := mountPoints()[dir]
	return ok
}

// mountsUnder are the mount points under dir.
func mountsUnder(dir string) []string {
	var out []string
	for p := range mountPoints() {
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	return out
}

func isMountedUnder(dir string) bool {
	for mp := range mountPoints() {
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			return true
		}
	}
	return false
}

// abortFuseConnection aborts the FUSE connection of the mount at dir through
// fusectl, when fusectl is mounted, so that no request stays blocked on a
// hung server.
func abortFuseConnection(dir string) {
	dev, ok := mountPoints()[dir]
	if !ok {
		return
	}
	i := strings.IndexByte(dev, ':')
	if i < 0 {
		return
	}
	abort := filepath.Join("/sys/fs/fuse/connections", dev[i+1:], "abort")
	if _, err := os.Stat(abort); err == nil {
		_ = os.WriteFile(abort, []byte("1"), 0)
	}
}

// ---------------------------------------------------------------------------
// File access, bounded in time

// within runs f in a goroutine and waits at most timeout for it.
func within[T any](timeout time.Duration, what string, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-time.After(timeout):
		var zero T
		return zero, fmt.Errorf("%s: %w after %v (the FUSE server hangs?)", what, errHung, timeout)
	}
}

var errHung = errors.New("no answer")

func readWithin(path string, timeout time.Duration) (string, error) {
	return within(timeout, "read "+path, func() (string, error) {
		b, err := os.ReadFile(path)
		return string(b), err
	})
}

// tryRead reads a whole file.
func (d *daemon) tryRead(elem ...string) (string, error) {
	return readWithin(d.path(elem...), opTimeout)
}

// read reads a whole file and fails the test on error.
func (d *daemon) read(elem ...string) string {
	d.tb.Helper()
	s, err := d.tryRead(elem...)
	if err != nil {
		d.tb.Fatalf("read: %v", err)
	}
	return s
}

// readTrim reads a file and trims its trailing newline.
func (d *daemon) readTrim(elem ...string) string {
	d.tb.Helper()
	return strings.TrimRight(d.read(elem...), "\n")
}

// write writes data to a file with os.WriteFile (O_WRONLY|O_CREATE|O_TRUNC,
// as a shell's `>` does) and returns the error of the write.
func (d *daemon) write(data string, elem ...string) error {
	p := d.path(elem...)
	_, err := within(opTimeout, "write "+p, func() (struct{}, error) {
		return struct{}{}, os.WriteFile(p, []byte(data), 0o644)
	})
	return err
}

// mustWrite writes and fails the test on error, showing the ctl text.
func (d *daemon) mustWrite(data string, elem ...string) {
	d.tb.Helper()
	if err := d.write(data, elem...); err != nil {
		text, _ := d.tryRead(elem...)
		d.tb.Fatalf("write %q to %s: %v\nfresh read of it:\n%s", data, d.path(elem...), err, text)
	}
}

// transact opens a file O_RDWR, writes data in one write(2), then reads the
// result from the same open file until EOF.
func transact(path string, data []byte) (result string, err error) {
	type tr struct {
		result string
		err    error
	}
	r, herr := within(opTimeout, "transaction on "+path, func() (tr, error) {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return tr{"", err}, nil
		}
		defer f.Close()
		_, werr := f.Write(data)
		b, rerr := io.ReadAll(f)
		if rerr != nil && werr == nil {
			return tr{string(b), fmt.Errorf("read after write: %w", rerr)}, nil
		}
		return tr{string(b), werr}, nil
	})
	if herr != nil {
		return "", herr
	}
	return r.result, r.err
}

// ctl writes cmd to the ctl file at elem (the root ctl when elem is empty)
// through one open file and returns the result read back from it and the
// write's error.
func (d *daemon) ctl(cmd string, elem ...string) (string, error) {
	return transact(d.path(append(elem, "ctl")...), []byte(cmd))
}

// mustCtl is ctl that fails the test unless the write succeeds.
func (d *daemon) mustCtl(cmd string, elem ...string) string {
	d.tb.Helper()
	res, err := d.ctl(cmd, elem...)
	if err != nil {
		d.tb.Fatalf("write %q to %s: %v\nresult from the same file:\n%s", cmd, d.path(append(elem, "ctl")...), err, res)
	}
	return res
}

// readDir lists the mount's directory elem.
func (d *daemon) readDir(elem ...string) []string {
	d.tb.Helper()
	p := d.path(elem...)
	names, err := within(opTimeout, "readdir "+p, func() ([]string, error) {
		ents, err := os.ReadDir(p)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names, err
	})
	if err != nil {
		d.tb.Fatalf("readdir: %v", err)
	}
	sort.Strings(names)
	return names
}

// containers returns the names of the directories at the mount's root.
func (d *daemon) containers() []string {
	d.tb.Helper()
	p := d.mnt
	names, err := within(opTimeout, "readdir "+p, func() ([]string, error) {
		ents, err := os.ReadDir(p)
		var names []string
		for _, e := range ents {
			if e.IsDir() && e.Name() != "images" { // the image store's tree
				names = append(names, e.Name())
			}
		}
		return names, err
	})
	if err != nil {
		d.tb.Fatalf("readdir: %v", err)
	}
	sort.Strings(names)
	return names
}

// stateDirs returns the container directories of the state dir (every
// directory but runc's root).
func (d *daemon) stateDirs() []string {
	ents, err := os.ReadDir(d.state)
	if err != nil {
		d.tb.Fatalf("state dir: %v", err)
	}
	var names []string
	for _, e := range ents {
		if e.IsDir() && e.Name() != "runc" {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

// checkNoContainers fails t if any container, or any container's state
// directory, is left: what a failed create must leave.
func (d *daemon) checkNoContainers(t testing.TB) {
	t.Helper()
	if got := d.containers(); len(got) != 0 {
		t.Errorf("containers left: %q", got)
	}
	if got := d.stateDirs(); len(got) != 0 {
		t.Errorf("state directories left: %q", got)
	}
}

// runcIDs lists the containers of the daemon's runc root.
func (d *daemon) runcIDs() []string {
	return runcList(d.tb, filepath.Join(d.state, "runc"))
}

// waitFor polls cond every pollEvery until it returns true or waitTimeout
// passes; then it fails the test with what describe says.
func waitFor(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last string
	for {
		ok, desc := cond()
		if ok {
			return
		}
		last = desc
		if time.Now().After(deadline) {
			tb.Fatalf("waited %v for %s; last seen: %s", waitTimeout, what, last)
		}
		time.Sleep(pollEvery)
	}
}

// waitContent waits until the file at elem reads want (trailing newline
// trimmed).
func (d *daemon) waitContent(want string, elem ...string) {
	d.tb.Helper()
	waitFor(d.tb, fmt.Sprintf("%s to read %q", d.path(elem...), want), func() (bool, string) {
		s, err := d.tryRead(elem...)
		if err != nil {
			if errors.Is(err, errHung) {
				d.tb.Fatal(err)
			}
			return false, err.Error()
		}
		s = strings.TrimRight(s, "\n")
		return s == want, fmt.Sprintf("%q", s)
	})
}

// waitState waits until ID/state reads want.
func (d *daemon) waitState(id, want string) {
	d.tb.Helper()
	d.waitContent(want, id, "state")
}

// run runs a container from bundle through the root ctl and requires it to
// be running when the write returns.
func (d *daemon) run(id, bundle string, opts ...string) {
	d.tb.Helper()
	cmd := "run " + id + " " + bundle
	if len(opts) > 0 {
		cmd += " " + strings.Join(opts, " ")
	}
	d.mustCtl(cmd + "\n")
	if got := d.readTrim(id, "state"); got != "running" {
		d.tb.Fatalf("%s/state after %q returned: %q, want running", id, cmd, got)
	}
	if bundle == demoDir {
		d.waitDemoReady(id)
	}
}

// waitDemoReady waits until the demo container id has printed its first
// line: its TERM trap is set from then on. A TERM that comes before is
// ignored (pid 1 of a pid namespace has no default action), and a loaded
// machine can be that slow.
func (d *daemon) waitDemoReady(id string) {
	d.tb.Helper()
	out := filepath.Join(d.state, id, "init", "stdout")
	waitFor(d.tb, id+" to print its first line", func() (bool, string) {
		st, err := os.Stat(out)
		if err != nil {
			return false, err.Error()
		}
		return st.Size() > 0, fmt.Sprintf("%d bytes", st.Size())
	})
}

// initPid reads ID/pid and requires it to be a live host pid.
func (d *daemon) initPid(id string) int {
	d.tb.Helper()
	s := d.readTrim(id, "pid")
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		d.tb.Fatalf("%s/pid: %q, want a pid", id, s)
	}
	if !processAlive(pid, 0) {
		d.tb.Fatalf("%s/pid: %d is not a live process", id, pid)
	}
	return pid
}

// status reads and decodes ID/status.
func (d *daemon) status(id string) map[string]any {
	d.tb.Helper()
	s := d.read(id, "status")
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		d.tb.Fatalf("%s/status is not one JSON object: %v\n%s", id, err, s)
	}
	if !strings.HasSuffix(s, "\n") {
		d.tb.Errorf("%s/status does not end with a newline: %q", id, s)
	}
	return m
}

// forceDelete deletes a container with `delete ID --force` and requires it
// gone.
func (d *daemon) forceDelete(id string) {
	d.tb.Helper()
	d.mustCtl("delete " + id + " --force\n")
	if slices.Contains(d.containers(), id) {
		d.tb.Fatalf("%s still listed after delete --force", id)
	}
}

// ---------------------------------------------------------------------------
// Shell

// shResult is what a `sh -c` run gave.
type shResult struct {
	stdout, stderr string
	code           int
}

func (r shResult) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
}

// sh runs script with /bin/sh -c, with MNT set to the mountpoint and any
// extra KEY=VALUE in env, in a process group of its own that is killed if
// it runs longer than opTimeout.
func (d *daemon) sh(script string, env ...string) shResult {
	d.tb.Helper()
	return d.shell("/bin/sh", script, env...)
}

// bash is sh with bash, whose messages name the errno of a failed write.
func (d *daemon) bash(script string, env ...string) shResult {
	d.tb.Helper()
	return d.shell("bash", script, env...)
}

func (d *daemon) shell(shell, script string, env ...string) shResult {
	d.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, shell, "-c", script)
	cmd.Env = append(os.Environ(), "MNT="+d.mnt)
	cmd.Env = append(cmd.Env, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := shResult{stdout: stdout.String(), stderr: stderr.String()}
	if ctx.Err() != nil {
		d.tb.Fatalf("%s -c %q: killed after %v (the FUSE server hangs?): %s", shell, script, opTimeout, r)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		d.tb.Fatalf("%s -c %q: %v", shell, script, err)
	}
	return r
}

// mustSh runs script and fails the test unless it exits 0.
func (d *daemon) mustSh(script string, env ...string) string {
	d.tb.Helper()
	r := d.sh(script, env...)
	if r.code != 0 {
		d.tb.Fatalf("sh -c %q: %s", script, r)
	}
	return r.stdout
}

// lines splits s into its non-empty lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := sc.Text(); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Benchmark ratios

var (
	ratioMu sync.Mutex
	nsPerOp = map[string]float64{}
)

// recordNsPerOp remembers a benchmark's last ns/op for printRatios.
func recordNsPerOp(b *testing.B, name string) {
	if b.N == 0 {
		return
	}
	ratioMu.Lock()
	defer ratioMu.Unlock()
	nsPerOp[name] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}

// printRatios prints how ctrfs compares with bare runc, for the
// benchmarks that ran.
func printRatios() {
	ratioMu.Lock()
	defer ratioMu.Unlock()
	pr := func(what, ctrfs, runc, target string) {
		c, ok1 := nsPerOp[ctrfs]
		r, ok2 := nsPerOp[runc]
		if !ok1 || !ok2 || c == 0 || r == 0 {
			return
		}
		fmt.Printf("ratio %s: ctrfs %.3f ms/op, runc %.3f ms/op: ctrfs/runc = %.3f, runc/ctrfs = %.1f (%s)\n",
			what, c/1e6, r/1e6, c/r, r/c, target)
	}
	pr("create+start", "CreateStartCtrfs", "CreateStartRunc", "target: ctrfs/runc <= 1.1")
	pr("state read", "StateReadCtrfs", "StateRunc", "target: runc/ctrfs >= 20")
	pr("stats read", "StatsReadCtrfs", "StatsRunc", "target: runc/ctrfs >= 20")
	for _, line := range pairedLines {
		fmt.Println(line)
	}
}

// pairedLines are the ratios of the paired benchmarks, printed at the end.
var pairedLines []string

// recordPaired remembers a paired benchmark's figures for printRatios.
func recordPaired(what string, ctrfsMs, runcMs float64, target string) {
	recordSummary(what, fmt.Sprintf("ratio %s: ctrfs %.3f ms/op, runc %.3f ms/op: ctrfs/runc = %.3f, runc/ctrfs = %.1f (%s)",
		what, ctrfsMs, runcMs, ctrfsMs/runcMs, runcMs/ctrfsMs, target))
}

// recordSummary keeps line, printed at the end of the run, under what:
// benchmarks run more than once as b.N grows, and the last run counts.
func recordSummary(what, line string) {
	ratioMu.Lock()
	defer ratioMu.Unlock()
	for i, l := range pairedLines {
		if strings.HasPrefix(l, "ratio "+what+":") {
			pairedLines[i] = line
			return
		}
	}
	pairedLines = append(pairedLines, line)
}
