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

	"github.com/ctrfs/ctrfs/internal/procfs"
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

// /proc/PID/stat is parsed, and tested, in internal/procfs.

// streamBytes is a stream whose every 8-byte group names its own offset,
// so any window of it can be checked for place and order.
func streamBytes(n int) []byte {
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		copy(b[i:], fmt.Sprintf("%07x\n", i&0xfffffff))
	}
	return b[:n]
}

func TestBoundedFileKeepsTheTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	const bound = 64 << 10
	b, err := openBounded(path, bound)
	if err != nil {
		t.Fatal(err)
	}
	if !b.punch {
		t.Skip("the temp dir's filesystem cannot punch holes")
	}
	stream := streamBytes(1<<20 + 12345)
	for off, n := 0, 1; off < len(stream); off, n = off+n, n*7%5000+1 {
		p := stream[off:min(off+n, len(stream))]
		if w, err := b.Write(p); w != len(p) || err != nil {
			t.Fatalf("Write = %d, %v; want %d, nil", w, err, len(p))
		}
		if kept := b.size - b.start; kept > bound {
			t.Fatalf("after %d bytes: %d kept, over the bound", off+len(p), kept)
		}
	}
	b.Close()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() != int64(len(stream)) {
		t.Errorf("file size %d, want the stream's %d (offsets are the stream's)", st.Size(), len(stream))
	}
	start := firstData(int(f.Fd()), st.Size())
	if start != b.start || start != b.trimmed || start%4096 != 0 {
		t.Errorf("SEEK_DATA = %d; kept from %d, trimmed %d", start, b.start, b.trimmed)
	}
	kept := make([]byte, st.Size()-start)
	if _, err := f.ReadAt(kept, start); err != nil {
		t.Fatal(err)
	}
	if len(kept) > bound || len(kept) < bound-int(punchAlign(bound)) {
		t.Errorf("kept %d bytes; want between %d and %d", len(kept), bound-punchAlign(bound), bound)
	}
	if !bytes.Equal(kept, stream[start:]) {
		t.Error("the kept bytes are not the stream's tail at their offsets")
	}
	if b.dropped != 0 {
		t.Errorf("dropped = %d, want 0", b.dropped)
	}
	var blocks unix.Stat_t
	unix.Stat(path, &blocks)
	if used := blocks.Blocks * 512; used > 2*bound {
		t.Errorf("the file uses %d bytes on disk for a bound of %d", used, bound)
	}
}

func TestBoundedFileWithoutHoles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err := openBounded(path, 10) // what is there already counts
	if err != nil {
		t.Fatal(err)
	}
	b.punch = false // as on a filesystem without holes: keep the head
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
	// EOF before the deadline: everything is copied.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := startLogCopy(r, filepath.Join(dir, "a"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("z"), 150))
	w.Close()
	trimmed, dropped, err := c.finish(time.Now().Add(5 * time.Second))
	if err != nil || dropped != 0 || trimmed != 0 {
		t.Errorf("finish = %d, %d, %v; want 0, 0, nil", trimmed, dropped, err)
	}
	if st, _ := os.Stat(filepath.Join(dir, "a")); st == nil || st.Size() != 150 {
		t.Errorf("log size = %v, want 150", st)
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
	if _, _, err := c.finish(t0.Add(200 * time.Millisecond)); err == nil {
		t.Error("finish with the pipe still open: want an error")
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("finish took %v", d)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "b")); string(got) != "hi\n" {
		t.Errorf("log = %q", got)
	}

	// A log never fed (a terminal that never came) finishes at once.
	c, err = openLog(filepath.Join(dir, "c"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.finish(time.Now().Add(time.Second)); err != nil {
		t.Errorf("finish of an unfed log: %v", err)
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
		t.Fatal(err)
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
	e.writeConfigVersion(action, logMax, 0)
}

// writeConfigVersion is writeConfig as a daemon of protocol version v
// writes it (0: one from before versions).
func (e *env) writeConfigVersion(action proto.Action, logMax int64, v int) {
	cfg := proto.Config{
		Version: v, ID: e.id, Process: "init", Action: action, Bundle: e.bundle,
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
	line   []byte // the report as sent
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
	s.line = data
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
	start, err := procfs.StartTime(pid)
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
		t.Fatal(err)
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

// The shim answers in the daemon's protocol version, and refuses one it
// does not know before it runs anything.
func TestShimProtocolVersion(t *testing.T) {
	for _, v := range []int{0, 1, proto.Version} {
		e := newEnv(t, "true")
		e.writeConfigVersion(proto.ActionRun, 0, v)
		s := e.startShim()
		rep, err := proto.ParseReport(s.line)
		if err != nil || rep.Pid <= 0 || rep.Version != proto.VersionOf(v) {
			t.Errorf("version %d: report %q: %+v, %v", v, s.line, rep, err)
		}
		if has := bytes.Contains(s.line, []byte(`"version"`)); has != (proto.VersionOf(v) > 1) {
			t.Errorf("version %d: report %q", v, s.line)
		}
		if code := s.wait(t); code != 0 {
			t.Errorf("version %d: shim exit code %d", v, code)
		}
	}

	e := newEnv(t, "true")
	e.writeConfigVersion(proto.ActionRun, 0, proto.Version+1)
	s := e.startShim()
	rep, err := proto.ParseReport(s.line)
	if err != nil || rep.Pid != 0 || !strings.Contains(rep.Error, fmt.Sprintf("version %d", proto.Version+1)) {
		t.Errorf("newer version: report %q: %+v, %v; want an error naming it", s.line, rep, err)
	}
	if code := s.wait(t); code != 1 {
		t.Errorf("newer version: shim exit code %d, want 1", code)
	}
	for _, name := range []string{proto.RuntimeLog, proto.PidFile, proto.ExitStatusFile} {
		if _, err := os.Stat(filepath.Join(e.dir, name)); err == nil {
			t.Errorf("newer version: %s written: the runtime ran", name)
		}
	}
}

func TestShimLogBound(t *testing.T) {
	const bound = 64 << 10
	const total = 3 << 20
	e := newEnv(t, "sh", "-c", fmt.Sprintf("yes | head -c %d; echo done >&2", total))
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
	// The newest bytes are kept, at their offsets in the stream.
	f, err := os.Open(filepath.Join(e.dir, proto.StdoutLog))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	start := firstData(int(f.Fd()), st.Size())
	if st.Size() != total {
		t.Errorf("stdout size %d, want %d", st.Size(), total)
	}
	kept := make([]byte, st.Size()-start)
	f.ReadAt(kept, start)
	if len(kept) > bound || len(kept) < bound/2 || start%2 != 0 || string(kept) != strings.Repeat("y\n", len(kept)/2) {
		t.Errorf("stdout keeps %d bytes from %d, want the last <= %d bytes of \"y\\n\"", len(kept), start, bound)
	}
	if got := e.read(proto.StderrLog); got != "done\n" {
		t.Errorf("stderr = %q", got)
	}
	if log := e.read(proto.ShimLog); !strings.Contains(log, fmt.Sprintf(`"trimmed":%d`, start)) {
		t.Errorf("trimmed bytes not logged:\n%s", log)
	}
}

// execEnv is a second process dir beside e's, for an exec into e's
// container; it makes the fifos the daemon would.
func (e *env) execEnv(name string, spec map[string]any, stdin, terminal bool) *env {
	t := e.t
	x := *e
	x.dir = filepath.Join(filepath.Dir(e.dir), name)
	if err := os.Mkdir(x.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	fifos := []string{proto.ExitFifo, proto.ControlFifo}
	if stdin {
		fifos = append(fifos, proto.StdinFifo)
	}
	for _, f := range fifos {
		if err := unix.Mkfifo(filepath.Join(x.dir, f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := json.Marshal(spec)
	cfg := proto.Config{
		ID: e.id, Process: name, Action: proto.ActionExec, Bundle: e.bundle,
		Runtime: e.runc, RuntimeRoot: e.root, Spec: raw, Stdin: stdin, Terminal: terminal,
	}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(x.dir, proto.ConfigFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return &x
}

// control writes one message to the control fifo, as the daemon does.
func (e *env) control(m proto.Control) {
	e.t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, proto.ControlFifo), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	data, _ := json.Marshal(m)
	if _, err := f.Write(append(data, '\n')); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) writeStdin(s string) {
	e.t.Helper()
	f, err := os.OpenFile(filepath.Join(e.dir, proto.StdinFifo), os.O_WRONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(s)); err != nil {
		e.t.Fatal(err)
	}
}

// waitLog waits until the log name holds want.
func (e *env) waitLog(name, want string) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.read(name) != want {
		if time.Now().After(deadline) {
			e.t.Fatalf("%s = %q, want %q; shim.log:\n%s", name, e.read(name), want, e.read(proto.ShimLog))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func execSpec(args ...string) map[string]any {
	return map[string]any{"args": args, "cwd": "/", "env": []string{"PATH=/bin"}, "user": map[string]any{"uid": 0, "gid": 0}}
}

func TestShimExecStdin(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.writeConfig(proto.ActionRun, 0)
	s := e.startShim()
	if s.report.Pid <= 0 {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	defer e.runcCmd("kill", e.id, "KILL")

	x := e.execEnv("cat1", execSpec("sh", "-c", "cat; echo after >&2; exit 5"), true, false)
	xs := x.startShim()
	if xs.report.Pid <= 0 {
		t.Fatalf("exec report = %+v; shim.log:\n%s", xs.report, x.read(proto.ShimLog))
	}
	checkPidFile(t, x.read(proto.PidFile), xs.report.Pid)
	x.writeStdin("ping\n")
	x.waitLog(proto.StdoutLog, "ping\n")
	// Bytes written just before close-stdin still arrive, then EOF.
	x.writeStdin("last words")
	x.control(proto.Control{Op: proto.ControlCloseStdin})
	if code := xs.wait(t); code != 0 {
		t.Fatalf("exec shim exit code %d; shim.log:\n%s", code, x.read(proto.ShimLog))
	}
	if st := x.exitStatus(); st.Status != 5 {
		t.Errorf("exec exit status = %+v, want 5", st)
	}
	if got := x.read(proto.StdoutLog); got != "ping\nlast words" {
		t.Errorf("stdout = %q", got)
	}
	if got := x.read(proto.StderrLog); got != "after\n" {
		t.Errorf("stderr = %q", got)
	}
	if _, err := os.Stat(filepath.Join(x.dir, proto.StdinFifo)); !os.IsNotExist(err) {
		t.Errorf("stdin fifo after close-stdin: %v, want it removed", err)
	}
	select {
	case <-s.done:
		t.Error("the container's shim exited with its exec")
	default:
	}
}

func TestShimExecTerminal(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.writeConfig(proto.ActionRun, 0)
	s := e.startShim()
	if s.report.Pid <= 0 {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	defer e.runcCmd("kill", e.id, "KILL")

	spec := execSpec("sh", "-c", "read x; stty size; echo got $x; cat")
	spec["terminal"] = true
	x := e.execEnv("t1", spec, true, true)
	xs := x.startShim()
	if xs.report.Pid <= 0 {
		t.Fatalf("exec report = %+v; shim.log:\n%s", xs.report, x.read(proto.ShimLog))
	}
	x.control(proto.Control{Op: proto.ControlResize, Cols: 100, Rows: 40})
	// Control and stdin are two fifos: wait for the resize to be done
	// before the line that makes the process look.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(x.read(proto.ShimLog), `"msg":"resized"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no resize in shim.log:\n%s", x.read(proto.ShimLog))
		}
		time.Sleep(20 * time.Millisecond)
	}
	x.writeStdin("go\n")
	x.waitLog(proto.StdoutLog, "go\r\n40 100\r\ngot go\r\n")
	// close-stdin on a terminal types the EOF character: cat ends.
	x.writeStdin("partial")
	x.control(proto.Control{Op: proto.ControlCloseStdin})
	if code := xs.wait(t); code != 0 {
		t.Fatalf("exec shim exit code %d; shim.log:\n%s", code, x.read(proto.ShimLog))
	}
	if st := x.exitStatus(); st.Status != 0 {
		t.Errorf("exec exit status = %+v, want 0", st)
	}
	if got, want := x.read(proto.StdoutLog), "go\r\n40 100\r\ngot go\r\npartialpartial"; got != want {
		t.Errorf("stdout = %q, want %q (echo, then cat's copy)", got, want)
	}
	if got := x.read(proto.StderrLog); got != "" {
		t.Errorf("stderr of a terminal process = %q, want empty", got)
	}
}

func TestChildStartTime(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	want, err := procfs.StartTime(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := childStartTime(cmd.Process.Pid); err != nil || got != want {
		t.Errorf("childStartTime of our child = %d, %v; want %d", got, err, want)
	}
	// pid 1 is nobody's child: a reused pid must not pass for the process.
	if got, err := childStartTime(1); err == nil || got != 0 {
		t.Errorf("childStartTime(1) = %d, %v; want an error", got, err)
	}
}

// TestShimCloseStdinDeliversAFullFifo: input the process has not read yet
// when close-stdin comes — a full pipe, the shim's buffer and a full fifo —
// all arrives before the EOF. The drain after close-stdin once went
// through a raw read that saw the wake-up deadline and read nothing,
// dropping what the fifo held.
func TestShimCloseStdinDeliversAFullFifo(t *testing.T) {
	e := newEnv(t, "sleep", "1000")
	e.writeConfig(proto.ActionRun, 0)
	s := e.startShim()
	if s.report.Pid <= 0 {
		t.Fatalf("report = %+v; shim.log:\n%s", s.report, e.read(proto.ShimLog))
	}
	defer e.runcCmd("kill", e.id, "KILL")

	x := e.execEnv("late", execSpec("sh", "-c", "sleep 1; cat"), true, false)
	xs := x.startShim()
	if xs.report.Pid <= 0 {
		t.Fatalf("exec report = %+v; shim.log:\n%s", xs.report, x.read(proto.ShimLog))
	}
	const size = 160 << 10 // more than the pipe and the shim's buffer hold
	x.writeStdin(strings.Repeat("x", size))
	x.control(proto.Control{Op: proto.ControlCloseStdin})
	if code := xs.wait(t); code != 0 {
		t.Fatalf("exec shim exit code %d; shim.log:\n%s", code, x.read(proto.ShimLog))
	}
	if got := len(x.read(proto.StdoutLog)); got != size {
		t.Errorf("stdout holds %d bytes of the %d written before close-stdin", got, size)
	}
}

// An unbounded log keeps everything; held back by the disk guard it drops
// and publishes the count beside the log.
func TestUnboundedLogAndLostFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "stdout")
	b, err := openBounded(path, -1)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	b.Write(big)
	b.guardChecked, b.guardOn, b.sinceCheck = true, true, 0 // as if the disk were short
	b.Write([]byte("dropped"))
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st == nil || st.Size() != 3<<20 {
		t.Errorf("unbounded log size = %v, want %d", st, 3<<20)
	}
	if got, err := os.ReadFile(path + proto.LostSuffix); err != nil || string(got) != "7" {
		t.Errorf("lost file = %q, %v; want 7", got, err)
	}
}
