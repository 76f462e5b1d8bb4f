package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkScale starts CTRFS_SCALE_N demo containers (1,000 unless set)
// under one daemon and reports, once (run it with -benchtime 1x): the
// mean start time (run until state reads running) of the first 20 and of
// the last 20, a listing of the root and a read of ps, a state read
// in-process and by `cat`, the daemon's and the shims' memory, the time
// from a restart after kill -9 until the mount serves and until every
// state reads running, and the mean teardown (delete --force) time.
func BenchmarkScale(b *testing.B) {
	n := 1000
	if s := os.Getenv("CTRFS_SCALE_N"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 40 {
			b.Fatalf("CTRFS_SCALE_N=%q: want a number >= 40", s)
		}
	}
	// An idle init: the demo's loop forks every second, 1,000 of them a
	// thousand forks a second.
	e := &benchEnv{n: n, d: startDaemon(b), bundle: newBundle(b, "sleep", "1000000"), prefix: newID("bsc")}
	d := e.d
	b.Cleanup(func() {
		for _, id := range e.ids {
			d.ctl("delete " + id + " --force\n")
		}
	})
	// The host's own part of any growth: 20 bare `runc run -d` before the
	// N containers start and 20 with them running, each deleted at once.
	root := runcRoot(b)
	runcStarts := func(tag string) float64 {
		var t time.Duration
		for i := 0; i < 20; i++ {
			id := fmt.Sprintf("r%s-%s-%d", e.prefix, tag, i)
			start := time.Now()
			runcRunDetached(b, root, e.bundle, id, filepath.Join(root, "..", "pid"))
			t += time.Since(start)
			if out, err := exec.Command("runc", "--root", root, "delete", "-f", id).CombinedOutput(); err != nil {
				b.Fatalf("runc delete -f %s: %v: %s", id, err, out)
			}
		}
		return float64(t.Nanoseconds()) / 20 / 1e6
	}
	runcFirst := runcStarts("first")
	starts := make([]time.Duration, n)
	for i := range starts {
		id := e.id(i)
		start := time.Now()
		e.runCtrfs(b, id)
		starts[i] = time.Since(start)
		e.ids = append(e.ids, id)
	}
	mean := func(ds []time.Duration) float64 {
		var t time.Duration
		for _, x := range ds {
			t += x
		}
		return float64(t.Nanoseconds()) / float64(len(ds)) / 1e6
	}
	first, last := mean(starts[:20]), mean(starts[n-20:])
	runcLast := runcStarts("last")
	timed := func(k int, f func()) float64 {
		start := time.Now()
		for i := 0; i < k; i++ {
			f()
		}
		return float64(time.Since(start).Nanoseconds()) / float64(k) / 1e6
	}
	list := timed(20, func() {
		if ents, err := os.ReadDir(d.mnt); err != nil || len(ents) < n {
			b.Fatalf("readdir: %d entries, %v", len(ents), err)
		}
	})
	ps := timed(20, func() {
		if _, err := os.ReadFile(d.path("ps")); err != nil {
			b.Fatal(err)
		}
	})
	state := d.path(e.ids[n/2], "state")
	read := timed(500, func() {
		if s, err := os.ReadFile(state); err != nil || !isRunning(s) {
			b.Fatalf("read: %q, %v", s, err)
		}
	})
	cat := timed(100, func() {
		if out, err := exec.Command("cat", state).Output(); err != nil || !isRunning(out) {
			b.Fatalf("cat: %q, %v", out, err)
		}
	})
	e.memory(b)
	d.kill()
	start := time.Now()
	d.restart()
	serving := time.Since(start)
	for _, id := range e.ids {
		if s, err := os.ReadFile(d.path(id, "state")); err != nil || !isRunning(s) {
			b.Fatalf("%s/state after the restart: %q, %v", id, s, err)
		}
	}
	allRunning := time.Since(start)
	rssAfter, _ := smapsRollup(b, d.cmd.Process.Pid)
	start = time.Now()
	for _, id := range e.ids {
		d.mustCtl("delete " + id + " --force\n")
	}
	teardown := float64(time.Since(start).Nanoseconds()) / float64(n) / 1e6
	e.ids = nil
	for k, v := range map[string]float64{"start-first20-ms": first, "start-last20-ms": last, "runc-first20-ms": runcFirst, "runc-at-n-ms": runcLast, "list-ms": list, "ps-ms": ps,
		"state-read-ms": read, "cat-state-ms": cat, "restart-serving-ms": ms(serving), "restart-all-running-ms": ms(allRunning),
		"daemon-rss-after-restart-MB": rssAfter, "teardown-ms": teardown} {
		b.ReportMetric(v, k)
	}
	recordSummary(fmt.Sprintf("scale, N=%d", n), fmt.Sprintf("ratio scale, N=%d: create+start %.1f ms (first 20) vs %.1f ms (last 20): %.2fx (goal: within 1.10x), bare runc run -d %.1f ms before vs %.1f ms with them running: %.2fx; readdir of the root %.2f ms, ps %.2f ms; state read %.3f ms in-process, cat state %.2f ms; restart after kill -9: serving in %.0f ms, every state read in %.0f ms (goal: <= 1 s), daemon RSS after it %.1f MB; teardown (delete --force) %.1f ms per container",
		n, first, last, last/first, runcFirst, runcLast, runcLast/runcFirst, list, ps, read, cat, ms(serving), ms(allRunning), rssAfter, teardown))
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
