package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// readBack reads from the kernel the cpu, cpuset and blkio (v2: io)
// values a failed update asked for, as OCI says them: runc may have
// written some of them before it failed. A value the kernel has in other
// units (v2's cpu.weight, io.weight) is taken as asked, or as before, when
// it is what that value converts to, else converted back. A file that
// cannot be read leaves its field unset: the record keeps what it had.
func readBack(cg cgroupDirs, before *specs.LinuxResources, asked specs.LinuxResources) specs.LinuxResources {
	var got specs.LinuxResources
	var was specs.LinuxResources
	if before != nil {
		was = *before
	}
	if a := asked.CPU; a != nil {
		var w specs.LinuxCPU
		if was.CPU != nil {
			w = *was.CPU
		}
		got.CPU = readBackCPU(cg, &w, a)
	}
	if a := asked.BlockIO; a != nil && a.Weight != nil {
		var w *uint16
		if was.BlockIO != nil {
			w = was.BlockIO.Weight
		}
		if v, ok := readBackWeight(cg, w, *a.Weight); ok {
			got.BlockIO = &specs.LinuxBlockIO{Weight: &v}
		}
	}
	return got
}

func readBackCPU(cg cgroupDirs, was, a *specs.LinuxCPU) *specs.LinuxCPU {
	out := &specs.LinuxCPU{}
	if a.Shares != nil {
		if cg.v2 {
			if k, ok := cgroupUint(cg.cpu, "cpu.weight"); ok {
				v := pick(k, a.Shares, was.Shares, sharesToWeight, weightToShares)
				out.Shares = &v
			}
		} else if k, ok := cgroupUint(cg.cpu, "cpu.shares"); ok {
			out.Shares = &k
		}
	}
	if a.Quota != nil || a.Period != nil {
		quota, period, ok := cpuMax(cg)
		if ok && a.Quota != nil {
			out.Quota = &quota
		}
		if ok && a.Period != nil {
			out.Period = &period
		}
	}
	if !cg.v2 {
		if a.RealtimeRuntime != nil {
			if b, err := readCgroupFile(cg.cpu, "cpu.rt_runtime_us"); err == nil {
				if n, err := strconv.ParseInt(b, 10, 64); err == nil {
					out.RealtimeRuntime = &n
				}
			}
		}
		if a.RealtimePeriod != nil {
			if k, ok := cgroupUint(cg.cpu, "cpu.rt_period_us"); ok {
				out.RealtimePeriod = &k
			}
		}
	}
	if a.Cpus != "" {
		if b, err := readCgroupFile(cg.cpuset, "cpuset.cpus"); err == nil {
			out.Cpus = b
		}
	}
	if a.Mems != "" {
		if b, err := readCgroupFile(cg.cpuset, "cpuset.mems"); err == nil {
			out.Mems = b
		}
	}
	return out
}

// cpuMax reads the CFS quota (-1 for none) and period.
func cpuMax(cg cgroupDirs) (quota int64, period uint64, ok bool) {
	if cg.v2 {
		b, err := readCgroupFile(cg.cpu, "cpu.max")
		q, p, found := strings.Cut(b, " ")
		if err != nil || !found {
			return 0, 0, false
		}
		quota = -1
		if q != "max" {
			if quota, err = strconv.ParseInt(q, 10, 64); err != nil {
				return 0, 0, false
			}
		}
		period, err = strconv.ParseUint(p, 10, 64)
		return quota, period, err == nil
	}
	b, err := readCgroupFile(cg.cpu, "cpu.cfs_quota_us")
	if err != nil {
		return 0, 0, false
	}
	if quota, err = strconv.ParseInt(b, 10, 64); err != nil {
		return 0, 0, false
	}
	period, ok = cgroupUint(cg.cpu, "cpu.cfs_period_us")
	return quota, period, ok
}

// readBackWeight reads the block I/O weight: v1 blkio.weight (or
// blkio.bfq.weight, where runc writes when that is all there is), v2
// io.bfq.weight (the same scale) or io.weight (converted).
func readBackWeight(cg cgroupDirs, was *uint16, asked uint16) (uint16, bool) {
	w := func(v *uint16) *uint64 {
		if v == nil {
			return nil
		}
		n := uint64(*v)
		return &n
	}
	var files []string
	if cg.v2 {
		files = []string{"io.bfq.weight", "io.weight"}
	} else {
		files = []string{"blkio.weight", "blkio.bfq.weight"}
	}
	for _, f := range files {
		b, err := readCgroupFile(cg.blkio, f)
		if err != nil {
			continue
		}
		// v2 says "default N" (and lines per device).
		first, _, _ := strings.Cut(b, "\n")
		first = strings.TrimPrefix(first, "default ")
		k, err := strconv.ParseUint(first, 10, 64)
		if err != nil {
			continue
		}
		if f == "io.weight" {
			k = pick(k, w(&asked), w(was), blkioToIOWeight, ioToBlkioWeight)
		}
		return uint16(k), true
	}
	return 0, false
}

// pick is the OCI value of kernel value k, given in other units: asked or
// was when it converts to k (conversions lose precision), else back(k).
func pick(k uint64, asked, was *uint64, to, back func(uint64) uint64) uint64 {
	for _, v := range []*uint64{asked, was} {
		if v != nil && to(*v) == k {
			return *v
		}
	}
	return back(k)
}

// The conversions runc (libcontainer/cgroups) makes for cgroup v2.
func sharesToWeight(s uint64) uint64 {
	if s == 0 {
		return 0
	}
	return 1 + ((s-2)*9999)/262142
}

func weightToShares(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	return 2 + ((w-1)*262142)/9999
}

func blkioToIOWeight(b uint64) uint64 {
	if b == 0 {
		return 0
	}
	return 1 + (b-10)*9999/990
}

func ioToBlkioWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	return 10 + (w-1)*990/9999
}

func readCgroupFile(dir, name string) (string, error) {
	if dir == "" {
		return "", os.ErrNotExist
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	return strings.TrimSpace(string(b)), err
}

func cgroupUint(dir, name string) (uint64, bool) {
	b, err := readCgroupFile(dir, name)
	if err != nil {
		return 0, false
	}
	n, err := strconv.ParseUint(b, 10, 64)
	return n, err == nil
}
