package shim

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

var (
	testTmp string // removed at the end of TestMain
	shimBin string

	rootfsOnce sync.Once
	rootfsDir  string
	rootfsErr  error

	containerSeq atomic.Int64
)

func TestMain(m *testing.M) {
	if os.Getenv("SHIM_TEST_REAPER_HELPER") == "1" {
		os.Exit(m.Run()) // child of TestReaper: no build needed
	}
	var err error
	testTmp, err = os.MkdirTemp("", "shimtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shimBin = filepath.Join(testTmp, "ctrfs-shim")
	out, err := exec.Command("go", "build", "-o", shimBin, "github.com/ctrfs/ctrfs/cmd/ctrfs-shim").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build ctrfs-shim: %v\n%s", err, out)
		os.RemoveAll(testTmp)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(testTmp)
	os.Exit(code)
}

// --- unit tests ---

func TestParseStartTime(t *testing.T) {
	// comm may hold spaces and parens: only the last ')' ends it.
	rest := "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21 22\n"
	for _, comm := range []string{"sh", "a b", "x) (y", ") 1 2 3 (", "(((", ""} {
		got, err := parseStartTime([]byte("1234 (" + comm + ") " + rest))
		if err != nil || got != 424242 {
			t.Errorf("comm %q: got %d, %v; want 424242", comm, got, err)
		}
	}
	for _, bad := range []string{"", "1 (sh", "1 (sh) S 1 2", "1 (sh) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x"} {
		if got, err := parseStartTime([]byte(bad)); err == nil {
			t.Errorf("%q: got %d, want an error", bad, got)
		}
	}
	st, err := procStartTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("procStartTime(self) = %d, %v", st, err)
	}
}

func TestBoundedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := openBounded(path, 10) // what is there already counts
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"defg", "hijklmn", "x", ""} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", s, n, err, len(s))
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "abcdefghij" {
		t.Errorf("file = %q, want %q", got, "abcdefghij")
	}
	if b.dropped != 5 {
		t.Errorf("dropped = %d, want 5", b.dropped)
	}
}

func TestLogCopy(t *testing.T) {
	dir := t.TempDir()
	// EOF before the deadline: everything up to the bound is kept.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := startLogCopy(r, filepath.Join(dir, "a"), 100)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("z"), 150))
	w.Close()
	dropped, err := c.finish(time.Now().Add(5 * time.Second))
	if err != nil || dropped != 50 {
		t.Errorf("finish = %d, %v; want 50, nil", dropped, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "a")); st == nil || st.Size() != 100 {
		t.Errorf("log size = %v, want 100", st)
	}

	// A writer that never closes: finish gives up at the deadline.
	r, w, err = os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	c, err = startLogCopy(r, filepath.Join(dir, "b"), 100)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("hi\n"))
	t0 := time.Now()
	if _, err := c.finish(t0.Add(200 * time.Millisecond)); err == nil {
		t.Error("finish with the pipe still open: want an error")
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("finish took %v", d)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b")); string(got) != "hi\n" {
		t.Errorf("log = %q", got)
	}
}

// TestReaper runs the reaper in a child test process: in this one it would
// reap the children of the other tests.
func TestReaper(t *testing.T) {
	if os.Getenv("SHIM_TEST_REAPER_HELPER") == "1" {
		reaperHelper(t)
		return
	}
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReaper$", "-test.v")
	cmd.Env = append(os.Environ(), "SHIM_TEST_REAPER_HELPER=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("reaper helper ok")) {
		t.Fatalf("reaper helper: %v\n%s", err, out)
	}
}

func reaperHelper(t *testing.T) {
	r := NewReaper()
	// An exit nobody watched yet is remembered.
	c := exec.Command("/bin/sh", "-c", "exit 5")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			break // reaped
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case e := <-r.Watch(pid, 0):
		if e.Status != 5 || e.Signal != 0 || e.StartTime == 0 {
			t.Errorf("early exit = %+v, want status 5 and a start time", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("early exit not remembered")
	}
	// go-runc's side: the monitor gets the exit, shell style.
	c = exec.Command("/bin/sh", "-c", "kill -9 $$")
	ec, err := r.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.Wait(c, ec); st != 137 || err != nil {
		t.Errorf("monitor Wait = %d, %v; want 137, nil", st, err)
	}
	c = exec.Command("/bin/sh", "-c", "exit 3")
	ec, err = r.StartLocked(c)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := r.Wait(c, ec); st != 3 || err != nil {
		t.Errorf("monitor Wait (locked) = %d, %v; want 3, nil", st, err)
	}
	if !t.Failed() {
		fmt.Println("reaper helper ok")
	}
}

// --- integration: the real shim, runc and a busybox container ---

type env struct {
	t      *testing.T
	runc   string
	root   string // runc --root
	id     string
	bundle string
	dir    string // the process state dir
}

// needIntegration skips (or fails, under CTRFS_REQUIRE_INTEGRATION=1) when
// the machine cannot run containers.
func needIntegration(t *testing.T) string {
	t.Helper()
	why := ""
	runcPath, err := exec.LookPath("runc")
	switch {
	case os.Geteuid() != 0:
		why = "needs root"
	case err != nil:
		why = "runc not in PATH (apt-get install runc)"
	default:
		if f, err := elf.Open("/bin/busybox"); err != nil {
			why = "no /bin/busybox (apt-get install busybox-static)"
		} else {
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP {
					why = "/bin/busybox is not static (apt-get install busybox-static)"
				}
			}
			f.Close()
		}
	}
	if why != "" {
		if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("integration test cannot run: " + why)
		}
		t.Skip("skipping integration test: " + why)
	}
	return runcPath
}

// rootfs makes, once, a root filesystem of busybox and one link per applet.
func rootfs() (string, error) {
	rootfsOnce.Do(func() {
		dir := filepath.Join(testTmp, "rootfs")
		rootfsDir, rootfsErr = dir, func() error {
			if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
				return err
			}
			data, err := os.ReadFile("/bin/busybox")
			if err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), data, 0o755); err != nil {
				return err
			}
			list, err := exec.Command("/bin/busybox", "--list").Output()
			if err != nil {
				return fmt.Errorf("busybox --list: %v", err)
			}
			for _, name := range strings.Fields(string(list)) {
				if name == "busybox" || strings.Contains(name, "/") {
					continue
				}
				if err := os.Symlink("busybox", filepath.Join(dir, "bin", name)); err != nil {
					return err
				}
			}
			return nil
		}()
	})
	return rootfsDir, rootfsErr
}

// newEnv makes a bundle running args, a runc root and a process dir.
func newEnv(t *testing.T, args ...string) *env {
	return newEnvHooks(t, nil, args...)
}

// newEnvHooks is newEnv with OCI hooks (the spec's "hooks" object).
func newEnvHooks(t *testing.T, hooks map[string]any, args ...string) *env {
	runcPath := needIntegration(t)
	rfs, err := rootfs()
	if err != nil {
		t.Fatalf("rootfs: %v", err)
	}
	base := t.TempDir()
	e := &env{
		t: t, runc: runcPath,
		root:   filepath.Join(base, "runc"),
		id:     fmt.Sprintf("shimtest-%d-%d", containerSeq.Add(1), os.Getpid()),
		bundle: filepath.Join(base, "bundle"),
		dir:    filepath.Join(base, "proc"),
	}
	for _, d := range []string{e.root, e.bundle, e.dir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Runs after the shim is killed and before the temp dir goes.
	t.Cleanup(func() {
		exec.Command(e.runc, "--root", e.root, "delete", "-f", e.id).Run()
	})
	if out, err := exec.Command(runcPath, "spec", "--bundle", e.bundle).CombinedOutput(); err != nil {
		t.Fatalf("runc spec: %v: %s", err, out)
	}
	var spec map[string]any
	cfgPath := filepath.Join(e.bundle, "config.json")
	data, err := os.ReadFile(cfgPath)
	if err == nil {
		err = json.Unmarshal(data, &spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = args
	spec["root"] = map[string]any{"path": rfs, "readonly": false}
	if hooks != nil {
		spec["hooks"] = hooks
	}
	if data, err = json.Marshal(spec); err == nil {
		err = os.WriteFile(cfgPath, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(e.dir, proto.ExitFifo), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) writeConfig(action proto.Action, logMax int64) {
	cfg := proto.Config{
		ID: e.id, Process: "init", Action: action, Bundle: e.bundle,
		Runtime: e.runc, RuntimeRoot: e.root, LogMaxSize: logMax,
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(e.dir, proto.ConfigFile), data, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) runcCmd(args ...string) {
	e.t.Helper()
	out, err := exec.Command(e.runc, append([]string{"--root", e.root}, args...)...).CombinedOutput()
	if err != nil {
		e.t.Fatalf("runc %v: %v: %s", args, err, out)
	}
}

func (e *env) read(name string) string {
	data, _ := os.ReadFile(filepath.Join(e.dir, name))
	return string(data)
}

type shimProc struct {
	cmd    *exec.Cmd
	done   chan struct{}
	report proto.Report
}

// startShim starts the shim the way the daemon does and reads its report.
func (e *env) startShim() *shimProc {
	t := e.t
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	s := &shimProc{
		cmd: &exec.Cmd{
			Path: shimBin, Args: []string{shimBin, e.dir}, Dir: e.dir,
			SysProcAttr: &syscall.SysProcAttr{Setsid: true},
			ExtraFiles:  []*os.File{pw},
		},
		done: make(chan struct{}),
	}
	err = s.cmd.Start()
	pw.Close()
	if err != nil {
		t.Fatal(err)
	}
	go func() { s.cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	// ReadAll also proves that neither runc nor the container kept fd 3.
	got := make(chan []byte, 1)
	go func() { data, _ := io.ReadAll(pr); got <- data }()
	var data []byte
	select {
	case data = <-got:
	case <-time.After(30 * time.Second):
		t.Fatalf("no report (EOF) within 30s; shim.log:\n%s", e.read(proto.ShimLog))
	}
	if bytes.Count(data, []byte("\n")) != 1 || !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatalf("report %q: want one JSON line", data)
	}
	if err := json.Unmarshal(data, &s.report); err != nil {
		t.Fatalf("report %q: %v", data, err)
	}
	return s
}

func (s *shimProc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("shim did not exit within 30s")
	}
	return s.cmd.ProcessState.ExitCode()
}

func (e *env) exitStatus() proto.ExitStatus {
	e.t.Helper()
	var st proto.ExitStatus
	data, err := os.ReadFile(filepath.Join(e.dir, proto.ExitStatusFile))
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		e.t.Fatalf("exitStatus: %v (shim.log:\n%s)", err, e.read(proto.ShimLog))
	}
	if st.ExitedAt.IsZero() || time.Since(st.ExitedAt) > time.Minute {
		e.t.Errorf("exited_at = %v", st.ExitedAt)
	}
	return st
}

// checkPidFile checks that the file says "PID STARTTIME\n" of a live process.
func checkPidFile(t *testing.T, content string, pid int) {
	t.Helper()
	start, err := procStartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d\n", pid, start); content != want {
		t.Errorf("pid file = %q, want %q", content, want)
	}
}

func openExitFifo(t *testing.T, e *env) int {
	fd, err := unix.Open(filepath.Join(e.dir, proto.ExitFifo), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func hup(t *testing.T, fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(pfd, 0); err != nil {
		t.Fatal(err)
	}
	return pfd[0].Revents&unix.POLLHUP != 0
}

func TestShimCreateStartExit(t *testing.T) {
	e := newEnv(t, "sh", "-c", "echo out; echo err >&2; exit 7")
	e.writeConfig(proto.ActionCreate, 0)
	s := e.startShim()
	if s.report.Pid <= 0 || s.report.Error != "" {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	checkPidFile(t, e.read(proto.PidFile), s.report.Pid)
	checkPidFile(t, e.read(proto.ShimPidFile), s.cmd.Process.Pid)
	fifo := openExitFifo(t, e)
	if hup(t, fifo) {
		t.Fatal("POLLHUP on the exit fifo while the shim runs")
	}

	e.runcCmd("start", e.id)
	if code := s.wait(t); code != 0 {
		t.Fatalf("shim exit code %d; shim.log:\n%s", code, e.read(proto.ShimLog))
	}
	if st := e.exitStatus(); st.Status != 7 || st.Signal != 0 {
		t.Errorf("exit status = %+v, want status 7", st)
	}
	if got := e.read(proto.StdoutLog); got != "out\n" {
		t.Errorf("stdout = %q", got)
	}
	if got := e.read(proto.StderrLog); got != "err\n" {
		t.Errorf("stderr = %q", got)
	}
	if !hup(t, fifo) {
		t.Error("no POLLHUP on the exit fifo after the shim exited")
	}
	for _, name := range []string{proto.StdoutLog, proto.StderrLog} {
		if st, err := os.Stat(filepath.Join(e.dir, name)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", name, st, err)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(e.dir, "*.tmp")); len(m) > 0 {
		t.Errorf("temp files left: %v", m)
	}
}

func TestShimRunKilled(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.writeConfig(proto.ActionRun, 0)
	s := e.startShim()
	if s.report.Pid <= 0 {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	checkPidFile(t, e.read(proto.PidFile), s.report.Pid)
	if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmRSS:") {
				t.Logf("shim %s (supervising a running busybox sleep)", l)
			}
		}
	}
	e.runcCmd("kill", e.id, "KILL")
	if code := s.wait(t); code != 0 {
		t.Fatalf("shim exit code %d; shim.log:\n%s", code, e.read(proto.ShimLog))
	}
	if st := e.exitStatus(); st.Status != 137 || st.Signal != 9 {
		t.Errorf("exit status = %+v, want status 137 signal 9", st)
	}
}

// A process that exits while runc is still running (a poststart hook holds
// runc back): the shim either reads its start time from the zombie or finds
// its exit, start time included, remembered by the reaper. The race goes
// both ways; both must give a full pid file and the status.
func TestShimRunQuickExit(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep on the host")
	}
	hooks := map[string]any{"poststart": []any{map[string]any{"path": sleep, "args": []string{"sleep", "0.3"}}}}
	e := newEnvHooks(t, hooks, "sh", "-c", "exit 3")
	e.writeConfig(proto.ActionRun, 0)
	s := e.startShim()
	if s.report.Pid <= 0 {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("shim exit code %d; shim.log:\n%s", code, e.read(proto.ShimLog))
	}
	var pid int
	var start uint64
	if n, _ := fmt.Sscanf(e.read(proto.PidFile), "%d %d\n", &pid, &start); n != 2 || pid != s.report.Pid || start == 0 {
		t.Errorf("pid file = %q", e.read(proto.PidFile))
	}
	if st := e.exitStatus(); st.Status != 3 {
		t.Errorf("exit status = %+v, want status 3", st)
	}
	t.Logf("exit remembered before the pid was known: %v",
		strings.Contains(e.read(proto.ShimLog), "before the runtime returned"))
}

func TestShimRuntimeError(t *testing.T) {
	e := newEnv(t, "/nope")
	e.writeConfig(proto.ActionCreate, 0)
	s := e.startShim()
	if s.report.Pid != 0 || s.report.Error == "" {
		t.Fatalf("report = %+v, want an error", s.report)
	}
	t.Logf("runtime error: %s", s.report.Error)
	if !strings.Contains(s.report.Error, "/nope") || strings.ContainsAny(s.report.Error, "\n{") {
		t.Errorf("error %q: want runc's one-line message naming /nope", s.report.Error)
	}
	if code := s.wait(t); code != 1 {
		t.Errorf("shim exit code %d, want 1", code)
	}
	for _, name := range []string{proto.ExitStatusFile, proto.PidFile} {
		if _, err := os.Stat(filepath.Join(e.dir, name)); err == nil {
			t.Errorf("%s written after a runtime error", name)
		}
	}
	if !strings.Contains(e.read(proto.ShimLog), "/nope") {
		t.Errorf("error not in shim.log:\n%s", e.read(proto.ShimLog))
	}
}

func TestShimLogBound(t *testing.T) {
	const bound = 1000
	e := newEnv(t, "sh", "-c", "yes | head -c 300000; echo done >&2")
	e.writeConfig(proto.ActionRun, bound)
	s := e.startShim()
	if s.report.Pid <= 0 {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	if code := s.wait(t); code != 0 {
		t.Fatalf("shim exit code %d", code)
	}
	if st := e.exitStatus(); st.Status != 0 {
		t.Errorf("exit status = %+v, want 0", st)
	}
	if got := e.read(proto.StdoutLog); got != strings.Repeat("y\n", bound/2) {
		t.Errorf("stdout: %d bytes, want %d of \"y\\n\"", len(got), bound)
	}
	if got := e.read(proto.StderrLog); got != "done\n" {
		t.Errorf("stderr = %q", got)
	}
	if log := e.read(proto.ShimLog); !strings.Contains(log, `"dropped":299000`) {
		t.Errorf("dropped bytes not logged:\n%s", log)
	}
}
