package runtime

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Stats is one snapshot of a container's resource usage, read straight from
// its cgroup files: the runtime is never run for it. Names and units follow
// `runc events --stats` (nanoseconds, bytes, counts), with memory's own
// entry flattened so that memory.usage and memory.limit are numbers; see
// docs/files.md.
type Stats struct {
	ID string `json:"id"`
	// Time is when the snapshot was taken.
	Time time.Time `json:"time"`
	// Cgroup is "v1" or "v2": which files the numbers come from.
	Cgroup string      `json:"cgroup"`
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	Blkio  BlkioStats  `json:"blkio"`
}

// CPUStats is the cpu part of Stats.
type CPUStats struct {
	Usage      CPUUsage      `json:"usage"`
	Throttling CPUThrottling `json:"throttling"`
}

// CPUUsage is CPU time used, in nanoseconds. The per-CPU lists exist on
// cgroup v1 only.
type CPUUsage struct {
	Total        uint64   `json:"total"`
	User         uint64   `json:"user"`
	Kernel       uint64   `json:"kernel"`
	Percpu       []uint64 `json:"percpu,omitempty"`
	PercpuUser   []uint64 `json:"percpu_user,omitempty"`
	PercpuKernel []uint64 `json:"percpu_kernel,omitempty"`
}

// CPUThrottling is what the CFS quota did: periods elapsed, periods in
// which the container was throttled, and the time (ns) it was held back.
type CPUThrottling struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time"`
}

// MemoryStats is the memory part of Stats, in bytes.
type MemoryStats struct {
	Usage uint64 `json:"usage"`
	// Max is the highest usage seen (v2: memory.peak, where the kernel
	// has it).
	Max uint64 `json:"max"`
	// Limit is the hard limit; without one, the kernel's "no limit":
	// 9223372036854771712 on v1, 18446744073709551615 on v2 (as runc).
	Limit uint64 `json:"limit"`
	// Failcnt counts the times usage hit the limit.
	Failcnt uint64 `json:"failcnt"`
	Cache   uint64 `json:"cache"`
	RSS     uint64 `json:"rss"`
	// Swap is memory+swap, as runc reports it (v1's memsw).
	Swap MemoryEntry `json:"swap"`
	// OOMKill counts the processes the OOM killer killed in the cgroup.
	OOMKill uint64 `json:"oom_kill"`
	// UnderOOM is true while the cgroup is out of memory (v1 only).
	UnderOOM bool `json:"under_oom"`
	// Raw is memory.stat, every counter as the kernel names it.
	Raw Counters `json:"raw"`
}

// MemoryEntry is one memory counter set, in bytes.
type MemoryEntry struct {
	Usage   uint64 `json:"usage"`
	Max     uint64 `json:"max"`
	Limit   uint64 `json:"limit"`
	Failcnt uint64 `json:"failcnt"`
}

// PidsStats counts the container's tasks; Limit 0 means no limit.
type PidsStats struct {
	Current uint64 `json:"current"`
	Limit   uint64 `json:"limit"`
}

// BlkioStats is block I/O per device, as runc's lists: bytes and
// operations, one entry per device and operation (Read, Write, ...).
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive"`
}

// BlkioEntry is one counter of one device.
type BlkioEntry struct {
	Major uint64 `json:"major"`
	Minor uint64 `json:"minor"`
	Op    string `json:"op"`
	Value uint64 `json:"value"`
}

// Stats reads a snapshot of the container's resource usage from its cgroup
// files. It returns nil, and no error, once the container is stopped: its
// cgroups are gone with it.
func (c *Container) Stats() (*Stats, error) {
	if c.State() == Stopped {
		return nil, nil
	}
	cg := c.cgroups()
	if cg.procs == "" {
		return nil, nil // init is gone: the exit is about to be recorded
	}
	c.statLRU.touch(&c.statFiles)
	c.statFiles.mu.Lock()
	s, err := readStats(cg, &c.statFiles)
	c.statFiles.mu.Unlock()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && (c.State() == Stopped || !dirExists(cg.procs)) {
			c.statLRU.forget(&c.statFiles)
			return nil, nil // it stopped while we read
		}
		return nil, Errorf(KindInternal, "stats: %v", err)
	}
	s.ID = c.id
	return s, nil
}

func dirExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// statBufs are the read buffers of stats reads, reused.
var statBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// readStats reads the stats of the cgroups cg, through files when not nil
// (its lock held).
func readStats(cg cgroupDirs, files *statFiles) (*Stats, error) {
	buf := statBufs.Get().(*[]byte)
	defer statBufs.Put(buf)
	r := &statReader{buf: buf, files: files}
	s := &Stats{
		Time:  time.Now().UTC(),
		Blkio: BlkioStats{IoServiceBytesRecursive: []BlkioEntry{}, IoServicedRecursive: []BlkioEntry{}},
	}
	if cg.v2 {
		s.Cgroup = "v2"
		r.v2(cg.procs, s)
	} else {
		s.Cgroup = "v1"
		r.v1(cg, s)
	}
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}
