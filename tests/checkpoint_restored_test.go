package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/tests/bundle"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestCheckpointRestoredContainer: a restored container is a container like
// any other, on cgroup v1 and v2: its processes are in its own cgroup (the
// one runc made for it, not the one they were checkpointed from), so pause
// freezes them, update and stats are about them, it can be checkpointed
// again and restored from that, and delete leaves no cgroup behind. A
// restore while the checkpointed container still runs leaves that one's
// processes and cgroup alone. Twice: with runc's own cgroup for the
// container ("/ID"), and with a relative linux.cgroupsPath and no cgroup
// namespace, where ctrfs moves the restored processes itself.
func TestCheckpointRestoredContainer(t *testing.T) {
	requireCRIU(t)
	t.Run("default", func(t *testing.T) { testRestoredContainer(t, nil) })
	t.Run("moved", func(t *testing.T) {
		testRestoredContainer(t, func(s *specs.Spec, id string) {
			s.Linux.CgroupsPath = "rel-" + id
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.CgroupNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		})
	})
}

// testRestoredContainer runs the test with bundles edited by edit (nil: as
// made), which is told the container's id: one bundle per container, all
// sharing one rootfs, so the counter goes on across them.
func testRestoredContainer(t *testing.T, edit func(*specs.Spec, string)) {
	d := startDaemon(t)
	b := newBundle(t, "sh", "-c", counterScript)
	count, waitCount := counter(t, b)
	bundles := map[string]string{}
	bundleFor := func(id string) string {
		if edit == nil {
			return b
		}
		if own, ok := bundles[id]; ok {
			return own
		}
		own := t.TempDir()
		raw, err := os.ReadFile(filepath.Join(b, "config.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(own, "config.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := bundle.Edit(own, func(s *specs.Spec) {
			s.Root.Path = filepath.Join(b, "rootfs")
			edit(s, id)
		}); err != nil {
			t.Fatal(err)
		}
		bundles[id] = own
		return own
	}
	// cgroups returns the pids (v1) or v2 cgroup and the memory cgroup of
	// each process of container id, failing unless all are in the same
	// ones, named as runc names them.
	suffix := func(id string) string {
		if edit == nil {
			return "/" + id
		}
		return "/rel-" + id
	}
	cgroups := func(id string) []string {
		t.Helper()
		pids := d.pidsOf(id)
		if len(pids) == 0 {
			t.Fatalf("%s has no processes", id)
		}
		var first []string
		for _, pid := range pids {
			p, _ := cgroupDir(pid, "pids")
			m, _ := cgroupDir(pid, "memory")
			if p == "" || m == "" {
				continue // gone meanwhile: the counter's sleep
			}
			if first == nil {
				first = []string{p, m}
				for _, dir := range first {
					if !strings.HasSuffix(dir, suffix(id)) {
						t.Errorf("%s: pid %d is in cgroup %s, want runc's ...%s", id, pid, dir, suffix(id))
					}
				}
			} else if p != first[0] || m != first[1] {
				t.Errorf("%s: pid %d is in cgroups %s and %s, init in %v", id, pid, p, m, first)
			}
		}
		if first == nil {
			t.Fatalf("%s: no cgroup found for any of %v", id, pids)
		}
		return first
	}
	gone := func(what string, dirs []string) {
		t.Helper()
		for _, dir := range dirs {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("%s: cgroup %s is still there (%v)", what, dir, err)
			}
		}
	}

	a := newID("rsa")
	d.run(a, bundleFor(a))
	waitCount(3)
	cgA := cgroups(a)
	initA := d.initPid(a)

	// A restore while a runs on: the new one's processes in its cgroup,
	// a's left alone, and its delete takes only its own cgroup.
	if err := d.mkdirIn(a, "checkpoints", "live"); err != nil {
		t.Fatalf("mkdir checkpoints/live: %v\n%s", err, d.read(a, "ctl"))
	}
	live := newID("rsl")
	d.mustCtl("create " + live + " " + bundleFor(live) + " --checkpoint-dir " + filepath.Join(bundleFor(a), "checkpoints") + " --checkpoint live")
	cgLive := cgroups(live)
	if cgLive[0] == cgA[0] {
		t.Errorf("the restored %s shares %s's cgroup %s", live, a, cgA[0])
	}
	if got := cgroups(a); got[0] != cgA[0] || got[1] != cgA[1] {
		t.Errorf("%s moved from %v to %v by the restore of %s", a, cgA, got, live)
	}
	d.forceDelete(live)
	gone("delete of "+live, cgLive)
	if _, err := os.Stat(cgA[0]); err != nil || !processAlive(initA, 0) || d.readTrim(a, "state") != "running" {
		t.Errorf("%s after the delete of %s: cgroup %v, init alive %v, state %q", a, live, err, processAlive(initA, 0), d.readTrim(a, "state"))
	}

	// --exit, and a restore: r is in its own cgroup, a's is gone.
	d.mustCtl("checkpoint cpa --exit", a)
	stoppedAt := count()
	r := newID("rsr")
	d.mustCtl("create " + r + " " + bundleFor(r) + " --checkpoint-dir " + filepath.Join(bundleFor(a), "checkpoints") + " --checkpoint cpa")
	waitCount(stoppedAt + 2)
	cgR := cgroups(r)
	gone("restore of "+r+" from "+a+"'s checkpoint", cgA)

	// pause: every process frozen, the counter stands still; resume.
	d.mustCtl("pause", r)
	for _, pid := range d.pidsOf(r) {
		if st := freezerState(pid); st != "FROZEN" && st != "" {
			t.Errorf("paused %s: pid %d's freezer is %q", r, pid, st)
		}
	}
	n := count()
	time.Sleep(300 * time.Millisecond) // nothing counts while paused
	if got := count(); got != n {
		t.Errorf("the counter of paused %s went on from %d to %d", r, n, got)
	}
	d.mustCtl("resume", r)
	waitCount(n + 2)

	// update and stats: r's cgroup, the kernel's figures.
	d.mustCtl("update memory=64M pids=50", r)
	s := d.readStats(r)
	if s.Memory.Limit != 64<<20 || s.Pids.Limit != 50 || s.Pids.Current < 1 {
		t.Errorf("stats of %s after update: memory.limit %d, pids %+v", r, s.Memory.Limit, s.Pids)
	}
	limitFile, pidsMax := filepath.Join(cgR[1], "memory.limit_in_bytes"), filepath.Join(cgR[0], "pids.max")
	if s.Cgroup == "v2" {
		limitFile = filepath.Join(cgR[1], "memory.max")
	}
	if got := readUintFile(t, limitFile); got != 64<<20 {
		t.Errorf("%s = %d, want 64 MiB", limitFile, got)
	}
	if got := readUintFile(t, pidsMax); got != 50 {
		t.Errorf("%s = %d, want 50", pidsMax, got)
	}

	// A checkpoint of the restored container, and a restore from it.
	d.mustCtl("checkpoint cpr --exit", r)
	if got := d.readTrim(r, "state"); got != "stopped" {
		t.Errorf("%s after checkpoint --exit: %q", r, got)
	}
	stoppedAt = count()
	r2 := newID("rsr2")
	d.mustCtl("run " + r2 + " " + bundleFor(r2) + " --checkpoint-dir " + filepath.Join(bundleFor(r), "checkpoints") + " --checkpoint cpr")
	waitCount(stoppedAt + 2)
	if first := count(); first < stoppedAt {
		t.Errorf("%s counts from %d, below %d", r2, first, stoppedAt)
	}
	cgR2 := cgroups(r2)
	gone("restore of "+r2+" from "+r+"'s checkpoint", cgR)

	for _, id := range []string{r2, r, a} {
		d.forceDelete(id)
	}
	gone("delete of all", append(append(append([]string{}, cgA...), cgR...), cgR2...))
}

// pidsOf lists the pids of container id's pids file.
func (d *daemon) pidsOf(id string) []int {
	d.tb.Helper()
	var out []int
	for _, l := range lines(d.read(id, "pids")) {
		pid, err := strconv.Atoi(l)
		if err != nil {
			d.tb.Fatalf("%s/pids: %q", id, l)
		}
		out = append(out, pid)
	}
	return out
}
