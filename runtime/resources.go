package runtime

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// UpdateRequest is what `update` asks: new resource limits as OCI
// LinuxResources, what `runc update -r -` reads. What is left unset (nil,
// an empty cpuset string, a pids limit of 0) does not change; -1 means no
// limit.
type UpdateRequest struct {
	Resources specs.LinuxResources
}

// Limits of the values the kernel takes (cgroup v1 names; v2 converts).
const (
	minCPUShares   = 2
	maxCPUShares   = 262144
	minCFSQuota    = 1000 // µs
	minCFSPeriod   = 1000
	maxCFSPeriod   = 1000000
	minBlkioWeight = 10
	maxBlkioWeight = 1000
	maxCPUIndex    = 8191 // beyond any kernel's NR_CPUS
)

// Check validates the request without touching the host: the parser calls
// it, so a whole write is checked before any of it runs. It refuses what
// `runc update` would silently ignore (devices, hugepages, ...), so a user
// is never told "ok" for a change that did not happen.
func (req *UpdateRequest) Check() error {
	r := &req.Resources
	bad := func(format string, args ...any) error {
		return Errorf(KindInvalid, "update: "+format, args...)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"devices", r.Devices != nil}, {"hugepageLimits", r.HugepageLimits != nil}, {"network", r.Network != nil},
		{"rdma", r.Rdma != nil}, {"unified", r.Unified != nil},
	} {
		if f.set {
			return bad("%s cannot be changed on a running container (runc update changes memory, cpu, blockIO.weight and pids)", f.name)
		}
	}
	changes := 0
	if m := r.Memory; m != nil {
		for _, f := range []struct {
			name string
			set  bool
		}{
			{"kernel", m.Kernel != nil}, {"kernelTCP", m.KernelTCP != nil}, {"swappiness", m.Swappiness != nil},
			{"disableOOMKiller", m.DisableOOMKiller != nil}, {"useHierarchy", m.UseHierarchy != nil},
			{"checkBeforeUpdate", m.CheckBeforeUpdate != nil},
		} {
			if f.set {
				return bad("memory.%s cannot be updated (runc update changes memory limit, reservation and swap)", f.name)
			}
		}
		for _, v := range []struct {
			name string
			p    *int64
		}{{"memory limit", m.Limit}, {"memory reservation", m.Reservation}, {"memory+swap limit", m.Swap}} {
			if v.p == nil {
				continue
			}
			if *v.p < -1 || *v.p == 0 {
				return bad("%s %d: must be a number of bytes, or -1 for no limit", v.name, *v.p)
			}
			changes++
		}
		if m.Limit != nil && m.Swap != nil && *m.Swap != -1 && (*m.Limit == -1 || *m.Swap < *m.Limit) {
			return bad("memory+swap limit %d is below the memory limit %d: memory-swap counts memory and swap together", *m.Swap, *m.Limit)
		}
	}
	if c := r.CPU; c != nil {
		if c.Burst != nil || c.Idle != nil {
			return bad("cpu.burst and cpu.idle cannot be updated by this runtime")
		}
		if c.Shares != nil {
			if *c.Shares < minCPUShares || *c.Shares > maxCPUShares {
				return bad("cpu shares %d: must be %d to %d", *c.Shares, minCPUShares, maxCPUShares)
			}
			changes++
		}
		if c.Quota != nil {
			if *c.Quota != -1 && *c.Quota < minCFSQuota {
				return bad("cpu quota %d: must be at least %d (µs), or -1 for no limit", *c.Quota, minCFSQuota)
			}
			changes++
		}
		if c.Period != nil {
			if *c.Period < minCFSPeriod || *c.Period > maxCFSPeriod {
				return bad("cpu period %d: must be %d to %d (µs)", *c.Period, minCFSPeriod, maxCFSPeriod)
			}
			changes++
		}
		if c.RealtimeRuntime != nil {
			if *c.RealtimeRuntime < -1 {
				return bad("cpu realtimeRuntime %d: must be at least -1", *c.RealtimeRuntime)
			}
			changes++
		}
		if c.RealtimePeriod != nil {
			if *c.RealtimePeriod == 0 {
				return bad("cpu realtimePeriod 0: must be at least 1 (µs)")
			}
			changes++
		}
		for _, l := range []struct{ name, list string }{{"cpuset cpus", c.Cpus}, {"cpuset mems", c.Mems}} {
			if l.list == "" {
				continue
			}
			if _, err := ParseCPUList(l.list); err != nil {
				return bad("%s %q: %v", l.name, l.list, err)
			}
			changes++
		}
	}
	if b := r.BlockIO; b != nil {
		if b.LeafWeight != nil || b.WeightDevice != nil || b.ThrottleReadBpsDevice != nil ||
			b.ThrottleWriteBpsDevice != nil || b.ThrottleReadIOPSDevice != nil || b.ThrottleWriteIOPSDevice != nil {
			return bad("only blockIO.weight can be updated")
		}
		if b.Weight != nil {
			if *b.Weight < minBlkioWeight || *b.Weight > maxBlkioWeight {
				return bad("blkio weight %d: must be %d to %d", *b.Weight, minBlkioWeight, maxBlkioWeight)
			}
			changes++
		}
	}
	if p := r.Pids; p != nil {
		if p.Limit == 0 || p.Limit < -1 {
			return bad("pids limit %d: must be at least 1, or -1 for no limit", p.Limit)
		}
		changes++
	}
	if changes == 0 {
		return bad("nothing to change")
	}
	return nil
}

// normalized is the request as runc applies it: a memory limit lifted
// (-1) with no word on swap lifts the memory+swap limit too.
func (req *UpdateRequest) normalized() specs.LinuxResources {
	r := req.Resources
	if m := r.Memory; m != nil && m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
		mm := *m
		unlimited := int64(-1)
		mm.Swap = &unlimited
		r.Memory = &mm
	}
	return r
}

// ParseCPUList parses a cpuset list ("0-3,6", "1"): ascending ranges of
// CPU (or memory node) numbers.
func ParseCPUList(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := parseCPUIndex(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = parseCPUIndex(hi)
		}
		if err1 != nil || err2 != nil {
			return nil, Errorf(KindInvalid, "bad element %q: want N or N-M, N and M from 0 to %d", part, maxCPUIndex)
		}
		if b < a {
			return nil, Errorf(KindInvalid, "bad range %q: the end is below the start", part)
		}
		for i := a; i <= b; i++ {
			out = append(out, i)
		}
	}
	return out, nil
}

func parseCPUIndex(s string) (int, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > maxCPUIndex {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// checkOnline refuses a cpuset naming CPUs or memory nodes the host does
// not have: the kernel would refuse it too, but as a runtime failure.
func checkOnline(cpu *specs.LinuxCPU) error {
	if cpu == nil {
		return nil
	}
	for _, c := range []struct{ what, list, file string }{
		{"CPU", cpu.Cpus, "/sys/devices/system/cpu/online"},
		{"memory node", cpu.Mems, "/sys/devices/system/node/online"},
	} {
		if c.list == "" {
			continue
		}
		b, err := os.ReadFile(c.file)
		if err != nil {
			continue // no such information (a kernel without NUMA): let the kernel judge
		}
		online, err := ParseCPUList(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		have := map[int]bool{}
		for _, n := range online {
			have[n] = true
		}
		want, _ := ParseCPUList(c.list)
		for _, n := range want {
			if !have[n] {
				return Errorf(KindInvalid, "update: %s %d is not online on this host (online: %s)", c.what, n, strings.TrimSpace(string(b)))
			}
		}
	}
	return nil
}

// mergeResources returns base with the changes of u applied, as runc
// applies them; base is not modified.
func mergeResources(base *specs.LinuxResources, u specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if base != nil {
		b, _ := json.Marshal(base) // a deep copy
		json.Unmarshal(b, out)
	}
	if m := u.Memory; m != nil {
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		if m.Limit != nil {
			out.Memory.Limit = m.Limit
		}
		if m.Reservation != nil {
			out.Memory.Reservation = m.Reservation
		}
		if m.Swap != nil {
			out.Memory.Swap = m.Swap
		}
	}
	if c := u.CPU; c != nil {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		if c.Shares != nil {
			out.CPU.Shares = c.Shares
		}
		if c.Quota != nil {
			out.CPU.Quota = c.Quota
		}
		if c.Period != nil {
			out.CPU.Period = c.Period
		}
		if c.RealtimeRuntime != nil {
			out.CPU.RealtimeRuntime = c.RealtimeRuntime
		}
		if c.RealtimePeriod != nil {
			out.CPU.RealtimePeriod = c.RealtimePeriod
		}
		if c.Cpus != "" {
			out.CPU.Cpus = c.Cpus
		}
		if c.Mems != "" {
			out.CPU.Mems = c.Mems
		}
	}
	if b := u.BlockIO; b != nil && b.Weight != nil {
		if out.BlockIO == nil {
			out.BlockIO = &specs.LinuxBlockIO{}
		}
		out.BlockIO.Weight = b.Weight
	}
	if p := u.Pids; p != nil && p.Limit != 0 {
		out.Pids = &specs.LinuxPids{Limit: p.Limit}
	}
	return out
}

// resourcesOf returns linux.resources of a config.json, or nil.
func resourcesOf(raw []byte) *specs.LinuxResources {
	var spec struct {
		Linux *struct {
			Resources *specs.LinuxResources `json:"resources"`
		} `json:"linux"`
	}
	if json.Unmarshal(raw, &spec) != nil || spec.Linux == nil {
		return nil
	}
	return spec.Linux.Resources
}

// Update applies new resource limits with the runtime (runc update). The
// limits are then visible in stats (the kernel's) and in status (as
// ctrfs applied them). What status says must be what the kernel has, so
// the new limits are recorded in state.json before the runtime applies
// them (a state directory that cannot take them refuses the update with
// the kernel untouched), and after a runtime failure, which may come after
// the kernel took some of them (runc writes its own state last), status
// takes back from the kernel what it can read (memory and pids limits,
// cpu, cpuset and block I/O weight) and the rest as before.
func (c *Container) Update(ctx context.Context, req UpdateRequest) error {
	if err := req.Check(); err != nil {
		return err
	}
	ctx, end, err := c.begin(ctx, OrderUpdate)
	if err != nil {
		return err
	}
	defer end()
	if err := checkOnline(req.Resources.CPU); err != nil {
		return err
	}
	res := req.normalized()
	if err := c.checkMemoryLimit(&res); err != nil {
		return c.failed(OrderUpdate, err)
	}
	c.mu.Lock()
	old := c.rec
	next := c.rec
	c.mu.Unlock()
	next.Resources = mergeResources(old.Resources, res)
	now := time.Now().UTC()
	next.Updated = &now // status's mtime
	if err := writeJSONAtomic(filepath.Join(c.dir, recordFile), next); err != nil {
		return c.failed(OrderUpdate, Errorf(KindInternal, "update: cannot record the new limits, nothing changed: %v", err))
	}
	if err := c.cli.update(ctx, c.id, &res); err != nil {
		c.settleFailedUpdate(old.Resources, res)
		return c.failed(OrderUpdate, err)
	}
	c.mu.Lock()
	c.rec.Resources = next.Resources
	c.rec.Updated = next.Updated
	c.mu.Unlock()
	raw, _ := json.Marshal(res)
	c.publish(Event{Type: EventUpdate, Resources: raw})
	c.log.WithField("resources", string(raw)).Info("updated")
	return nil
}

// settleFailedUpdate makes the record of a failed update say what the
// kernel has: the limits it can read back (memory and pids limits, cpu,
// cpuset, block I/O weight) as read, the others as before, and writes it
// back.
func (c *Container) settleFailedUpdate(before *specs.LinuxResources, asked specs.LinuxResources) {
	got := readBack(c.cgroups(), before, asked)
	if st, err := c.Stats(); err == nil && st != nil {
		if m := asked.Memory; m != nil && m.Limit != nil {
			got.Memory = &specs.LinuxMemory{Limit: kernelLimit(st.Memory.Limit)}
		}
		if asked.Pids != nil {
			got.Pids = &specs.LinuxPids{Limit: *kernelLimit(st.Pids.Limit)}
		}
	}
	c.mu.Lock()
	c.rec.Resources = mergeResources(before, got)
	rec := c.rec
	c.mu.Unlock()
	if err := writeJSONAtomic(filepath.Join(c.dir, recordFile), rec); err != nil {
		c.log.WithError(err).Warn("update failed, and the limits the kernel has cannot be recorded")
	}
}

// kernelLimit is a limit read from a cgroup file as OCI says it: -1 for
// none (the files' "max", 0 or a huge number).
func kernelLimit(v uint64) *int64 {
	n := int64(-1)
	if v != 0 && v < 1<<62 {
		n = int64(v)
	}
	return &n
}
