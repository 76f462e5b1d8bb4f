package runtime

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// v2 reads cgroup v2 files: one group directory holds every controller.
func (r *statReader) v2(g string, s *Stats) {
	cpu := &s.CPU
	r.keyed(g, "cpu.stat", false, func(k []byte, v uint64) {
		switch string(k) {
		case "usage_usec":
			cpu.Usage.Total = v * 1000
		case "user_usec":
			cpu.Usage.User = v * 1000
		case "system_usec":
			cpu.Usage.Kernel = v * 1000
		case "nr_periods":
			cpu.Throttling.Periods = v
		case "nr_throttled":
			cpu.Throttling.ThrottledPeriods = v
		case "throttled_usec":
			cpu.Throttling.ThrottledTime = v * 1000
		}
	})

	m := &s.Memory
	m.Usage = r.uint(g, "memory.current", false, 0)
	m.Limit = r.uint(g, "memory.max", false, math.MaxUint64)
	m.Max = r.uint(g, "memory.peak", true, 0) // Linux 5.19
	r.keyed(g, "memory.stat", false, m.Raw.add)
	m.Cache = firstOf(&m.Raw, "file")
	m.RSS = firstOf(&m.Raw, "anon")
	r.keyed(g, "memory.events", false, func(k []byte, v uint64) {
		switch string(k) {
		case "max":
			m.Failcnt = v
		case "oom_kill":
			m.OOMKill = v
		}
	})
	// As runc: swap is memory+swap, as on v1. No swap files without
	// swap accounting.
	if b := r.file(g, "memory.swap.current", true); b != nil {
		swap, err := parseCgroupUint(b, 0)
		if err != nil {
			r.fail(g, "memory.swap.current", err)
		}
		m.Swap.Usage = m.Usage + swap
		swapMax := r.uint(g, "memory.swap.max", false, math.MaxUint64)
		m.Swap.Limit = math.MaxUint64
		if swapMax != math.MaxUint64 && m.Limit != math.MaxUint64 {
			m.Swap.Limit = m.Limit + swapMax
		}
		m.Swap.Failcnt = m.Failcnt
	}

	s.Pids.Current = r.uint(g, "pids.current", false, 0)
	s.Pids.Limit = r.uint(g, "pids.max", false, 0)

	// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N";
	// absent without the io controller.
	b := r.file(g, "io.stat", true)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := strings.Cut(f[0], ":")
		if !ok {
			continue
		}
		major, err1 := strconv.ParseUint(maj, 10, 64)
		minor, err2 := strconv.ParseUint(min, 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			r.fail(g, "io.stat", err)
			break
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue // a key this parser does not know the form of
			}
			e := BlkioEntry{Major: major, Minor: minor, Value: n}
			switch k {
			case "rbytes":
				e.Op = "Read"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "wbytes":
				e.Op = "Write"
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "rios":
				e.Op = "Read"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			case "wios":
				e.Op = "Write"
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			}
		}
	}
}
