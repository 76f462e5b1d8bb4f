package runtime

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The v1 fixture holds files copied from a runc container on a cgroup v1
// host (Linux 6.18), with a memory and a pids limit and some I/O written
// in; the v2 fixture follows the formats of the kernel's cgroup-v2.rst.

func TestStatsV1(t *testing.T) {
	d := filepath.Join("testdata", "cgroup-v1")
	cg := cgroupDirs{
		procs: filepath.Join(d, "pids"), pidsDir: filepath.Join(d, "pids"),
		cpu: filepath.Join(d, "cpu"), cpuacct: filepath.Join(d, "cpuacct"),
		memory: filepath.Join(d, "memory"), blkio: filepath.Join(d, "blkio"),
	}
	s, err := readStats(cg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cgroup != "v1" {
		t.Errorf("cgroup = %q", s.Cgroup)
	}
	wantCPU := CPUStats{
		Usage: CPUUsage{
			Total: 2277487585, User: 87 * 10000000, Kernel: 139 * 10000000,
			Percpu:       []uint64{1175721819, 1101765766},
			PercpuUser:   []uint64{396000000, 440000000},
			PercpuKernel: []uint64{716000000, 616000000},
		},
		Throttling: CPUThrottling{Periods: 10, ThrottledPeriods: 4, ThrottledTime: 123456},
	}
	if !reflect.DeepEqual(s.CPU, wantCPU) {
		t.Errorf("cpu = %+v\nwant %+v", s.CPU, wantCPU)
	}
	m := s.Memory
	if m.Usage != 671744 || m.Max != 2744320 || m.Limit != 67108864 || m.Failcnt != 3 {
		t.Errorf("memory usage/max/limit/failcnt = %d/%d/%d/%d", m.Usage, m.Max, m.Limit, m.Failcnt)
	}
	if m.Cache != 49152 || m.RSS != 114688 {
		t.Errorf("memory cache/rss = %d/%d", m.Cache, m.RSS)
	}
	if want := (MemoryEntry{Usage: 671744, Max: 2744320, Limit: 9223372036854771712}); m.Swap != want {
		t.Errorf("memory.swap = %+v, want %+v", m.Swap, want)
	}
	if m.OOMKill != 1 || m.UnderOOM {
		t.Errorf("oom_kill/under_oom = %d/%v", m.OOMKill, m.UnderOOM)
	}
	pgfault, _ := m.Raw.Get("total_pgfault")
	limit, _ := m.Raw.Get("hierarchical_memory_limit")
	if m.Raw.Len() != 42 || pgfault != 44540 || limit != 9223372036854771712 {
		t.Errorf("memory.raw has %d keys: %v", m.Raw.Len(), m.Raw)
	}
	if s.Pids != (PidsStats{Current: 2, Limit: 100}) {
		t.Errorf("pids = %+v", s.Pids)
	}
	wantBytes := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 8192}, {254, 0, "Sync", 8192},
		{254, 0, "Async", 4096}, {254, 0, "Discard", 0}, {254, 0, "Total", 12288}}
	if !reflect.DeepEqual(s.Blkio.IoServiceBytesRecursive, wantBytes) {
		t.Errorf("blkio bytes = %+v", s.Blkio.IoServiceBytesRecursive)
	}
	if len(s.Blkio.IoServicedRecursive) != 6 || s.Blkio.IoServicedRecursive[1] != (BlkioEntry{254, 0, "Write", 2}) {
		t.Errorf("blkio ops = %+v", s.Blkio.IoServicedRecursive)
	}
}

func TestStatsV2(t *testing.T) {
	g := filepath.Join("testdata", "cgroup-v2")
	s, err := readStats(cgroupDirs{procs: g, v2: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Cgroup != "v2" {
		t.Errorf("cgroup = %q", s.Cgroup)
	}
	wantCPU := CPUStats{
		Usage:      CPUUsage{Total: 2277487000, User: 870000000, Kernel: 1390000000},
		Throttling: CPUThrottling{Periods: 10, ThrottledPeriods: 4, ThrottledTime: 123000},
	}
	if !reflect.DeepEqual(s.CPU, wantCPU) {
		t.Errorf("cpu = %+v\nwant %+v", s.CPU, wantCPU)
	}
	m := s.Memory
	if m.Usage != 671744 || m.Max != 2744320 || m.Limit != 67108864 || m.Failcnt != 3 || m.OOMKill != 1 {
		t.Errorf("memory usage/max/limit/failcnt/oom_kill = %d/%d/%d/%d/%d", m.Usage, m.Max, m.Limit, m.Failcnt, m.OOMKill)
	}
	if m.Cache != 49152 || m.RSS != 114688 || m.Raw.Len() != 18 {
		t.Errorf("memory cache/rss = %d/%d, raw %v", m.Cache, m.RSS, m.Raw)
	}
	if want := (MemoryEntry{Usage: 671744 + 4096, Limit: math.MaxUint64, Failcnt: 3}); m.Swap != want {
		t.Errorf("memory.swap = %+v, want %+v", m.Swap, want)
	}
	if s.Pids != (PidsStats{Current: 2, Limit: 0}) {
		t.Errorf("pids = %+v (max reads as limit 0)", s.Pids)
	}
	if want := []BlkioEntry{{254, 0, "Read", 4096}, {254, 0, "Write", 8192}}; !reflect.DeepEqual(s.Blkio.IoServiceBytesRecursive, want) {
		t.Errorf("blkio bytes = %+v", s.Blkio.IoServiceBytesRecursive)
	}
	if want := []BlkioEntry{{254, 0, "Read", 1}, {254, 0, "Write", 2}}; !reflect.DeepEqual(s.Blkio.IoServicedRecursive, want) {
		t.Errorf("blkio ops = %+v", s.Blkio.IoServicedRecursive)
	}
}

// TestStatsV2Minimal: a group with only the files every v2 group has gives
// stats, with zeros (and the no-limit values) for what is absent.
func TestStatsV2Minimal(t *testing.T) {
	g := t.TempDir()
	for name, content := range map[string]string{
		"cpu.stat":       "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
		"memory.current": "4096\n", "memory.max": "max\n", "memory.stat": "anon 4096\nfile 0\n",
		"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
		"pids.current":  "1\n", "pids.max": "max\n",
	} {
		if err := os.WriteFile(filepath.Join(g, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err := readStats(cgroupDirs{procs: g, v2: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Memory.Limit != math.MaxUint64 || s.Memory.Swap != (MemoryEntry{}) || s.CPU.Usage.Total != 5000 {
		t.Errorf("stats = %+v", s)
	}
	b, _ := json.Marshal(s)
	for _, want := range []string{`"ioServiceBytesRecursive":[]`, `"raw":{"anon":4096,"file":0}`, `"limit":18446744073709551615`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "percpu") {
		t.Errorf("JSON %s has per-CPU lists, which v2 does not give", b)
	}
}

// TestStatsErrors: a required file missing, or a file that does not
// parse, is an error naming the file; a group that is gone is ENOENT.
func TestStatsErrors(t *testing.T) {
	g := t.TempDir()
	os.WriteFile(filepath.Join(g, "cpu.stat"), []byte("usage_usec x\n"), 0o644)
	if _, err := readStats(cgroupDirs{procs: g, v2: true}, nil); err == nil || !strings.Contains(err.Error(), "cpu.stat") {
		t.Errorf("bad cpu.stat: %v", err)
	}
	gone := filepath.Join(g, "gone")
	_, err := readStats(cgroupDirs{procs: gone, v2: true}, nil)
	if !os.IsNotExist(err) {
		t.Errorf("a removed group: %v, want ENOENT", err)
	}
}

func TestReadFileIntoGrows(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	data := strings.Repeat("x", 10000)
	os.WriteFile(p, []byte(data), 0o644)
	buf := make([]byte, 16)
	got, err := readFileInto(p, &buf)
	if err != nil || string(got) != data {
		t.Errorf("readFileInto = %d bytes, %v", len(got), err)
	}
}

func TestParseDecimal(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "42": 42, "18446744073709551615": math.MaxUint64} {
		if got, err := parseDecimal([]byte(in)); err != nil || got != want {
			t.Errorf("parseDecimal(%q) = %d, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "1.5", "x", "18446744073709551616", "123456789012345678901", " 1"} {
		if got, err := parseDecimal([]byte(bad)); err == nil {
			t.Errorf("parseDecimal(%q) = %d, want an error", bad, got)
		}
	}
}

// TestCountersJSON: the raw counters are one JSON object in the kernel's
// order, keys quoted as JSON wants.
func TestCountersJSON(t *testing.T) {
	var c Counters
	c.add([]byte("rss"), 2)
	c.add([]byte("cache"), 1)
	c.add([]byte(`we"ird`), 3)
	c.add([]byte("tab\tü"), 4)
	b, err := json.Marshal(struct{ Raw Counters }{c})
	if err != nil || string(b) != `{"Raw":{"rss":2,"cache":1,"we\"ird":3,"tab\tü":4}}` {
		t.Errorf("JSON = %s, %v", b, err)
	}
	var back map[string]uint64
	if err := json.Unmarshal(b[7:len(b)-1], &back); err != nil || back["cache"] != 1 {
		t.Errorf("not valid JSON: %v", err)
	}
	if b, _ := json.Marshal(Counters{}); string(b) != "{}" {
		t.Errorf("empty counters = %s", b)
	}
}
