package tests

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// statusResources decodes status.resources.
func (d *daemon) statusResources(id string) map[string]any {
	d.tb.Helper()
	r, ok := d.status(id)["resources"].(map[string]any)
	if !ok {
		d.tb.Fatalf("%s/status has no resources object", id)
	}
	return r
}

// jsonPath follows keys through decoded JSON objects.
func jsonPath(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// TestUpdate changes limits with the shorthands and with JSON (from a shell,
// as the issue shows): the kernel's files, stats, status and the update
// events show them; they survive a restart of the daemon.
func TestUpdate(t *testing.T) {
	d := startDaemon(t)
	id := newID("upd")
	d.run(id, newBundle(t, "sh", "-c", steadyScript))
	pid := d.initPid(id)
	events := d.openEvents(id, "events")
	v1 := d.readStats(id).Cgroup == "v1"

	d.mustCtl("update memory=64M pids=50\n", id)
	s := d.readStats(id)
	if s.Memory.Limit != 64<<20 || s.Pids.Limit != 50 {
		t.Errorf("after update memory=64M pids=50: stats memory.limit %d, pids.limit %d", s.Memory.Limit, s.Pids.Limit)
	}
	if v1 {
		if got := readUintFile(t, hostCgroupFile(t, pid, "memory", "memory.limit_in_bytes")); got != 64<<20 {
			t.Errorf("memory.limit_in_bytes = %d", got)
		}
		if got := readUintFile(t, hostCgroupFile(t, pid, "pids", "pids.max")); got != 50 {
			t.Errorf("pids.max = %d", got)
		}
	} else {
		if got := readUintFile(t, hostCgroupFile(t, pid, "", "memory.max")); got != 64<<20 {
			t.Errorf("memory.max = %d", got)
		}
		if got := readUintFile(t, hostCgroupFile(t, pid, "", "pids.max")); got != 50 {
			t.Errorf("pids.max = %d", got)
		}
	}
	res := d.statusResources(id)
	if jsonPath(res, "memory", "limit") != float64(64<<20) || jsonPath(res, "pids", "limit") != float64(50) {
		t.Errorf("status.resources = %v", res)
	}
	ev := events.until(id, "update")
	if got := string(ev[len(ev)-1].Resources); got != `{"memory":{"limit":67108864},"pids":{"limit":50}}` {
		t.Errorf("update event resources = %s", got)
	}

	// The JSON form, from sh, quotes and all.
	d.mustSh(`echo 'update {"cpu":{"shares":512}}' > "$MNT/$ID/ctl"`, "ID="+id)
	if v1 {
		if got := readUintFile(t, hostCgroupFile(t, pid, "cpu", "cpu.shares")); got != 512 {
			t.Errorf("cpu.shares = %d, want 512", got)
		}
	} else {
		// runc's conversion of shares to a weight: 1 + (512-2)*9999/262142.
		if got := readUintFile(t, hostCgroupFile(t, pid, "", "cpu.weight")); got != 20 {
			t.Errorf("cpu.weight = %d, want 20 (shares 512)", got)
		}
	}
	res = d.statusResources(id)
	if jsonPath(res, "cpu", "shares") != float64(512) || jsonPath(res, "memory", "limit") != float64(64<<20) {
		t.Errorf("status.resources after the JSON update = %v (earlier limits must stay)", res)
	}
	ev = events.until(id, "update")
	if got := string(ev[len(ev)-1].Resources); got != `{"cpu":{"shares":512}}` {
		t.Errorf("update event resources = %s", got)
	}

	// CPU bandwidth: half a CPU.
	d.mustCtl("update cpu-quota=50000 cpu-period=100000", id)
	if v1 {
		if q, p := readUintFile(t, hostCgroupFile(t, pid, "cpu", "cpu.cfs_quota_us")), readUintFile(t, hostCgroupFile(t, pid, "cpu", "cpu.cfs_period_us")); q != 50000 || p != 100000 {
			t.Errorf("cfs quota/period = %d/%d", q, p)
		}
	} else {
		if b, err := os.ReadFile(hostCgroupFile(t, pid, "", "cpu.max")); err != nil || strings.TrimSpace(string(b)) != "50000 100000" {
			t.Errorf("cpu.max = %q, %v; want 50000 100000", b, err)
		}
	}

	// The limits survive a restart of the daemon (state.json).
	d.stop()
	d.restart()
	res = d.statusResources(id)
	if jsonPath(res, "cpu", "shares") != float64(512) || jsonPath(res, "pids", "limit") != float64(50) || jsonPath(res, "cpu", "quota") != float64(50000) {
		t.Errorf("status.resources after a restart = %v", res)
	}

	// Lifting limits.
	d.mustCtl("update memory=max pids=max", id)
	s = d.readStats(id)
	if s.Memory.Limit < 1<<62 || s.Pids.Limit != 0 {
		t.Errorf("after memory=max pids=max: memory.limit %d, pids.limit %d", s.Memory.Limit, s.Pids.Limit)
	}
	res = d.statusResources(id)
	if jsonPath(res, "memory", "limit") != float64(-1) || jsonPath(res, "memory", "swap") != float64(-1) || jsonPath(res, "pids", "limit") != float64(-1) {
		t.Errorf("status.resources after lifting = %v", res)
	}
	d.forceDelete(id)
}

// TestUpdateRuntimeRefuses: a memory limit below what the container uses
// is refused and changes nothing, with an error event: on cgroup v1 the
// kernel refuses it, EIO with runc's text; on v2, where the kernel would
// take it and OOM-kill the container, ctrfs refuses it first: EBUSY,
// saying the usage (docs/files.md, update).
func TestUpdateRuntimeRefuses(t *testing.T) {
	d := startDaemon(t)
	id := newID("updr")
	d.run(id, newBundle(t, "sh", "-c", steadyScript))
	d.mustCtl("update memory=64M", id)
	initPid := d.initPid(id)
	events := d.openEvents(id, "events")
	res, err := d.ctl("update memory=4096", id)
	if d.readStats(id).Cgroup == "v2" {
		if !errors.Is(err, syscall.EBUSY) || !strings.Contains(res, "below the container's current memory usage") ||
			!strings.Contains(res, "memory.current") || !strings.Contains(res, "(EBUSY)") {
			t.Errorf("update memory=4096 on cgroup v2: %v, %q; want EBUSY saying the usage", err, res)
		}
	} else if !errors.Is(err, syscall.EIO) || !strings.Contains(res, "memory") || !strings.Contains(res, "(EIO)") {
		t.Errorf("update memory=4096 on cgroup v1: %v, %q; want EIO with runc's reason", err, res)
	}
	if s := d.readStats(id); s.Memory.OOMKill != 0 || !processAlive(initPid, 0) {
		t.Errorf("after a refused update: oom_kill %d, init alive %v", s.Memory.OOMKill, processAlive(initPid, 0))
	}
	if s := d.readStats(id); s.Memory.Limit != 64<<20 {
		t.Errorf("memory.limit after a refused update = %d, want 64 MiB still", s.Memory.Limit)
	}
	if got := jsonPath(d.statusResources(id), "memory", "limit"); got != float64(64<<20) {
		t.Errorf("status.resources memory.limit after a refused update = %v", got)
	}
	events.until(id, "error")
	if got := d.readTrim(id, "state"); got != "running" {
		t.Errorf("state = %q", got)
	}
	d.forceDelete(id)
}

// TestUpdateMemoryThenOOM lowers the memory limit of a running container;
// then a process that allocates above it is killed by the OOM killer:
// its status is 137 and the kill is counted in stats and in oom.
func TestUpdateMemoryThenOOM(t *testing.T) {
	d := startDaemon(t)
	id := newID("updoom")
	// dd's 64 MiB buffer fills from /dev/zero once /tmp/go exists; its
	// status is kept, and init exits with it once /tmp/end exists.
	script := `while [ ! -e /tmp/go ]; do sleep 0.1; done; ` + hog + ` count=1; st=$?; echo $st > /tmp/dd-status; ` +
		`while [ ! -e /tmp/end ]; do sleep 0.1; done; exit $st`
	b := newBundle(t, "sh", "-c", script)
	d.run(id, b)
	update := "update memory=16M"
	if swaps, _ := os.ReadFile("/proc/swaps"); len(lines(string(swaps))) > 1 {
		update += " memory-swap=16M" // else dd would swap rather than die
	}
	d.mustCtl(update, id)
	s := d.readStats(id)
	if s.Memory.Limit != 16<<20 || s.Memory.OOMKill != 0 {
		t.Fatalf("after %q: memory.limit %d, oom_kill %d", update, s.Memory.Limit, s.Memory.OOMKill)
	}
	rootTmp := filepath.Join(b, "rootfs", "tmp")
	if err := os.WriteFile(filepath.Join(rootTmp, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var ddStatus string
	waitFor(t, "dd to end", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(rootTmp, "dd-status"))
		ddStatus = strings.TrimSpace(string(b))
		return err == nil && ddStatus != "", ddStatus
	})
	if ddStatus != "137" {
		t.Errorf("dd's status = %s, want 137 (SIGKILL by the OOM killer)", ddStatus)
	}
	s = d.readStats(id)
	if s.Memory.OOMKill < 1 {
		t.Errorf("stats memory.oom_kill = %d, want >= 1", s.Memory.OOMKill)
	}
	if s.Cgroup == "v1" && s.Memory.Failcnt == 0 {
		t.Errorf("stats memory.failcnt = 0 after an OOM kill")
	}
	waitFor(t, id+"/oom to count the kill", func() (bool, string) {
		got := d.readTrim(id, "oom")
		return got != "0", got
	})
	if err := os.WriteFile(filepath.Join(rootTmp, "end"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.waitState(id, "stopped")
	if got := d.readTrim(id, "processes", "init", "exit"); got != "137" {
		t.Errorf("init's exit = %s, want dd's 137", got)
	}
	d.forceDelete(id)
}

// TestUpdateEventJSON: the update event is one JSON line whose resources
// are the OCI object applied.
func TestUpdateEventJSON(t *testing.T) {
	d := startDaemon(t)
	id := newID("updev")
	d.run(id, newBundle(t, "sh", "-c", steadyScript))
	events := d.openEvents("events")
	d.mustCtl(`update {"memory":{"limit":-1}}`, id)
	ev := events.until(id, "update")
	var r map[string]any
	if err := json.Unmarshal(ev[len(ev)-1].Resources, &r); err != nil || jsonPath(r, "memory", "swap") != float64(-1) {
		t.Errorf("update event for memory -1: %s, %v; want swap -1 too, as runc applies it", ev[len(ev)-1].Resources, err)
	}
	d.forceDelete(id)
}

// TestUpdateQuotaThrottles: a busy container given a tenth of a CPU is
// throttled, and stats says so.
func TestUpdateQuotaThrottles(t *testing.T) {
	d := startDaemon(t)
	id := newID("updq")
	d.run(id, newBundle(t, "sh", "-c", "while :; do :; done"))
	d.mustCtl("update cpu-quota=10000 cpu-period=100000", id)
	waitFor(t, id+" to be throttled", func() (bool, string) {
		th := d.readStats(id).CPU.Throttling
		return th.Periods > 0 && th.ThrottledPeriods > 0 && th.ThrottledTime > 0, fmt.Sprintf("%+v", th)
	})
	d.forceDelete(id)
}
