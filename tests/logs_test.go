package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bgCmd is a program left running in the background (tail -f), its output
// kept; it is killed at the end of the test (it is the test's own child).
type bgCmd struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (b *bgCmd) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func (b *bgCmd) text() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.String()
}

func startBg(tb testing.TB, name string, args ...string) *bgCmd {
	tb.Helper()
	b := &bgCmd{cmd: exec.Command(name, args...), done: make(chan struct{})}
	b.cmd.Stdout, b.cmd.Stderr = b, b
	// A group of its own, killed whole: `timeout` leaves its child
	// running when it is killed.
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.WaitDelay = time.Second
	if err := b.cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	go func() { b.cmd.Wait(); close(b.done) }()
	tb.Cleanup(func() {
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.done
	})
	return b
}

// waitOutput waits until the program's output is want.
func (b *bgCmd) waitOutput(tb testing.TB, what, want string) {
	tb.Helper()
	waitFor(tb, what, func() (bool, string) {
		got := b.text()
		return got == want, fmt.Sprintf("output %q, want %q", got, want)
	})
}

// TestLogFileTools: processes/NAME/stdout of a running process behaves as
// a log file for the tools people use: stat gives the length so far, cat,
// wc and grep return, tail -n prints the last lines, GNU tail -f and -F and
// busybox tail -f follow it, Python and Go read it, seek and stat it.
func TestLogFileTools(t *testing.T) {
	d := startDaemon(t)
	id := newID("logs")
	d.run(id, demoBundle(t))
	// One line per line read from stdin: the test paces the output.
	d.mustExec(id, `echo --stdin -- sh -c 'while read x; do echo "line $x"; done'`)
	out := d.path(id, "processes", "echo", "stdout")
	var want strings.Builder
	say := func(words ...string) {
		t.Helper()
		var in strings.Builder
		for _, w := range words {
			in.WriteString(w + "\n")
			want.WriteString("line " + w + "\n")
		}
		if err := d.writeStdin(id, "echo", []byte(in.String())); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "stdout's size", func() (bool, string) {
			st, err := os.Stat(out)
			return err == nil && st.Size() == int64(want.Len()), fmt.Sprintf("stat: %v, %v; want size %d", st, err, want.Len())
		})
	}
	say("one", "two", "three")

	env := []string{"OUT=" + out}
	for _, c := range []struct{ script, want string }{
		{`timeout 10 cat "$OUT"`, want.String()},
		{`timeout 10 tail -n 2 "$OUT"`, "line two\nline three\n"},
		{`timeout 10 busybox tail -n 1 "$OUT"`, "line three\n"},
		{`timeout 10 wc -l < "$OUT"`, "3\n"},
		{`timeout 10 grep -c line "$OUT"`, "3\n"},
		{`stat -c %s "$OUT"`, fmt.Sprintf("%d\n", want.Len())},
		{`timeout 10 tail -c 6 "$OUT"`, "three\n"},
	} {
		if r := d.sh(c.script, env...); r.code != 0 || r.stdout != c.want {
			t.Errorf("%s on a running process: %s, want %q", c.script, r, c.want)
		}
	}
	// Go: os.ReadFile returns while the process runs; Seek from the end.
	if b, err := within(opTimeout, "ReadFile", func() ([]byte, error) { return os.ReadFile(out) }); err != nil || string(b) != want.String() {
		t.Errorf("os.ReadFile = %q, %v", b, err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if off, err := f.Seek(-6, io.SeekEnd); err != nil || off != int64(want.Len()-6) {
		t.Errorf("Seek(-6, End) = %d, %v", off, err)
	}
	if b, err := io.ReadAll(f); err != nil || string(b) != "three\n" {
		t.Errorf("read after Seek(-6, End) = %q, %v", b, err)
	}
	f.Close()

	// Python: read() returns what is there; seek and tell work.
	py := needTool(t, "python3")
	pyScript := `import os, sys
p = sys.argv[1]
with open(p, "rb") as f:
    data = f.read()
    f.seek(-6, 2)
    tail = f.read()
print(len(data), os.stat(p).st_size, tail.decode().strip())`
	r := d.sh(fmt.Sprintf("timeout 10 %s -c '%s' \"$OUT\"", py, pyScript), env...)
	if wantPy := fmt.Sprintf("%d %d three\n", want.Len(), want.Len()); r.code != 0 || r.stdout != wantPy {
		t.Errorf("python reader: %s, want %q", r, wantPy)
	}

	// Followers: each prints the last line, then what comes.
	gnuF := startBg(t, "timeout", "60", "tail", "-n", "1", "-f", out)
	gnuFF := startBg(t, "timeout", "60", "tail", "-n", "1", "-F", out)
	bbF := startBg(t, "timeout", "60", "busybox", "tail", "-n", "1", "-f", out)
	for _, b := range []*bgCmd{gnuF, gnuFF, bbF} {
		b.waitOutput(t, strings.Join(b.cmd.Args, " ")+" at start", "line three\n")
	}
	say("four")
	say("five")
	for _, b := range []*bgCmd{gnuF, gnuFF, bbF} {
		b.waitOutput(t, strings.Join(b.cmd.Args, " ")+" following", "line three\nline four\nline five\n")
	}
	d.mustCtl("close-stdin", id, "processes", "echo")
	d.waitExit(id, "echo", "0")
	if r := d.sh(`cat "$OUT"`, env...); r.stdout != want.String() {
		t.Errorf("cat after the exit: %s", r)
	}
}

// TestLogMaxSizeAndLoss: the bound is the container's (create/run
// --log-max-size) unless an exec says otherwise, 0 keeps everything;
// status and stdout.lost tell how many bytes went; a live follower that
// falls behind gets EIO once per skip, with the count in the ctl's last
// error, and learns the rest from the log's size.
func TestLogMaxSizeAndLoss(t *testing.T) {
	d := startDaemon(t)
	id := newID("lost")
	d.run(id, demoBundle(t), "--log-max-size", "64K")
	st := d.status(id)
	if st["log_max_size"] != float64(64<<10) {
		t.Errorf("status log_max_size = %v, want 65536", st["log_max_size"])
	}
	if lost, ok := st["lost"].(map[string]any); !ok || lost["stdout"] != float64(0) || lost["stderr"] != float64(0) {
		t.Errorf("status lost = %v, want stdout and stderr 0", st["lost"])
	}

	// An exec takes the container's bound...
	d.mustExec(id, "bounded -- dd if=/dev/zero bs=64k count=16")
	d.waitExit(id, "bounded", "0")
	if got := d.readTrim(id, "processes", "bounded", "stdout.lost"); got == "0" || got == "" {
		t.Errorf("1 MiB through a 64 KiB bound: stdout.lost = %q, want > 0", got)
	}
	// The exit is known before the shim has drained the pipe: a reader that
	// starts then follows the last bytes in as they come, past the bound.
	// Once the drain is over, a reader gets the kept bytes alone.
	waitFor(t, "cat stdout of a bounded log to give the kept bytes alone (<= 65536)", func() (bool, string) {
		b := d.read(id, "processes", "bounded", "stdout")
		return len(b) <= 64<<10 && len(b) > 0, fmt.Sprintf("%d bytes", len(b))
	})
	if fi, err := os.Stat(d.path(id, "processes", "bounded", "stdout")); err != nil || fi.Size() != 1<<20 {
		t.Errorf("stat of a bounded log: %v, %v; want the stream's length, 1048576", fi, err)
	}
	// ... or its own; 0 keeps everything.
	d.mustExec(id, "all --log-max-size 0 -- dd if=/dev/zero bs=64k count=16")
	d.waitExit(id, "all", "0")
	if got := d.readTrim(id, "processes", "all", "stdout.lost"); got != "0" {
		t.Errorf("--log-max-size 0: stdout.lost = %q, want 0", got)
	}
	if b := d.read(id, "processes", "all", "stdout"); len(b) != 1<<20 {
		t.Errorf("--log-max-size 0: %d bytes kept, want 1048576", len(b))
	}
	for _, bad := range []string{"exec x --log-max-size 1000 -- true", "exec x --log-max-size 8Q -- true", "exec x --log-max-size -1 -- true"} {
		if _, err := d.ctl(bad+"\n", id); err == nil || !strings.Contains(err.Error(), "invalid argument") {
			t.Errorf("%q: %v, want EINVAL", bad, err)
		}
	}
	if _, err := d.ctl("run x " + demoBundle(t) + " --log-max-size 1\n"); err == nil {
		t.Errorf("run --log-max-size 1: accepted")
	}

	// A live follower of 256 MiB through a 64 KiB bound falls behind: it
	// is told at each skip, and reads on.
	py := needTool(t, "python3")
	d.mustExec(id, "dd --stdin -- sh -c 'read go; dd if=/dev/zero bs=1M count=256 2>/dev/null'")
	follow := d.path(id, "processes", "dd", "stdout.follow")
	opened := filepath.Join(t.TempDir(), "opened")
	script := `import errno, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
open(sys.argv[2], "w").close()
got = eio = 0
while True:
    try:
        b = os.read(fd, 1 << 16)
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        eio += 1
        continue
    if not b:
        break
    got += len(b)
print(got, eio)`
	pyOut := make(chan shResult, 1)
	go func() {
		pyOut <- d.sh(fmt.Sprintf("timeout 120 %s -c '%s' \"$F\" \"$M\"", py, script), "F="+follow, "M="+opened)
	}()
	// The reader has opened before the first byte: a reader that opens
	// late starts at the oldest byte kept, and has skipped nothing itself.
	waitFor(t, "the python follower to open stdout.follow", func() (bool, string) {
		_, err := os.Stat(opened)
		return err == nil, fmt.Sprint(err)
	})
	if err := d.writeStdin(id, "dd", []byte("go\n")); err != nil {
		t.Fatal(err)
	}
	var r shResult
	select {
	case r = <-pyOut:
	case <-time.After(3 * waitTimeout):
		t.Fatal("the python follower did not end")
	}
	var got, eio int64
	if _, err := fmt.Sscan(r.stdout, &got, &eio); err != nil || r.code != 0 {
		t.Fatalf("python follower: %s", r)
	}
	size := int64(256 << 20)
	lost, _ := strconv.ParseInt(d.readTrim(id, "processes", "dd", "stdout.lost"), 10, 64)
	t.Logf("follower of dd 256 MiB through a 64 KiB bound: read %d bytes, told of loss %d times; the log let go %d", got, eio, lost)
	if got < size && eio == 0 {
		t.Errorf("the follower read %d of %d bytes and was never told of the loss", got, size)
	}
	if lost < size-got || lost == 0 {
		t.Errorf("stdout.lost = %d; the follower missed %d", lost, size-got)
	}
	if msg := d.read(id, "processes", "dd", "ctl"); !strings.Contains(msg, "lost") {
		t.Errorf("the ctl's last error does not tell of the loss:\n%s", msg)
	}
}

// TestIdleStreamReadersHoldNoFd: 20,000 open handles of stdout and
// stdout.follow (held by two processes, 10,000 each: a process's fd limit
// is 20,000 here) cost the daemon no file descriptor each; it still runs
// execs while they are open.
func TestIdleStreamReadersHoldNoFd(t *testing.T) {
	py := needTool(t, "python3")
	d := startDaemon(t)
	id := newID("fds")
	d.run(id, demoBundle(t))
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := fds()
	// 10,000 a holder on a host; fewer under emulation, where the opens
	// alone outlast a wait. Any of them holding a daemon fd would show.
	perHolder := 10000 / int(timeoutScale())
	holder := `import sys, time
d = sys.argv[1]
fs = [open(d + ("/stdout" if i % 2 else "/stdout.follow"), "rb") for i in range(int(sys.argv[2]))]
print("held", len(fs), flush=True)
time.sleep(600)`
	dir := d.path(id, "processes", "init")
	var holders []*bgCmd
	for i := 0; i < 2; i++ {
		// Each holder may open them whatever the machine's default
		// limit (a guest's is 1024:4096): prlimit raises it, as root.
		holders = append(holders, startBg(t, "prlimit", fmt.Sprintf("--nofile=%d:%d", perHolder+100, perHolder+100),
			py, "-c", holder, dir, strconv.Itoa(perHolder)))
	}
	for _, h := range holders {
		h.waitOutput(t, fmt.Sprintf("a holder of %d open handles", perHolder), fmt.Sprintf("held %d\n", perHolder))
	}
	after := fds()
	t.Logf("daemon fds: %d before, %d with %d idle readers of stdout and stdout.follow", before, after, 2*perHolder)
	if after-before > 100 {
		t.Errorf("the daemon holds %d more fds with %d idle readers", after-before, 2*perHolder)
	}
	d.mustExec(id, "hello -- echo hello")
	d.waitExit(id, "hello", "0")
	if got := d.read(id, "processes", "hello", "stdout"); got != "hello\n" {
		t.Errorf("exec with %d idle readers: stdout %q", 2*perHolder, got)
	}
	var status map[string]any
	if err := json.Unmarshal([]byte(d.read(id, "status")), &status); err != nil {
		t.Errorf("status: %v", err)
	}
}
