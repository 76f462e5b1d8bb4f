package tests

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/tests/bundle"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// event is one line of an events file.
type event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	Process string    `json:"process"`
	Pid     int       `json:"pid"`
	Status  *int      `json:"status"`
	Count   uint64    `json:"count"`
	Dropped uint64    `json:"dropped"`
	// Resources (update) and Checkpoint (checkpoint); Message (error).
	Resources  json.RawMessage `json:"resources"`
	Checkpoint string          `json:"checkpoint"`
	Message    string          `json:"message"`
	// A pull's progress (no id).
	Ref   string `json:"ref"`
	Bytes *int64 `json:"bytes"`
	Total *int64 `json:"total"`
}

// eventStream reads an events file the way a Go program would: os.Open
// (which registers the file with the runtime's epoll, so every read is
// non-blocking and waits for poll wake-ups) and a line scanner. It keeps
// every event it read.
type eventStream struct {
	tb   testing.TB
	f    *os.File
	more chan struct{} // a token after each new event
	done chan error    // the read loop's end: nil at EOF

	mu     sync.Mutex
	all    []event
	ended  bool
	cursor map[string]int // per id: how far until has looked
}

func (d *daemon) openEvents(elem ...string) *eventStream {
	d.tb.Helper()
	f, err := os.Open(d.path(elem...))
	if err != nil {
		d.tb.Fatalf("open events: %v", err)
	}
	s := &eventStream{tb: d.tb, f: f, more: make(chan struct{}, 1), done: make(chan error, 1), cursor: map[string]int{}}
	d.tb.Cleanup(func() { f.Close() })
	go func() {
		defer kickTest(s.more)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				s.done <- fmt.Errorf("bad event line %q: %v", sc.Text(), err)
				return
			}
			s.mu.Lock()
			s.all = append(s.all, e)
			s.mu.Unlock()
			kickTest(s.more)
		}
		s.mu.Lock()
		s.ended = true
		s.mu.Unlock()
		s.done <- sc.Err()
	}()
	return s
}

func kickTest(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// until waits for the next event of container id of type t and returns
// the events of id read since the last until for id, up to that one.
func (s *eventStream) until(id, t string) []event {
	s.tb.Helper()
	deadline := time.After(waitTimeout)
	for {
		s.mu.Lock()
		var got []event
		for i := s.cursor[id]; i < len(s.all); i++ {
			if s.all[i].ID != id {
				continue
			}
			got = append(got, s.all[i])
			if s.all[i].Type == t {
				s.cursor[id] = i + 1
				s.mu.Unlock()
				return got
			}
		}
		ended := s.ended
		s.mu.Unlock()
		if ended {
			s.tb.Fatalf("events ended before a %s event of %s; got %s", t, id, typesOf(got))
		}
		select {
		case <-s.more:
		case <-deadline:
			s.tb.Fatalf("no %s event of %s within %v; got %s", t, id, waitTimeout, typesOf(got))
		}
	}
}

func typesOf(es []event) string {
	var out []string
	for _, e := range es {
		out = append(out, e.Type)
	}
	return strings.Join(out, ",")
}

// pollResult is what one poll(2) of one fd gave.
type pollResult struct {
	n       int
	revents int16
	err     error
}

func (r pollResult) String() string {
	return fmt.Sprintf("n=%d revents=%#x err=%v", r.n, r.revents, r.err)
}

// pollFd polls fd for events, again when a signal interrupts it.
func pollFd(fd int, events int16, timeout time.Duration) pollResult {
	fds := []unix.PollFd{{Fd: int32(fd), Events: events}}
	for {
		n, err := unix.Poll(fds, int(timeout/time.Millisecond))
		if err != unix.EINTR {
			return pollResult{n, fds[0].Revents, err}
		}
	}
}

// pollInBackground polls fd for POLLIN|POLLPRI in a goroutine, for up to
// waitTimeout; the channel gets the result.
func pollInBackground(fd int) chan pollResult {
	woke := make(chan pollResult, 1)
	go func() { woke <- pollFd(fd, unix.POLLIN|unix.POLLPRI, waitTimeout) }()
	return woke
}

// pollIn opens path O_RDONLY with raw syscalls, checks that nothing is
// ready yet (nothing has changed since the open), and polls it in the
// background.
func pollIn(tb testing.TB, path string) (fd int, woke chan pollResult) {
	tb.Helper()
	fd = openRaw(tb, path)
	if r := pollFd(fd, unix.POLLIN|unix.POLLPRI, 0); r.err != nil || r.n != 0 {
		tb.Fatalf("poll of a fresh open of %s: %s; want nothing ready", path, r)
	}
	return fd, pollInBackground(fd)
}

func openRaw(tb testing.TB, path string) int {
	tb.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("open %s: %v", path, err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return fd
}

// waitWoken waits for a background poll and requires POLLIN.
func waitWoken(tb testing.TB, what string, woke chan pollResult) {
	tb.Helper()
	select {
	case r := <-woke:
		if r.err != nil || r.n != 1 || r.revents&unix.POLLIN == 0 {
			tb.Fatalf("poll on %s: %s, want POLLIN", what, r)
		}
	case <-time.After(waitTimeout + 5*time.Second):
		tb.Fatalf("poll on %s did not return", what)
	}
}

// preadAll reads fd from offset 0 (poll, then pread: the sysfs way).
func preadAll(tb testing.TB, fd int) string {
	tb.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Pread(fd, buf, 0)
	if err != nil {
		tb.Fatalf("pread: %v", err)
	}
	return string(buf[:n])
}

// oomBundle makes a bundle with a 16 MiB memory limit whose init runs
// script.
func oomBundle(tb testing.TB, script string) string {
	tb.Helper()
	b := newBundle(tb, "sh", "-c", script)
	limit := int64(16 << 20)
	if err := bundle.Edit(b, func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
	}); err != nil {
		tb.Fatal(err)
	}
	return b
}

const hog = "dd if=/dev/zero of=/dev/null bs=64M"

func TestOOMCountedPolledAndPublished(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id, calm := newID("oom"), newID("calm")
	// init survives the OOM kill of dd, so the count is read from a
	// running container.
	b := oomBundle(t, hog+"; echo survived; exec sleep 1000")
	events := d.openEvents("events")
	d.mustCtl("create " + id + " " + b)
	if got := d.readTrim(id, "oom"); got != "0" {
		t.Fatalf("oom of a new container: %q, want 0", got)
	}
	fd, woke := pollIn(t, d.path(id, "oom"))
	d.mustCtl("start", id)
	waitWoken(t, id+"/oom", woke)
	// dd, the one process that allocates, is killed once: one OOM kill,
	// one event that says 1, and no other (not even from the delete,
	// which removes the cgroup).
	n, err := strconv.Atoi(strings.TrimSpace(preadAll(t, fd)))
	if err != nil || n != 1 {
		t.Fatalf("oom after dd bs=64M in 16 MiB: %q, want 1", preadAll(t, fd))
	}
	if got := d.readTrim(id, "oom"); got != "1" {
		t.Errorf("a fresh read of oom: %q, want 1", got)
	}
	if e := events.until(id, "oom"); e[len(e)-1].Count != 1 {
		t.Errorf("oom event: %+v, want count 1", e[len(e)-1])
	}
	d.forceDelete(id)
	for _, e := range events.until(id, "delete") {
		if e.Type == "oom" && e.ID == id {
			t.Errorf("a second oom event: %+v", e)
		}
	}

	// A container that never OOMed: its delete removes its memory cgroup,
	// which fires the eventfd too; that is no OOM.
	d.run(calm, newBundle(t, "sleep", "1000"))
	calmEvents := d.openEvents(calm, "events")
	dir := openRaw(t, d.path(calm)) // kept: its events are opened after the delete
	d.forceDelete(calm)
	for _, e := range calmEvents.until(calm, "delete") {
		if e.Type == "oom" {
			t.Errorf("oom event for a container that never OOMed: %+v", e)
		}
	}
	select {
	case err := <-calmEvents.done:
		if err != nil {
			t.Errorf("per-container events after delete: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Error("per-container events did not end (EOF) after the delete event")
	}
	// Opened through the directory of the deleted container: ended at once.
	late, err := within(opTimeout, "read events of a deleted container", func() (string, error) {
		fd, err := unix.Openat(dir, "events", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", err
		}
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		n, err := unix.Read(fd, buf)
		return string(buf[:max(n, 0)]), err
	})
	if late != "" || err != nil {
		t.Errorf("events of a deleted container, opened after the delete: %q, %v; want EOF at once", late, err)
	}
}

func TestPollExitWakesOnExit(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id := newID("pollx")
	d.run(id, demoBundle(t))
	fd, woke := pollIn(t, d.path(id, "processes", "init", "exit"))
	if got := preadAll(t, fd); got != "" {
		t.Fatalf("exit of a running process: %q, want empty", got)
	}
	d.mustCtl("kill KILL", id)
	waitWoken(t, "processes/init/exit", woke)
	if got := preadAll(t, fd); got != "137\n" {
		t.Errorf("exit after the wake-up: %q, want 137", got)
	}
	// Once exited, exit stays readable for every new poller.
	again := pollInBackground(openRaw(t, d.path(id, "processes", "init", "exit")))
	waitWoken(t, "exit of an exited process", again)
}

func TestInotifySeesStateChanges(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id := newID("in..ot") // ".." inside a name is valid, and must be poked too
	d.run(id, demoBundle(t))
	state := d.path(id, "state")

	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, state, unix.IN_MODIFY|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatalf("inotify_add_watch %s: %v", state, err)
	}
	expect := func(after string) {
		t.Helper()
		mask := readInotify(t, in)
		if mask&unix.IN_MODIFY == 0 {
			t.Errorf("after %s: inotify mask %#x, want IN_MODIFY", after, mask)
		}
	}
	// The inotifywait tool too, for the pause.
	tool := exec.Command("inotifywait", "-q", "-t", strconv.Itoa(int(waitTimeout/time.Second)), "-e", "modify", state)
	out := &strings.Builder{}
	tool.Stdout = out
	if err := tool.Start(); err != nil {
		t.Fatalf("inotifywait: %v", err)
	}
	waitForWatch(t, tool.Process.Pid)

	d.mustCtl("pause", id)
	expect("pause")
	if err := tool.Wait(); err != nil || !strings.Contains(out.String(), "MODIFY") {
		t.Errorf("inotifywait -e modify on state across a pause: %v, output %q", err, out.String())
	}
	if got := d.readTrim(id, "state"); got != "paused" {
		t.Errorf("state: %q, want paused (the poke's byte must not show)", got)
	}
	d.mustCtl("resume", id)
	expect("resume")
	d.mustCtl("kill KILL", id)
	expect("stop")
	if got := d.read(id, "state"); got != "stopped\n" {
		t.Errorf("state: %q, want stopped", got)
	}
}

// waitForWatch waits until process pid holds an inotify fd with a watch.
func waitForWatch(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, "inotifywait to set its watch", func() (bool, string) {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
		for _, f := range fds {
			b, _ := os.ReadFile(f)
			if strings.Contains(string(b), "inotify wd:") {
				return true, ""
			}
		}
		return false, "no watch yet"
	})
}

// readInotify waits for inotify events on fd and returns their masks ORed.
func readInotify(t *testing.T, fd int) uint32 {
	t.Helper()
	if r := pollFd(fd, unix.POLLIN, waitTimeout); r.err != nil || r.n == 0 {
		t.Fatalf("no inotify event within %v: %s", waitTimeout, r)
	}
	time.Sleep(50 * time.Millisecond) // let IN_CLOSE_WRITE follow IN_MODIFY
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err != nil {
		t.Fatalf("read inotify: %v", err)
	}
	var mask uint32
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		mask |= binary.NativeEndian.Uint32(buf[off+4:])
		off += unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(buf[off+12:]))
	}
	return mask
}

func TestWaitBlocksUntilExit(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id := newID("wait")
	d.run(id, demoBundle(t))
	wait := d.path(id, "processes", "init", "wait")

	// Go's os.ReadFile: the non-blocking path (EAGAIN, then a wake-up).
	goRead := make(chan string, 1)
	go func() {
		b, err := os.ReadFile(wait)
		goRead <- fmt.Sprintf("%q %v", b, err)
	}()
	// A shell's cat: a plain blocking read.
	shRead := make(chan shResult, 1)
	go func() { shRead <- d.sh("cat " + wait) }()
	// timeout 1 cat: interrupted while blocked; must return at once.
	if r := d.sh("timeout 1 cat " + wait + "; echo rc=$?"); !strings.Contains(r.stdout, "rc=124") {
		t.Errorf("timeout 1 cat wait on a live process: %s, want rc=124", r)
	}
	waitNoFuseRequests(t, d, 2) // the Go reader and cat still wait
	select {
	case r := <-goRead:
		t.Fatalf("os.ReadFile(wait) returned while the process runs: %s", r)
	case r := <-shRead:
		t.Fatalf("cat wait returned while the process runs: %s", r)
	default:
	}
	d.mustCtl("kill KILL", id)
	select {
	case r := <-goRead:
		if r != `"137\n" <nil>` {
			t.Errorf("os.ReadFile(wait): %s, want 137", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("os.ReadFile(wait) did not return after the exit")
	}
	select {
	case r := <-shRead:
		if r.stdout != "137\n" || r.code != 0 {
			t.Errorf("cat wait: %s, want 137", r)
		}
	case <-time.After(waitTimeout):
		t.Fatal("cat wait did not return after the exit")
	}
	// After the exit, wait answers at once.
	if got := d.read(id, "processes", "init", "wait"); got != "137\n" {
		t.Errorf("wait after the exit: %q", got)
	}
	waitNoFuseRequests(t, d, 0)
}

// waitNoFuseRequests waits until the mount's FUSE connection has at most
// want requests in flight (/sys/fs/fuse/connections/N/waiting): an
// interrupted read must not stay behind in the daemon.
func waitNoFuseRequests(t *testing.T, d *daemon, want int) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(d.mnt, &st); err != nil {
		t.Fatal(err)
	}
	waiting := fmt.Sprintf("%s/%d/waiting", fusectl(t), unix.Minor(st.Dev))
	if _, err := os.Stat(waiting); err != nil {
		t.Fatalf("cannot count the requests in flight: %v", err)
	}
	waitFor(t, fmt.Sprintf("at most %d FUSE requests in flight", want), func() (bool, string) {
		b, err := os.ReadFile(waiting)
		if err != nil {
			return false, err.Error()
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n <= want, fmt.Sprintf("%d in flight", n)
	})
}

// fusectl returns where the FUSE control filesystem is mounted, mounting
// it if nobody has. It stays mounted, as systemd mounts it at boot on most
// hosts: unmounting it could pull it from under another test run.
func fusectl(t *testing.T) string {
	const dir = "/sys/fs/fuse/connections"
	if isMounted(dir) {
		return dir
	}
	if err := unix.Mount("fusectl", dir, "fusectl", 0, ""); err != nil {
		t.Fatalf("mount fusectl on %s: %v", dir, err)
	}
	return dir
}

func TestEventsOrderSubscribersAndOverflow(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t, "--event-buffer", "8")
	id := newID("ev")
	a, b := d.openEvents("events"), d.openEvents("events")
	// A reader that never reads: it must get an overflow event, and
	// nobody else may notice.
	stalled, err := os.Open(d.path("events"))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	d.mustCtl("create " + id + " " + demoBundle(t))
	mine := d.openEvents(id, "events")
	d.mustCtl("start", id)
	for i := 0; i < 5; i++ {
		d.mustCtl("pause", id)
		d.mustCtl("resume", id)
	}
	d.mustCtl("kill KILL", id)
	d.waitState(id, "stopped")
	d.mustCtl("delete", id)

	want := "create,start" + strings.Repeat(",pause,resume", 5) + ",exit,delete"
	for name, s := range map[string]*eventStream{"first reader": a, "second reader": b} {
		if got := typesOf(s.until(id, "delete")); got != want {
			t.Errorf("%s: %s\nwant %s", name, got, want)
		}
	}
	got := mine.until(id, "delete")
	if typesOf(got) != "start"+strings.Repeat(",pause,resume", 5)+",exit,delete" {
		t.Errorf("%s/events opened after create: %s", id, typesOf(got))
	}
	exit := got[len(got)-2]
	if exit.Status == nil || *exit.Status != 137 || exit.Process != "init" || exit.Pid == 0 {
		t.Errorf("exit event: %+v, want init, its pid, status 137", exit)
	}

	// The stalled reader: the overflow in place of the events that left
	// the ring of 8, then the 8 kept.
	var lines []event
	sc := bufio.NewScanner(stalled)
	for len(lines) < 9 && sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stalled reader: bad line %q", sc.Text())
		}
		lines = append(lines, e)
	}
	all := strings.Split(want, ",")
	if len(lines) != 9 || lines[0].Type != "overflow" || lines[0].Dropped != uint64(len(all)-8) ||
		typesOf(lines[1:]) != strings.Join(all[len(all)-8:], ",") {
		t.Errorf("stalled reader got %+v", lines)
	}
}

func TestRestartPublishesOneExitAndCountsOOM(t *testing.T) {
	requireIntegration(t)
	d := startDaemon(t)
	id, oomID := newID("rex"), newID("room")
	b := oomBundle(t, "while [ ! -e /tmp/go ]; do sleep 0.05; done; "+hog+"; exec sleep 1000")
	d.run(id, demoBundle(t))
	d.run(oomID, b)
	d.kill()
	d.start()

	events := d.openEvents("events")
	d.mustCtl("kill KILL", id)
	d.waitState(id, "stopped")
	if got := d.readTrim(oomID, "oom"); got != "0" {
		t.Fatalf("oom before any OOM: %q", got)
	}
	// The OOM happens after the restart: the watch was set up again.
	if err := os.WriteFile(filepath.Join(b, "rootfs", "tmp", "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if e := events.until(oomID, "oom"); e[len(e)-1].Count < 1 {
		t.Errorf("oom event after restart: %+v", e)
	}
	d.waitContent("1", oomID, "oom")
	d.mustCtl("delete", id)
	evs := events.until(id, "delete")
	exits := 0
	for _, e := range evs {
		if e.Type == "exit" {
			exits++
			if e.Status == nil || *e.Status != 137 {
				t.Errorf("exit event: %+v, want status 137", e)
			}
		}
	}
	if exits != 1 {
		t.Errorf("%d exit events for one exit: %s", exits, typesOf(evs))
	}
	// A second restart keeps the count, and publishes nothing old.
	d.kill()
	d.start()
	if got := d.readTrim(oomID, "oom"); got != "1" {
		t.Errorf("oom after a second restart: %q, want 1", got)
	}
	d.forceDelete(oomID)
}
