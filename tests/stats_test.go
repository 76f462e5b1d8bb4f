package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/tests/bundle"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// statsDoc is what the tests read of ID/stats.
type statsDoc struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Cgroup string    `json:"cgroup"`
	CPU    struct {
		Usage struct {
			Total, User, Kernel uint64
			Percpu              []uint64 `json:"percpu"`
		} `json:"usage"`
		Throttling struct {
			Periods          uint64 `json:"periods"`
			ThrottledPeriods uint64 `json:"throttled_periods"`
			ThrottledTime    uint64 `json:"throttled_time"`
		} `json:"throttling"`
	} `json:"cpu"`
	Memory struct {
		Usage, Max, Limit, Failcnt, Cache, RSS uint64
		OOMKill                                uint64            `json:"oom_kill"`
		Swap                                   map[string]uint64 `json:"swap"`
		Raw                                    map[string]uint64 `json:"raw"`
	} `json:"memory"`
	Pids struct {
		Current, Limit uint64
	} `json:"pids"`
	Blkio map[string][]struct {
		Major, Minor uint64
		Op           string
		Value        uint64
	} `json:"blkio"`
}

// readStats reads and decodes ID/stats.
func (d *daemon) readStats(id string) statsDoc {
	d.tb.Helper()
	s := d.read(id, "stats")
	var st statsDoc
	if err := json.Unmarshal([]byte(s), &st); err != nil {
		d.tb.Fatalf("%s/stats is not one JSON object: %v\n%s", id, err, s)
	}
	if !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		d.tb.Errorf("%s/stats is not one line ending with a newline: %q", id, s)
	}
	return st
}

// runcEvent is the part of `runc events --stats` the tests compare.
type runcEvent struct {
	Type string `json:"type"`
	Data struct {
		CPU struct {
			Usage struct {
				Total uint64 `json:"total"`
			} `json:"usage"`
		} `json:"cpu"`
		Memory struct {
			Usage struct {
				Usage, Limit uint64
			} `json:"usage"`
		} `json:"memory"`
		Pids struct {
			Current, Limit uint64
		} `json:"pids"`
	} `json:"data"`
}

// runcStats runs `runc events --stats` on the daemon's runc root.
func (d *daemon) runcStats(id string) runcEvent {
	d.tb.Helper()
	out, err := exec.Command("runc", "--root", filepath.Join(d.state, "runc"), "events", "--stats", id).Output()
	if err != nil {
		d.tb.Fatalf("runc events --stats %s: %v", id, err)
	}
	var ev runcEvent
	if err := json.Unmarshal(out, &ev); err != nil || ev.Type != "stats" {
		d.tb.Fatalf("runc events --stats %s: %v: %s", id, err, out)
	}
	return ev
}

// readUintFile reads a file holding one number ("max" reads as 0).
func readUintFile(tb testing.TB, path string) uint64 {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return 0
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		tb.Fatalf("%s: %q", path, s)
	}
	return n
}

// limitedBundle makes a bundle running args with a memory limit and a
// pids limit.
func limitedBundle(tb testing.TB, memory, pids int64, args ...string) string {
	tb.Helper()
	b := newBundle(tb, args...)
	if err := bundle.Edit(b, func(s *specs.Spec) {
		if s.Linux.Resources == nil {
			s.Linux.Resources = &specs.LinuxResources{}
		}
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &memory}
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: pids}
	}); err != nil {
		tb.Fatal(err)
	}
	return b
}

// steadyScript runs two processes (sh and a sleep) for good: a pids count
// that does not change while the test compares.
const steadyScript = `trap "exit 0" TERM; sleep 100000 & wait`

// TestStatsAgainstCgroupAndRunc reads ID/stats of a running container and,
// at the same moment, the cgroup files and `runc events --stats`: the
// limits and the task count are equal, the CPU time only grows, the
// memory usage is in a sane band.
func TestStatsAgainstCgroupAndRunc(t *testing.T) {
	d := startDaemon(t)
	const memLimit, pidsLimit = 64 << 20, 100
	b := limitedBundle(t, memLimit, pidsLimit, "sh", "-c", steadyScript)
	id := newID("stats")
	d.run(id, b)
	pid := d.initPid(id)
	waitFor(t, id+" to run sh and sleep", func() (bool, string) {
		n := len(lines(d.read(id, "pids")))
		return n == 2, fmt.Sprintf("%d pids", n)
	})

	before := time.Now()
	s1 := d.readStats(id)
	rs := d.runcStats(id)
	s2 := d.readStats(id)
	if s1.ID != id {
		t.Errorf("stats.id = %q, want %q", s1.ID, id)
	}
	if s1.Time.Before(before.Add(-time.Second)) || s1.Time.After(time.Now().Add(time.Second)) {
		t.Errorf("stats.time = %v, not the time of the read (%v)", s1.Time, before)
	}
	if !s2.Time.After(s1.Time) {
		t.Errorf("the second snapshot's time %v is not after the first's %v: not a fresh snapshot", s2.Time, s1.Time)
	}
	if s1.Cgroup != "v1" && s1.Cgroup != "v2" {
		t.Errorf("stats.cgroup = %q", s1.Cgroup)
	}

	// Limits: the bundle's, the kernel's, runc's.
	if s1.Memory.Limit != memLimit || rs.Data.Memory.Usage.Limit != memLimit {
		t.Errorf("memory.limit = %d, runc's %d, want %d", s1.Memory.Limit, rs.Data.Memory.Usage.Limit, memLimit)
	}
	if s1.Pids.Limit != pidsLimit || rs.Data.Pids.Limit != pidsLimit {
		t.Errorf("pids.limit = %d, runc's %d, want %d", s1.Pids.Limit, rs.Data.Pids.Limit, pidsLimit)
	}
	// Tasks: sh and sleep, for ctrfs, runc and the kernel alike.
	if s1.Pids.Current != 2 || rs.Data.Pids.Current != 2 || s2.Pids.Current != 2 {
		t.Errorf("pids.current = %d then %d, runc's %d, want 2", s1.Pids.Current, s2.Pids.Current, rs.Data.Pids.Current)
	}
	if s1.Cgroup == "v1" {
		if got := readUintFile(t, hostCgroupFile(t, pid, "memory", "memory.limit_in_bytes")); got != s1.Memory.Limit {
			t.Errorf("memory.limit_in_bytes = %d, stats %d", got, s1.Memory.Limit)
		}
		if got := readUintFile(t, hostCgroupFile(t, pid, "pids", "pids.current")); got != s1.Pids.Current {
			t.Errorf("pids.current file = %d, stats %d", got, s1.Pids.Current)
		}
		if got := readUintFile(t, hostCgroupFile(t, pid, "pids", "pids.max")); got != s1.Pids.Limit {
			t.Errorf("pids.max file = %d, stats %d", got, s1.Pids.Limit)
		}
		if len(s1.CPU.Usage.Percpu) == 0 {
			t.Errorf("no cpu.usage.percpu on cgroup v1")
		}
		if _, ok := s1.Memory.Raw["total_rss"]; !ok {
			t.Errorf("memory.raw lacks memory.stat's total_rss: %v", s1.Memory.Raw)
		}
	} else {
		if got := readUintFile(t, hostCgroupFile(t, pid, "", "memory.max")); got != s1.Memory.Limit {
			t.Errorf("memory.max = %d, stats %d", got, s1.Memory.Limit)
		}
		if got := readUintFile(t, hostCgroupFile(t, pid, "", "pids.current")); got != s1.Pids.Current {
			t.Errorf("pids.current file = %d, stats %d", got, s1.Pids.Current)
		}
		if got := readUintFile(t, hostCgroupFile(t, pid, "", "pids.max")); got != s1.Pids.Limit {
			t.Errorf("pids.max file = %d, stats %d", got, s1.Pids.Limit)
		}
	}
	// CPU time: some, and never less at the next read; runc's read in
	// between lies between.
	if s1.CPU.Usage.Total == 0 {
		t.Errorf("cpu.usage.total = 0 for a container that ran sh")
	}
	if s2.CPU.Usage.Total < s1.CPU.Usage.Total || rs.Data.CPU.Usage.Total < s1.CPU.Usage.Total || rs.Data.CPU.Usage.Total > s2.CPU.Usage.Total {
		t.Errorf("cpu.usage.total: ctrfs %d, then runc %d, then ctrfs %d: not monotonic", s1.CPU.Usage.Total, rs.Data.CPU.Usage.Total, s2.CPU.Usage.Total)
	}
	// Memory: more than nothing, within the limit, near runc's figure.
	for _, u := range []uint64{s1.Memory.Usage, s2.Memory.Usage} {
		if u < 4096 || u > memLimit {
			t.Errorf("memory.usage = %d, want between 4 KiB and the limit", u)
		}
	}
	if r := rs.Data.Memory.Usage.Usage; diff(r, s1.Memory.Usage) > 8<<20 {
		t.Errorf("memory.usage = %d, runc's %d: more than 8 MiB apart", s1.Memory.Usage, r)
	}
	if s1.Memory.Max < s1.Memory.Usage && s1.Cgroup == "v1" {
		t.Errorf("memory.max %d below memory.usage %d", s1.Memory.Max, s1.Memory.Usage)
	}
	if s1.Memory.RSS == 0 || len(s1.Memory.Raw) == 0 {
		t.Errorf("memory.rss = %d, raw %v", s1.Memory.RSS, s1.Memory.Raw)
	}
	for _, k := range []string{"ioServiceBytesRecursive", "ioServicedRecursive"} {
		if _, ok := s1.Blkio[k]; !ok {
			t.Errorf("blkio.%s missing: %v", k, s1.Blkio)
		}
	}

	// From a shell, as a user would.
	out := d.mustSh(`cat "$MNT/$ID/stats"`, "ID="+id)
	var viaShell statsDoc
	if err := json.Unmarshal([]byte(out), &viaShell); err != nil || viaShell.Memory.Limit != memLimit {
		t.Errorf("cat stats: %v, %q", err, out)
	}
	// stat reports a size no smaller than a snapshot (a page, as sysfs).
	if st, err := os.Stat(d.path(id, "stats")); err != nil || st.Size() < int64(len(out)) || st.Size()%4096 != 0 {
		t.Errorf("stat of stats: %v, size %d for %d bytes of content", err, st.Size(), len(out))
	}
	d.forceDelete(id)
}

func diff(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// TestStatsInEveryState: a created container (its init waits for start)
// and a paused one have stats; a stopped one's stats file is empty and
// still listed.
func TestStatsInEveryState(t *testing.T) {
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", steadyScript)
	id := newID("stst")
	d.mustCtl("create " + id + " " + b)
	// pids counts tasks: runc's init waiting for start, with its threads.
	if s := d.readStats(id); s.Pids.Current < 1 || s.Memory.Usage == 0 {
		t.Errorf("created: pids.current = %d, memory.usage %d; want runc's init counted", s.Pids.Current, s.Memory.Usage)
	}
	d.mustCtl("start", id)
	d.mustCtl("pause", id)
	d.waitState(id, "paused")
	paused := d.readStats(id)
	if paused.Pids.Current < 1 || paused.CPU.Usage.Total == 0 || paused.Memory.Usage == 0 {
		t.Errorf("paused: stats %+v", paused)
	}
	// Frozen: nothing runs, so the CPU time stands still.
	if again := d.readStats(id); again.CPU.Usage.Total != paused.CPU.Usage.Total {
		t.Errorf("paused: cpu.usage.total moved from %d to %d", paused.CPU.Usage.Total, again.CPU.Usage.Total)
	}
	d.mustCtl("resume", id)
	d.mustCtl("kill KILL", id)
	d.waitState(id, "stopped")
	if s := d.read(id, "stats"); s != "" {
		t.Errorf("stopped: stats = %q, want empty", s)
	}
	found := false
	for _, n := range d.readDir(id) {
		found = found || n == "stats"
	}
	if !found {
		t.Errorf("stats not listed in %s/ once stopped", id)
	}
	if r := d.sh(`cat "$MNT/$ID/stats"`, "ID="+id); r.code != 0 || r.stdout != "" {
		t.Errorf("cat stats of a stopped container: %s, want exit 0 and nothing", r)
	}
	d.forceDelete(id)
	if _, err := d.tryRead(id, "stats"); !os.IsNotExist(err) {
		t.Errorf("stats of a deleted container: %v, want ENOENT", err)
	}
}
