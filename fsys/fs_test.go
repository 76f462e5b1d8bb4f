package fsys

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bazil.org/fuse/fs"
	"bazil.org/fuse/fs/fstestutil"
	"golang.org/x/sys/unix"
)

// These tests serve the file system over a real FUSE mount, in process,
// on a fake runtime (fake_test.go): what they check is fsys's own (ctl
// results, errnos, poll, streams), in milliseconds. The end-to-end suite
// (tests/) checks the real thing, with runc.

// mountFake mounts the file system over rt, or skips t when FUSE cannot
// be had here, failing it instead under CTRFS_REQUIRE_INTEGRATION=1.
func mountFake(t *testing.T, rt *fakeRuntime) string {
	t.Helper()
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("FUSE prerequisite missing: %s (CTRFS_REQUIRE_INTEGRATION=1)", why)
		}
		t.Skipf("FUSE prerequisite missing: %s", why)
	}
	if os.Geteuid() != 0 {
		missing("not root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		missing("no /dev/fuse")
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		missing("no fusermount3 (fuse3)")
	}
	f := newFS(rt, "test")
	mnt, err := fstestutil.MountedFuncT(t, func(m *fstestutil.Mount) fs.FS {
		// As Serve does, without inotify pokes (no poker).
		f.n.start(m.Server, "", nil)
		f.followChanges()
		return f
	}, f.withCaller(nil))
	if err != nil {
		missing("mount: " + err.Error())
	}
	t.Cleanup(mnt.Close)
	return mnt.Dir
}

// The tests reach the mount only through plain system calls (package
// unix), never os.Open: Go's os package registers an opened file with its
// epoll, and epoll_ctl on a FUSE file sends a POLL to the server, this same
// process, from a thread that keeps its P meanwhile; a garbage collection
// starting then waits for that P while the server waits for the
// collection, for good.

// open opens path under the mount.
func open(t *testing.T, path string, flags int) int {
	t.Helper()
	fd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// readAll reads fd to EOF.
func readAll(fd int) (string, error) {
	var out []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return string(out), err
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, buf[:n]...)
	}
}

// ctl writes text to the ctl file at path and reads the result from the
// same open file, as `exec 3<>ctl; echo x >&3; cat <&3` does.
func ctl(t *testing.T, path, text string) (string, error) {
	t.Helper()
	fd := open(t, path, unix.O_RDWR)
	_, werr := unix.Write(fd, []byte(text))
	res, err := readAll(fd)
	if err != nil {
		t.Fatalf("read of the result: %v", err)
	}
	return res, werr
}

func TestFSCtlResultsAndErrnos(t *testing.T) {
	rt := newFakeRuntime()
	c := rt.add("web")
	dir := mountFake(t, rt)
	rootCtl, webCtl := filepath.Join(dir, "ctl"), filepath.Join(dir, "web", "ctl")

	read := func(path string) string {
		t.Helper()
		s, err := readAll(open(t, path, unix.O_RDONLY))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if got, want := read(webCtl), "verbs: "+containerTable.usage()+"\nlast error: none\n"; got != want {
		t.Errorf("cat web/ctl = %q, want %q", got, want)
	}
	if got := read(rootCtl); got != "verbs: create ID BUNDLE|--image REF [opts] | run ID BUNDLE|--image REF [opts] | delete ID [--force]\nlast error: none\n" {
		t.Errorf("cat ctl = %q", got)
	}

	if res, err := ctl(t, webCtl, "pause\n"); err != nil || res != "ok: pause\n" {
		t.Errorf("pause: %q, %v; want \"ok: pause\\n\"", res, err)
	}
	res, err := ctl(t, webCtl, "pause\n")
	if !errors.Is(err, syscall.EBUSY) || res != "error: pause: container \"web\" is paused, not running (EBUSY)\n" {
		t.Errorf("pause of a paused container: %q, %v; want the EBUSY error", res, err)
	}
	if got := read(webCtl); !strings.HasSuffix(got, "\nlast error: pause: container \"web\" is paused, not running (EBUSY)\n") {
		t.Errorf("cat web/ctl after the EBUSY = %q", got)
	}
	if got := read(rootCtl); !strings.HasSuffix(got, "last error: none\n") {
		t.Errorf("the root ctl shows the container's error: %q", got)
	}

	// A multi-line write with one bad line runs nothing, and says which.
	rt.takeCalls()
	res, err = ctl(t, webCtl, "resume\n# comment\nfrobnicate now\n")
	if !errors.Is(err, syscall.EINVAL) || !strings.HasPrefix(res, `error: line 3: frobnicate now: unknown verb "frobnicate" (verbs: start | pause`) {
		t.Errorf("write with a bad line 3: %q, %v; want EINVAL naming line 3", res, err)
	}
	if calls := rt.takeCalls(); len(calls) != 0 || c.State() != "paused" {
		t.Errorf("a write with a bad line ran %q (state %s)", calls, c.State())
	}
	// Lines run in order; the first failure skips the rest.
	res, err = ctl(t, webCtl, "resume\nresume\npause\n")
	if !errors.Is(err, syscall.EBUSY) || !strings.HasPrefix(res, "ok: resume\nerror: resume: ") || !strings.HasSuffix(res, "(EBUSY)\nskipped: pause\n") {
		t.Errorf("resume,resume,pause: %q, %v", res, err)
	}

	for _, e := range []struct {
		path, text string
		errno      syscall.Errno
		result     string
	}{
		{rootCtl, "run web /b", syscall.EEXIST, "error: create: container \"web\" exists (EEXIST)\n"},
		{rootCtl, "delete nosuch", syscall.ENOENT, "error: delete: no such container \"nosuch\" (ENOENT)\n"},
		{rootCtl, "run web", syscall.EINVAL, "error: run web: usage: run ID BUNDLE "},
		{webCtl, "kill 99", syscall.EINVAL, "error: kill 99: signal 99 out of range 1-64 (EINVAL)\n"},
		{webCtl, strings.Repeat("# padding\n", 7000), syscall.EFBIG, "error: command too large: a ctl write holds at most 65536 bytes (EFBIG)\n"},
	} {
		res, err := ctl(t, e.path, e.text)
		if !errors.Is(err, e.errno) || !strings.HasPrefix(res, e.result) {
			t.Errorf("%.30q: %q, %v; want %v and %q", e.text, res, err, e.errno, e.result)
		}
	}
	// An error of no kind the file system knows is the runtime failing: EIO.
	c.mu.Lock()
	c.fail = errors.New("runc: exploded")
	c.mu.Unlock()
	if res, err := ctl(t, webCtl, "resume"); !errors.Is(err, syscall.EIO) || res != "error: runc: exploded (EIO)\n" {
		t.Errorf("resume failing in the runtime: %q, %v; want EIO", res, err)
	}

	// `echo cmd > ctl` opens with O_TRUNC: accepted, and the order runs.
	fd := open(t, webCtl, unix.O_WRONLY|unix.O_TRUNC)
	if _, err := unix.Write(fd, []byte("pause\n")); err != nil {
		t.Errorf("write after O_TRUNC: %v", err)
	}
	if c.State() != "paused" {
		t.Errorf("state after pause through O_TRUNC = %s, want paused", c.State())
	}
	if err := unix.Truncate(webCtl, 5); !errors.Is(err, syscall.EACCES) {
		t.Errorf("truncate ctl to 5: %v, want EACCES", err)
	}
}

// pollIn polls fd for input for up to timeout.
func pollIn(t *testing.T, fd int, timeout time.Duration) bool {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(timeout.Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		return n > 0 && fds[0].Revents&unix.POLLIN != 0
	}
}

func TestFSWatchedFilePolls(t *testing.T) {
	rt := newFakeRuntime()
	c := rt.add("web")
	dir := mountFake(t, rt)

	fd := open(t, filepath.Join(dir, "web", "state"), unix.O_RDONLY)
	buf := make([]byte, 64)
	if n, err := unix.Pread(fd, buf, 0); err != nil || string(buf[:n]) != "running\n" {
		t.Fatalf("state = %q, %v; want running", buf[:n], err)
	}
	if pollIn(t, fd, 0) {
		t.Errorf("state polls readable before any change")
	}
	// A pause through the fake publishes its event as the runtime does.
	go c.Pause(t.Context())
	if !pollIn(t, fd, 5*time.Second) {
		t.Fatalf("state: no POLLIN within 5s of a pause")
	}
	if n, err := unix.Pread(fd, buf, 0); err != nil || string(buf[:n]) != "paused\n" {
		t.Errorf("state after the change = %q, %v; want paused", buf[:n], err)
	}
	if pollIn(t, fd, 0) {
		t.Errorf("state still polls readable after the new content was read")
	}
}

func TestFSStreamReadsToEOF(t *testing.T) {
	rt := newFakeRuntime()
	c := rt.add("web")
	p := c.procs["init"]
	dir := mountFake(t, rt)
	stdout := filepath.Join(dir, "web", "processes", "init", "stdout.follow")

	fd := open(t, stdout, unix.O_RDONLY|unix.O_NONBLOCK)
	buf := make([]byte, 64)
	if n, err := unix.Read(fd, buf); err != unix.EAGAIN {
		t.Errorf("non-blocking read of empty output = %q, %v; want EAGAIN", buf[:max(n, 0)], err)
	}
	if pollIn(t, fd, 0) {
		t.Errorf("stdout polls readable with nothing to read")
	}
	p.write("hello\n")
	if !pollIn(t, fd, 5*time.Second) {
		t.Fatalf("stdout: no POLLIN within 5s of output")
	}
	if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "hello\n" {
		t.Errorf("read = %q, %v; want hello", buf[:max(n, 0)], err)
	}

	// A blocking reader waits for the rest, then reads EOF once the
	// process is done.
	blocking := open(t, stdout, unix.O_RDONLY)
	got := make(chan string, 1)
	go func() {
		s, err := readAll(blocking)
		if err != nil {
			s = "error: " + err.Error()
		}
		got <- s
	}()
	p.write("world\n")
	p.exit()
	select {
	case s := <-got:
		if s != "hello\nworld\n" {
			t.Errorf("blocking read to EOF = %q, want hello, world", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("blocking read: no EOF within 5s of the exit")
	}
	if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "world\n" {
		t.Errorf("non-blocking read after the exit = %q, %v; want world", buf[:max(n, 0)], err)
	}
	if n, err := unix.Read(fd, buf); err != nil || n != 0 {
		t.Errorf("non-blocking read at the end after the exit = %d, %v; want EOF", n, err)
	}
}

// TestFSLogFile: stdout as a log file: stat gives the length so far (never
// cached), reads at an offset give what is there and EOF at the end, lseek
// works, and a read of a running process's output at its end returns.
func TestFSLogFile(t *testing.T) {
	rt := newFakeRuntime()
	c := rt.add("web")
	p := c.procs["init"]
	dir := mountFake(t, rt)
	stdout := filepath.Join(dir, "web", "processes", "init", "stdout")
	p.write("one\ntwo\n")
	fd := open(t, stdout, unix.O_RDONLY)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Size != 8 {
		t.Errorf("fstat: size %d, %v; want 8", st.Size, err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Pread(fd, buf, 4); err != nil || string(buf[:n]) != "two\n" {
		t.Errorf("pread at 4 = %q, %v", buf[:max(n, 0)], err)
	}
	if off, err := unix.Seek(fd, 0, unix.SEEK_END); err != nil || off != 8 {
		t.Errorf("lseek SEEK_END = %d, %v; want 8", off, err)
	}
	if n, err := unix.Read(fd, buf); n != 0 || err != nil {
		t.Errorf("read at the end of a running process's log = %d, %v; want EOF", n, err)
	}
	p.write("three\n")
	if err := unix.Fstat(fd, &st); err != nil || st.Size != 14 {
		t.Errorf("fstat after growth: size %d, %v; want 14", st.Size, err)
	}
	if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != "three\n" {
		t.Errorf("read after growth = %q, %v", buf[:max(n, 0)], err)
	}
}
