package tests

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/tests/bundle"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestStdinRoundTrip sends 4 MiB of random bytes through `cat` — written to
// stdin from Go (non-blocking writes that wait for POLLOUT), read back
// from stdout from Go (non-blocking reads that wait for POLLIN) at the same
// time — and requires them back byte for byte, then EOF.
func TestStdinRoundTrip(t *testing.T) {
	d := startDaemon(t)
	id := newID("rt")
	d.run(id, demoBundle(t))
	d.mustExec(id, "cat --stdin -- cat")
	data := make([]byte, 4<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	out := d.follow(id, "processes", "cat", "stdout.follow")
	if err := d.writeStdin(id, "cat", data); err != nil {
		t.Fatalf("write 4 MiB to stdin: %v", err)
	}
	d.mustCtl("close-stdin", id, "processes", "cat")
	got := out.eof()
	if !bytes.Equal([]byte(got), data) {
		i := 0
		for i < len(got) && i < len(data) && got[i] == data[i] {
			i++
		}
		t.Fatalf("stdout: %d bytes, first difference at %d; want the %d bytes written", len(got), i, len(data))
	}
	d.waitExit(id, "cat", "0")
	// A writer after close-stdin: EPIPE.
	if err := d.writeStdin(id, "cat", []byte("late")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write after close-stdin and exit: %v, want EPIPE", err)
	}
}

// TestFollowFromBeforeOutput attaches readers before the process prints:
// each gets every line, in order, then EOF — a Go reader, a shell's cat,
// and a reader opened after the exit.
func TestFollowFromBeforeOutput(t *testing.T) {
	d := startDaemon(t)
	id := newID("follow")
	d.run(id, demoBundle(t))
	// The process waits for a line on stdin before it prints, so the
	// readers are surely attached before its first byte.
	d.mustExec(id, `pr --stdin -- sh -c 'read go; i=0; while [ $i -lt 2000 ]; do echo line $i; i=$((i+1)); done; echo to-stderr >&2'`)
	a := d.follow(id, "processes", "pr", "stdout.follow")
	b := d.follow(id, "processes", "pr", "stdout.follow")
	e := d.follow(id, "processes", "pr", "stderr.follow")
	shCat := make(chan shResult, 1)
	go func() { shCat <- d.sh("cat " + d.path(id, "processes", "pr", "stdout.follow")) }()
	time.Sleep(50 * time.Millisecond)
	if a.text() != "" || a.ended() {
		t.Fatalf("a reader of a silent process got %q (ended %v)", a.text(), a.ended())
	}
	if err := d.writeStdin(id, "pr", []byte("go\n")); err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	for name, r := range map[string]*follower{"first reader": a, "second reader": b} {
		if got := r.eof(); got != want.String() {
			t.Errorf("%s: %d bytes, want the %d of 2000 lines in order", name, len(got), want.Len())
		}
	}
	if got := e.eof(); got != "to-stderr\n" {
		t.Errorf("stderr = %q", got)
	}
	select {
	case r := <-shCat:
		if r.stdout != want.String() || r.code != 0 {
			t.Errorf("cat stdout: exit %d, %d bytes", r.code, len(r.stdout))
		}
	case <-time.After(waitTimeout):
		t.Fatal("cat stdout did not end")
	}
	d.waitExit(id, "pr", "0")
	if got := d.read(id, "processes", "pr", "stdout"); got != want.String() {
		t.Errorf("a read after the exit: %d bytes", len(got))
	}
}

// TestStreamBlockingAndPoll: at the end of the output of a running process
// a read blocks, EAGAIN under O_NONBLOCK, poll wakes when output comes, an
// interrupted read returns at once and leaves no request behind.
func TestStreamBlockingAndPoll(t *testing.T) {
	d := startDaemon(t)
	id := newID("poll")
	d.run(id, demoBundle(t))
	d.mustExec(id, "cat --stdin -- cat")
	out := d.path(id, "processes", "cat", "stdout.follow")

	fd, err := unix.Open(out, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if n, err := unix.Read(fd, make([]byte, 10)); err != unix.EAGAIN {
		t.Errorf("O_NONBLOCK read at the end: n=%d err=%v, want EAGAIN", n, err)
	}
	if r := d.sh("timeout 1 cat " + out + "; echo rc=$?"); !strings.Contains(r.stdout, "rc=124") {
		t.Errorf("timeout 1 cat stdout of a silent process: %s, want rc=124", r)
	}
	waitNoFuseRequests(t, d, 0)

	_, woke := pollIn(t, out)
	if err := d.writeStdin(id, "cat", []byte("wake\n")); err != nil {
		t.Fatal(err)
	}
	waitWoken(t, "stdout", woke)
	buf := make([]byte, 100)
	n, err := unix.Read(fd, buf)
	if err != nil || string(buf[:n]) != "wake\n" {
		t.Errorf("O_NONBLOCK read after the wake-up: %q, %v", buf[:n], err)
	}
	if _, err := unix.Seek(fd, 0, 0); err != unix.ESPIPE {
		t.Errorf("lseek on a stream: %v, want ESPIPE", err)
	}
	// fd has read everything: a poll on it waits, and the exit wakes it
	// (EOF is something to read).
	woke = pollInBackground(fd)
	select {
	case r := <-woke:
		t.Fatalf("poll at the end of a running process's output returned: %s", r)
	case <-time.After(100 * time.Millisecond):
	}
	d.mustCtl("close-stdin", id, "processes", "cat")
	waitWoken(t, "stdout at the exit", woke)
	if n, err := unix.Read(fd, buf); n != 0 || err != nil {
		t.Errorf("read after the exit: %d, %v; want EOF", n, err)
	}
	d.waitExit(id, "cat", "0")
}

// TestExecSurvivesDaemonKill kills the daemon with SIGKILL while a process
// prints steadily and another waits on stdin, and restarts it: the output
// read from the start has every line, in order, without gaps or
// duplicates; the waiting process can still be fed, closed and removed;
// one that ended while the daemon was down has its status.
func TestExecSurvivesDaemonKill(t *testing.T) {
	d := startDaemon(t)
	id := newID("xkill")
	d.run(id, demoBundle(t))
	const lines = 3000
	d.mustExec(id, fmt.Sprintf(`printer -- sh -c 'i=0; while [ $i -lt %d ]; do echo line $i; i=$((i+1)); usleep 1000; done'`, lines))
	d.mustExec(id, "reader --stdin -- sh -c 'while read l; do echo got $l; done; echo end'")
	d.mustExec(id, "quick -- sleep 1000")
	if err := d.writeStdin(id, "reader", []byte("before\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the printer to have printed", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(d.state, id, "printer", "stdout"))
		return bytes.Count(b, []byte("\n")) > 100, fmt.Sprintf("%d bytes", len(b))
	})
	d.kill()
	// While the daemon is down: the printer goes on, quick is killed.
	qpid, qstart, err := readPidFile(filepath.Join(d.state, id, "quick", "pid"))
	if err != nil || !processAlive(qpid, qstart) {
		t.Fatalf("quick's pid file: %d %v", qpid, err)
	}
	if err := syscall.Kill(qpid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "quick to end while the daemon is down", func() (bool, string) {
		_, err := os.Stat(filepath.Join(d.state, id, "quick", "exitStatus"))
		return err == nil, fmt.Sprint(err)
	})
	// What a daemon that died in the middle of an exec leaves: the
	// process's directory and config, no pid. And a directory that is no
	// process's.
	ghost := filepath.Join(d.state, id, "ghost")
	other := filepath.Join(d.state, id, "not-a-process")
	for _, dir := range []string{ghost, other} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cfg := fmt.Sprintf(`{"id":%q,"process":"ghost","action":"exec","bundle":"/x","runtime":"/usr/bin/runc","spec":{"args":["true"],"cwd":"/"}}`, id)
	if err := os.WriteFile(filepath.Join(ghost, "process.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.restart()
	if got := d.readDir(id, "processes"); strings.Join(got, " ") != "init printer quick reader" {
		t.Errorf("processes/ after the restart = %v", got)
	}
	if _, err := os.Stat(ghost); !os.IsNotExist(err) {
		t.Errorf("the directory of an exec cut short by the crash: %v, want it undone", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a directory that is no process's: %v, want it left alone", err)
	}

	var want strings.Builder
	for i := 0; i < lines; i++ {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	got := d.follow(id, "processes", "printer", "stdout.follow").eof()
	if got != want.String() {
		gl := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
		t.Errorf("printer's stdout after a restart: %d lines (first %q, last %q), want %d in order", len(gl), gl[0], gl[len(gl)-1], lines)
	}
	d.waitExit(id, "printer", "0")
	if got := d.readTrim(id, "processes", "quick", "exit"); got != "137" {
		t.Errorf("quick, killed while the daemon was down: exit %q, want 137", got)
	}
	if err := d.writeStdin(id, "reader", []byte("after\n")); err != nil {
		t.Fatalf("stdin after the restart: %v", err)
	}
	d.mustCtl("close-stdin", id, "processes", "reader")
	if got := d.follow(id, "processes", "reader", "stdout.follow").eof(); got != "got before\ngot after\nend\n" {
		t.Errorf("reader's stdout = %q", got)
	}
	d.waitExit(id, "reader", "0")
	// Its stdin stays closed across another restart.
	d.kill()
	d.restart()
	if err := d.writeStdin(id, "reader", []byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("stdin of an exited process after a restart: %v, want EPIPE", err)
	}
	if _, err := within(opTimeout, "rmdir", func() (int, error) { return 0, os.Remove(d.path(id, "processes", "quick")) }); err != nil {
		t.Errorf("rmdir of an exec that ended while the daemon was down: %v", err)
	}
}

// TestLogBoundKeepsTheTail writes 2 MiB through a 64 KiB --log-max-size: a
// reader that keeps up gets every byte; a reader that comes later gets the
// newest bytes, which end where the stream ends.
func TestLogBoundKeepsTheTail(t *testing.T) {
	d := startDaemon(t, "--log-max-size", "65536")
	id := newID("bound")
	d.run(id, demoBundle(t))
	// One 32 KiB chunk of numbered lines per line read from stdin: the
	// test paces the writer, so its reader surely keeps up.
	const chunks = 64
	d.mustExec(id, `chunky --stdin -- sh -c 'n=0; while read x; do i=0; while [ $i -lt 1024 ]; do printf "%05d %05d ...................\n" $n $i; i=$((i+1)); done; n=$((n+1)); done'`)
	r := d.follow(id, "processes", "chunky", "stdout.follow")
	var want strings.Builder
	for n := 0; n < chunks; n++ {
		for i := 0; i < 1024; i++ {
			fmt.Fprintf(&want, "%05d %05d ...................\n", n, i)
		}
		if err := d.writeStdin(id, "chunky", []byte("next\n")); err != nil {
			t.Fatal(err)
		}
		r.waitFor(want.String())
	}
	d.mustCtl("close-stdin", id, "processes", "chunky")
	if got := r.eof(); got != want.String() {
		t.Fatalf("the reader that kept up: %d bytes, want %d", len(got), want.Len())
	}
	late := d.read(id, "processes", "chunky", "stdout")
	if len(late) > 65536 || len(late) < 65536*15/16 || !strings.HasSuffix(want.String(), late) {
		t.Errorf("a late reader got %d bytes; want the last 61440 to 65536 bytes of the stream", len(late))
	}
	st, err := os.Stat(filepath.Join(d.state, id, "chunky", "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	if used := st.Sys().(*syscall.Stat_t).Blocks * 512; used > 2*65536 {
		t.Errorf("the log uses %d bytes on disk for a bound of 65536", used)
	}
}

// TestInitStdinAndTTY: `run --stdin` feeds init; `run --tty` with a bundle
// that says "terminal": true gives init a terminal that resizes; `--tty`
// with one that does not is refused and leaves nothing.
func TestInitStdinAndTTY(t *testing.T) {
	d := startDaemon(t)
	catID := newID("istdin")
	d.run(catID, newBundle(t, "sh", "-c", "cat; exit 4"), "--stdin")
	out := d.follow(catID, "processes", "init", "stdout.follow")
	if err := d.writeStdin(catID, "init", []byte("to init\n")); err != nil {
		t.Fatal(err)
	}
	out.waitFor("to init\n")
	d.mustCtl("close-stdin", catID, "processes", "init")
	d.waitState(catID, "stopped")
	if got := d.readTrim(catID, "processes", "init", "exit"); got != "4" {
		t.Errorf("init exit = %q, want 4", got)
	}
	if got := out.eof(); got != "to init\n" {
		t.Errorf("init stdout = %q", got)
	}

	// create, then start: the terminal has its starting size (80x24, the
	// bundle gives none) before init runs.
	ttyBundle := newBundle(t, "sh", "-c", `stty size; until [ "$(stty size)" = "33 120" ]; do sleep 0.05; done; stty size; echo on $(tty); exec sleep 1000`)
	if err := bundle.Edit(ttyBundle, func(s *specs.Spec) { s.Process.Terminal = true }); err != nil {
		t.Fatal(err)
	}
	ttyID := newID("itty")
	d.mustCtl("create "+ttyID+" "+ttyBundle+" --tty", "")
	o := d.follow(ttyID, "processes", "init", "stdout.follow")
	d.mustCtl("start", ttyID)
	o.waitFor("24 80\r\n")
	d.mustCtl("resize 120 33", ttyID, "processes", "init")
	o.waitFor("24 80\r\n33 120\r\non /dev/pts/0\r\n")
	d.mustCtl("kill KILL", ttyID)
	d.waitState(ttyID, "stopped")
	if got := d.read(ttyID, "processes", "init", "stderr"); got != "" {
		t.Errorf("stderr of init on a terminal = %q", got)
	}

	plain := newID("itty-no")
	res, err := d.ctl("run "+plain+" "+demoBundle(t)+" --tty", "")
	if !errors.Is(err, syscall.EINVAL) || !strings.Contains(res, `"terminal": true`) {
		t.Errorf("run --tty of a bundle without a terminal: %v, %q", err, res)
	}
	if _, err := os.Stat(filepath.Join(d.state, plain)); !os.IsNotExist(err) {
		t.Errorf("state dir of a refused run: %v", err)
	}
	for _, id := range []string{catID, ttyID} {
		d.mustCtl("delete "+id, "")
	}
}

// TestExecStdinNonblockAndInterrupt: a stdin write to a process that does
// not read fills the buffers on the way, then blocks; under O_NONBLOCK it
// fails with EAGAIN; an interrupted writer returns.
func TestExecStdinNonblockAndInterrupt(t *testing.T) {
	d := startDaemon(t)
	id := newID("full")
	d.run(id, demoBundle(t))
	d.mustExec(id, "deaf --stdin -- sleep 1000")
	p := d.path(id, "processes", "deaf", "stdin")
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	chunk := bytes.Repeat([]byte("x"), 4096)
	// Fill until EAGAIN, then again after a pause, until a round takes
	// nothing: the shim may still be moving bytes from the fifo into the
	// process's pipe when the first EAGAIN comes (a -race shim is slow),
	// and that room would let the blocking writer below finish.
	total := 0
	for round := 0; ; round++ {
		took, full := 0, false
		for total < 64<<20 {
			n, err := unix.Write(fd, chunk)
			if err == unix.EAGAIN {
				full = true
				break
			}
			if err != nil {
				t.Fatalf("write after %d bytes: %v", total, err)
			}
			total += n
			took += n
		}
		if !full {
			t.Fatalf("%d bytes went into a process that does not read, without EAGAIN", total)
		}
		if took == 0 && round > 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d bytes buffered before EAGAIN", total)
	if r := d.sh("head -c 100000 /dev/zero | timeout 1 tee " + p + " >/dev/null; echo rc=$?"); !strings.Contains(r.stdout, "rc=124") {
		t.Errorf("a blocking writer to a full stdin, interrupted: %s, want rc=124", r)
	}
	waitNoFuseRequests(t, d, 0)
	d.mustCtl("kill KILL", id, "processes", "deaf")
	d.waitExit(id, "deaf", "137")
	if _, err := unix.Write(fd, chunk); err != unix.EPIPE {
		t.Errorf("write after the exit: %v, want EPIPE", err)
	}
}

// TestFollowEndsOnlyWithTheLastByte: the exit is recorded from the shim's
// report, a moment before the shim has drained the process's last output
// into the log. Followers, and a reader that starts right after `wait`
// returns, must still get every byte before EOF. The process ends with one
// big write, so that the pipe is full when it exits, with readers waiting
// at the end of the log.
func TestFollowEndsOnlyWithTheLastByte(t *testing.T) {
	d := startDaemon(t)
	id := newID("tail")
	d.run(id, demoBundle(t))
	d.mustExec(id, `mk -- sh -c 'seq 1 300000 > /tmp/big'`)
	d.waitExit(id, "mk", "0")
	var want strings.Builder
	want.WriteString("start\n")
	for i := 1; i <= 300000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("big%d", round)
		d.mustExec(id, name+` --stdin -- sh -c 'read go; echo start; sleep 0.2; cat /tmp/big'`)
		r := d.follow(id, "processes", name, "stdout.follow")
		if err := d.writeStdin(id, name, []byte("go\n")); err != nil {
			t.Fatal(err)
		}
		if got := r.eof(); got != want.String() {
			t.Errorf("%s: a follower got %d bytes before EOF, want %d", name, len(got), want.Len())
		}
		if got := d.readTrim(id, "processes", name, "wait"); got != "0" {
			t.Errorf("%s: wait = %q", name, got)
		}
		if got := d.read(id, "processes", name, "stdout"); got != want.String() {
			t.Errorf("%s: stdout read after wait: %d bytes, want %d", name, len(got), want.Len())
		}
	}
}
