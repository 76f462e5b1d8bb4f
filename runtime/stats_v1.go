package runtime

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// nsPerUserHZ converts cpuacct.stat's ticks (USER_HZ, 100 a second on
// every Linux) to nanoseconds.
const nsPerUserHZ = uint64(time.Second) / 100

// v1 reads cgroup v1 files: each controller has its own directory.
func (r *statReader) v1(cg cgroupDirs, s *Stats) {
	cpu := &s.CPU
	cpu.Usage.Total = r.uint(cg.cpuacct, "cpuacct.usage", false, 0)
	if b := r.file(cg.cpuacct, "cpuacct.usage_percpu", false); b != nil {
		for _, f := range strings.Fields(string(b)) {
			n, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				r.fail(cg.cpuacct, "cpuacct.usage_percpu", err)
				break
			}
			cpu.Usage.Percpu = append(cpu.Usage.Percpu, n)
		}
	}
	// "cpu user system" then one line per CPU (ns); kernels before 4.7
	// lack the file.
	if b := r.file(cg.cpuacct, "cpuacct.usage_all", true); b != nil {
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) != 3 {
				continue
			}
			u, err1 := strconv.ParseUint(f[1], 10, 64)
			k, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				r.fail(cg.cpuacct, "cpuacct.usage_all", errors.Join(err1, err2))
				break
			}
			cpu.Usage.PercpuUser = append(cpu.Usage.PercpuUser, u)
			cpu.Usage.PercpuKernel = append(cpu.Usage.PercpuKernel, k)
		}
	}
	r.keyed(cg.cpuacct, "cpuacct.stat", false, func(k []byte, v uint64) {
		switch string(k) {
		case "user":
			cpu.Usage.User = v * nsPerUserHZ
		case "system":
			cpu.Usage.Kernel = v * nsPerUserHZ
		}
	})
	// Without CFS bandwidth control (CONFIG_CFS_BANDWIDTH) there is no
	// cpu.stat: nothing was throttled.
	r.keyed(cg.cpu, "cpu.stat", true, func(k []byte, v uint64) {
		switch string(k) {
		case "nr_periods":
			cpu.Throttling.Periods = v
		case "nr_throttled":
			cpu.Throttling.ThrottledPeriods = v
		case "throttled_time":
			cpu.Throttling.ThrottledTime = v
		}
	})

	m := &s.Memory
	m.Usage = r.uint(cg.memory, "memory.usage_in_bytes", false, 0)
	m.Max = r.uint(cg.memory, "memory.max_usage_in_bytes", false, 0)
	m.Limit = r.uint(cg.memory, "memory.limit_in_bytes", false, 0)
	m.Failcnt = r.uint(cg.memory, "memory.failcnt", false, 0)
	// memsw exists only with swap accounting (swapaccount=1).
	m.Swap.Usage = r.uint(cg.memory, "memory.memsw.usage_in_bytes", true, 0)
	m.Swap.Max = r.uint(cg.memory, "memory.memsw.max_usage_in_bytes", true, 0)
	m.Swap.Limit = r.uint(cg.memory, "memory.memsw.limit_in_bytes", true, 0)
	m.Swap.Failcnt = r.uint(cg.memory, "memory.memsw.failcnt", true, 0)
	r.keyed(cg.memory, "memory.stat", false, m.Raw.add)
	m.Cache = firstOf(&m.Raw, "total_cache", "cache")
	m.RSS = firstOf(&m.Raw, "total_rss", "rss")
	// oom_kill is there since Linux 4.13.
	r.keyed(cg.memory, "memory.oom_control", false, func(k []byte, v uint64) {
		switch string(k) {
		case "oom_kill":
			m.OOMKill = v
		case "under_oom":
			m.UnderOOM = v != 0
		}
	})

	s.Pids.Current = r.uint(cg.pidsDir, "pids.current", false, 0)
	s.Pids.Limit = r.uint(cg.pidsDir, "pids.max", false, 0)

	r.blkioV1(cg.blkio, &s.Blkio)
}

// blkioV1 reads the v1 blkio counters. The throttle files count every I/O
// submitted to a device, whatever its scheduler, so they come first; the
// BFQ and CFQ ones (CFQ is gone since Linux 5.0) only where they are not.
func (r *statReader) blkioV1(dir string, b *BlkioStats) {
	if dir == "" {
		return
	}
	for _, variant := range [][2]string{
		{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_serviced_recursive"},
		{"blkio.throttle.io_service_bytes", "blkio.throttle.io_serviced"},
		{"blkio.bfq.io_service_bytes_recursive", "blkio.bfq.io_serviced_recursive"},
		{"blkio.io_service_bytes_recursive", "blkio.io_serviced_recursive"},
	} {
		bytes := r.file(dir, variant[0], true)
		if bytes == nil {
			continue
		}
		b.IoServiceBytesRecursive = r.blkioEntries(dir, variant[0], bytes)
		b.IoServicedRecursive = r.blkioEntries(dir, variant[1], r.file(dir, variant[1], false))
		return
	}
}

// blkioEntries parses "MAJ:MIN Op value" lines; the final "Total N" line,
// a sum over devices, is left out.
func (r *statReader) blkioEntries(dir, name string, data []byte) []BlkioEntry {
	out := []BlkioEntry{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		majMin, op, val := f[0], f[1], f[2]
		maj, min, ok := strings.Cut(majMin, ":")
		if !ok {
			continue
		}
		e := BlkioEntry{Op: op}
		var err1, err2, err3 error
		e.Major, err1 = strconv.ParseUint(maj, 10, 64)
		e.Minor, err2 = strconv.ParseUint(min, 10, 64)
		e.Value, err3 = strconv.ParseUint(val, 10, 64)
		if err := errors.Join(err1, err2, err3); err != nil {
			r.fail(dir, name, err)
			return out
		}
		out = append(out, e)
	}
	return out
}
