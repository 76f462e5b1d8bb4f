package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/images/imagetest"
)

// TestCtlWritersInParallel: 200 writers, each its own open of the root ctl
// (O_RDWR, no truncation), each running a container of its own, all at
// once. They all succeed; how long it took is logged (issue 11: 26 s when
// the kernel ran the writes of one ctl file one at a time).
func TestCtlWritersInParallel(t *testing.T) {
	// 200 on a host; fewer under emulation (the guests scale their
	// timeouts), where 200 creates take longer than one order may.
	n := 200 / int(timeoutScale())
	d := startDaemon(t)
	b := demoBundle(t)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = newID(fmt.Sprintf("par%d", i))
	}
	errs := make([]error, n)
	results := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, id := range ids {
		wg.Go(func() {
			<-start
			results[i], errs[i] = transact(d.path("ctl"), []byte("run "+id+" "+b+"\n"))
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	took := time.Since(t0)
	t.Logf("%d concurrent writers of the root ctl, each a run: %v", n, took.Round(time.Millisecond))
	for i, err := range errs {
		if err != nil || !strings.HasPrefix(results[i], "ok: run") {
			t.Errorf("writer %d: run %s: %v (result %q)", i, ids[i], err, results[i])
		}
	}
	for _, id := range ids {
		wg.Go(func() {
			if _, err := d.ctl("delete --force " + id); err != nil {
				t.Errorf("delete %s: %v", id, err)
			}
		})
	}
	wg.Wait()
}

// TestSlowCreateHoldsNoOtherCreate: a run whose createRuntime hook sleeps
// 5 s must not hold a plain run of another container, written from a
// shell with `>` (an O_TRUNC open, which the kernel truncates under the
// inode's lock).
func TestSlowCreateHoldsNoOtherCreate(t *testing.T) {
	d := startDaemon(t)
	slow, fast := newID("slow"), newID("fast")
	hb := hookBundle(t, 5)
	slowDone := make(chan time.Time, 1)
	go func() {
		r := d.sh(`echo "run ` + slow + ` ` + hb + `" > "$MNT/ctl"`)
		if r.code != 0 {
			t.Errorf("slow run: %s", r)
		}
		slowDone <- time.Now()
	}()
	// The slow create is under way once its state directory exists.
	waitFor(t, "the slow create under way", func() (bool, string) {
		_, err := os.Stat(filepath.Join(d.state, slow, "init"))
		return err == nil, fmt.Sprint(err)
	})
	t0 := time.Now()
	d.mustSh(`echo "run ` + fast + ` ` + demoBundle(t) + `" > "$MNT/ctl"`)
	fastAt := time.Now()
	t.Logf("plain run beside a run with a 5 s hook: %v", fastAt.Sub(t0).Round(time.Millisecond))
	select {
	case at := <-slowDone:
		t.Errorf("the plain run finished %v after the slow one: it waited for it", fastAt.Sub(at))
	default:
	}
	d.waitState(fast, "running")
	slowAt := <-slowDone
	t.Logf("the slow run took %v after the plain one ended", slowAt.Sub(fastAt).Round(time.Millisecond))
	d.waitState(slow, "running")
	d.forceDelete(slow)
	d.forceDelete(fast)
}

// slowPauseRuntime writes a runtime that is runc, but whose pause first
// touches marker and sleeps secs seconds.
func slowPauseRuntime(t *testing.T, marker string, secs int) string {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "slow-pause-runc")
	script := fmt.Sprintf("#!/bin/sh\nfor a; do [ \"$a\" = pause ] && touch %q && sleep %d && break; done\nexec %q \"$@\"\n", marker, secs, runc)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWaitingWriterIsKillable: a writer waiting behind a slow order on the
// same container (a pause whose runtime takes 20 s) is killed promptly by
// SIGKILL, or by SIGINT, and leaves no request behind in the daemon; the
// slow order itself runs to its end.
func TestWaitingWriterIsKillable(t *testing.T) {
	// Its steps must fit inside one order (the daemon bounds an order at
	// 60 s): under emulation they do not. Nothing here is about cgroups.
	hostOnly(t, "its steps outlast the daemon's 60 s order bound under emulation")
	d := startDaemon(t)
	id := newID("kw")
	marker := filepath.Join(t.TempDir(), "pausing")
	d.run(id, demoBundle(t), "--runtime", slowPauseRuntime(t, marker, 20))
	pauseDone := make(chan error, 1)
	go func() {
		_, err := transact(d.path(id, "ctl"), []byte("pause"))
		pauseDone <- err
	}()
	waitFor(t, "the slow pause under way", func() (bool, string) {
		_, err := os.Stat(marker)
		return err == nil, fmt.Sprint(err)
	})
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGINT} {
		cmd := exec.Command("sh", "-c", `echo resume > "$0/ctl"`, d.path(id))
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let the writer reach the daemon and wait there.
		time.Sleep(500 * time.Millisecond)
		select {
		case err := <-pauseDone:
			t.Fatalf("the pause ended before the test could wait behind it: %v", err)
		default:
		}
		t0 := time.Now()
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			t.Logf("%v: the waiting writer was gone after %v (%v)", sig, time.Since(t0).Round(time.Millisecond), err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%v: the writer waiting behind the pause is still there after 10 s", sig)
		}
		// Only the pause's own write is left in the daemon.
		waitNoFuseRequests(t, d, 1)
	}
	if err := <-pauseDone; err != nil {
		t.Errorf("the slow pause: %v", err)
	}
	d.waitState(id, "paused")
	// The interrupted writer's error is the container's last error.
	if got := d.read(id, "ctl"); !strings.Contains(got, "interrupted while waiting") || !strings.Contains(got, "(EINTR)") {
		t.Errorf("%s/ctl after the interrupted writers: %q, want the interruption (EINTR)", id, got)
	}
	d.forceDelete(id)
}

// instantPauseRuntime writes a runtime that is runc, but whose pause and
// resume do nothing and succeed at once: a cheap source of events.
func instantPauseRuntime(t *testing.T) string {
	t.Helper()
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "instant-pause-runc")
	script := fmt.Sprintf("#!/bin/sh\nfor a; do case \"$a\" in pause|resume) exit 0;; esac; done\nexec %q \"$@\"\n", runc)
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// daemonRSS is the daemon's resident memory, in bytes.
func (d *daemon) rss() int64 {
	d.tb.Helper()
	pid := d.pid()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		d.tb.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				d.tb.Fatal(err)
			}
			return kb << 10
		}
	}
	d.tb.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// TestIdleSubscribersCostLittle: 1,000 opens of `events` that never read,
// and 4,000 events: the daemon's memory grows by far less than 100 MB
// (issue 11: 1.6 GB, each idle reader queueing every event), and stays
// bounded once they are closed.
func TestIdleSubscribersCostLittle(t *testing.T) {
	const subscribers, writers = 1000, 4
	// 4,000 events on a host; fewer under emulation, where each costs
	// a fork and exec of the runtime script many times over.
	rounds := 500 / int(timeoutScale())
	d := startDaemon(t)
	rt := instantPauseRuntime(t)
	ids := make([]string, writers)
	for i := range ids {
		ids[i] = newID(fmt.Sprintf("evm%d", i))
		d.run(ids[i], demoBundle(t), "--runtime", rt)
	}
	base := d.rss()
	files := make([]*os.File, 0, subscribers)
	for i := 0; i < subscribers; i++ {
		f, err := os.Open(d.path("events"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	opened := d.rss()
	// One reader that keeps up: every event is published, and gets here.
	reader := d.openEvents("events")
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			for r := 0; r < rounds; r++ {
				if _, err := d.ctl("pause\nresume", id); err != nil {
					t.Errorf("%s: pause/resume: %v", id, err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := 0
	for _, id := range ids {
		for r := 0; r < rounds; r++ {
			n += len(reader.until(id, "resume"))
		}
	}
	full := d.rss()
	for _, f := range files {
		f.Close()
	}
	files = nil
	time.Sleep(2 * time.Second) // the releases reach the daemon
	closed := d.rss()
	t.Logf("daemon RSS: %d MB at start, %d MB with %d idle readers of events, %d MB after %d events, %d MB once they closed",
		base>>20, opened>>20, subscribers, full>>20, writers*rounds*2, closed>>20)
	if n != writers*rounds*2 {
		t.Errorf("the reader that keeps up saw %d events, want %d", n, writers*rounds*2)
	}
	if full-base > 100<<20 {
		t.Errorf("the daemon grew by %d MB with %d idle readers and %d events, want < 100 MB", (full-base)>>20, subscribers, writers*rounds*2)
	}
	if closed-base > 100<<20 {
		t.Errorf("the daemon is still %d MB above its start once the readers closed", (closed-base)>>20)
	}
	for _, id := range ids {
		d.forceDelete(id)
	}
}

// nofile is the soft and hard "Max open files" of process pid.
func nofile(t *testing.T, pid int) (soft, hard string) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			f := strings.Fields(strings.TrimPrefix(l, "Max open files"))
			return f[0], f[1]
		}
	}
	t.Fatalf("no open files limit in /proc/%d/limits", pid)
	return "", ""
}

// TestFileLimitRaisedForTheDaemonOnly: a daemon started with a soft limit
// of open files below its hard limit serves with the hard one (less one:
// Go's doing, see cmd/ctrfs/fdlimit.go), and the raise does not reach the
// containers (the bundle sets no rlimits): they get the soft limit the
// daemon was started with. (The shim, a Go program too, raises its own.)
func TestFileLimitRaisedForTheDaemonOnly(t *testing.T) {
	requireIntegration(t)
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if orig.Max <= 1024 {
		t.Skipf("the hard limit of open files is %d: nothing to raise to", orig.Max)
	}
	// The daemon inherits this process's limit (Go gives a child the
	// limit it started with unless the program set one itself: this).
	low := syscall.Rlimit{Cur: 1024, Max: orig.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	hard := strconv.FormatUint(orig.Max, 10)
	ds, dh := nofile(t, d.pid())
	if ds != strconv.FormatUint(orig.Max-1, 10) && ds != hard || dh != hard {
		t.Errorf("daemon's open files limit: %s soft, %s hard; want %d or %s, and %s", ds, dh, orig.Max-1, hard, hard)
	}
	id := newID("lim")
	d.run(id, demoBundle(t))
	shim, _, err := readPidFile(filepath.Join(d.state, id, "init", "shim.pid"))
	if err != nil {
		t.Fatal(err)
	}
	soft, h := nofile(t, shim)
	cs, ch := nofile(t, d.initPid(id))
	if cs != "1024" {
		t.Errorf("container init's open files limit: %s soft, want 1024: what the daemon was started with", cs)
	}
	t.Logf("open files limit: daemon %s/%s, shim %s/%s, container init %s/%s (started with 1024/%s)", ds, dh, soft, h, cs, ch, hard)
	d.forceDelete(id)
}

// TestOutOfFilesSaysSo: a daemon with no file descriptor left answers a
// run, an exec and a stats read with EMFILE and "too many open files",
// read from the same ctl fd, never another reason; once fds are free
// again everything works.
func TestOutOfFilesSaysSo(t *testing.T) {
	if _, err := exec.LookPath("prlimit"); err != nil {
		imagetest.SkipOrFail(t, "prlimit not installed (apt-get install util-linux)")
	}
	d := startDaemon(t)
	id, other := newID("fdx"), newID("fdy")
	d.run(id, demoBundle(t))
	pid := d.pid()
	soft, hard := nofile(t, pid)
	limit := func(v string) {
		t.Helper()
		if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile="+v).CombinedOutput(); err != nil {
			t.Fatalf("prlimit --nofile=%s: %v: %s", v, err, out)
		}
	}
	restored := false
	defer func() {
		if !restored {
			limit(soft + ":" + hard)
		}
	}()
	// The lowest free fd number of the daemon as its limit: every fd it
	// has stays usable, and no new one can be made. An fd the daemon held
	// only for a moment when its fds were listed (a log read, a cgroup
	// file) leaves room below the limit once closed, and the run may then
	// succeed: that run proves nothing, so it is undone and tried again.
	var res string
	var err error
	for try := 0; ; try++ {
		ents, lerr := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if lerr != nil {
			t.Fatal(lerr)
		}
		used := map[int]bool{}
		for _, e := range ents {
			n, _ := strconv.Atoi(e.Name())
			used[n] = true
		}
		free := 0
		for used[free] {
			free++
		}
		limit(fmt.Sprintf("%d:%s", free, hard))
		res, err = d.ctl("run " + other + " " + demoBundle(t))
		if err != nil || try == 9 {
			break
		}
		limit(soft + ":" + hard)
		d.forceDelete(other)
	}
	if !errors.Is(err, syscall.EMFILE) || !strings.Contains(res, "too many open files") || !strings.Contains(res, "(EMFILE)") {
		t.Errorf("run at the fd limit: %v, result %q; want EMFILE saying too many open files", err, res)
	}
	if got := d.read("ctl"); !strings.Contains(got, "too many open files") {
		t.Errorf("cat ctl after: %q", got)
	}
	res, err = d.ctl("exec sh1 -- true", id)
	if !errors.Is(err, syscall.EMFILE) || !strings.Contains(res, "too many open files") {
		t.Errorf("exec at the fd limit: %v, result %q; want EMFILE saying too many open files", err, res)
	}
	// stats keeps its cgroup files open: a read may need no new fd; if it
	// fails, it must say why.
	if _, err := d.tryRead(id, "stats"); err != nil && !errors.Is(err, syscall.EMFILE) {
		t.Errorf("stats at the fd limit: %v, want success or EMFILE", err)
	}

	limit(soft + ":" + hard)
	restored = true
	d.run(other, demoBundle(t))
	d.mustCtl("exec sh1 -- true", id)
	d.forceDelete(other)
	d.forceDelete(id)
}
