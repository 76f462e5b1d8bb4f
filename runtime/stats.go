package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
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

// statReader reads cgroup files into one reused buffer, with as few system
// calls as it can (pread of a kept file, or open, read, close: no stat),
// and keeps the first error. The data a read returns is valid until the
// next read.
type statReader struct {
	buf   *[]byte
	files *statFiles
	err   error
}

// file returns the content of dir/name, or nil. A missing optional file
// is no error: it is absent where a controller or kernel feature is.
func (r *statReader) file(dir, name string, optional bool) []byte {
	if dir == "" || r.err != nil {
		return nil
	}
	b, err := r.files.read(filepath.Join(dir, name), r.buf)
	if err != nil {
		if !(optional && errors.Is(err, fs.ErrNotExist)) {
			r.err = err
		}
		return nil
	}
	return b
}

// uint reads a file holding one number ("max" reads as max).
func (r *statReader) uint(dir, name string, optional bool, max uint64) uint64 {
	b := r.file(dir, name, optional)
	if b == nil {
		return 0
	}
	v, err := parseCgroupUint(b, max)
	if err != nil {
		r.fail(dir, name, err)
	}
	return v
}

// keyed reads a file of "key value" lines (memory.stat, cpu.stat ...) and
// calls set for each. It parses the bytes as they are: a string for each
// key would be most of a stats read's garbage.
func (r *statReader) keyed(dir, name string, optional bool, set func(key []byte, v uint64)) {
	b := r.file(dir, name, optional)
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte{' '})
		if !ok {
			continue
		}
		n, err := parseDecimal(bytes.TrimSpace(v))
		if err != nil {
			r.fail(dir, name, err)
			return
		}
		set(k, n)
	}
}

// parseDecimal parses an unsigned decimal number without allocating.
func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, strconv.ErrSyntax
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		d := uint64(c - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, strconv.ErrRange
		}
		n = n*10 + d
	}
	return n, nil
}

// Counters are the "key value" lines of a cgroup file in the kernel's
// order; they encode as one JSON object.
type Counters struct {
	keys []string
	vals []uint64
}

// Get returns the value of key.
func (c *Counters) Get(key string) (uint64, bool) {
	for i, k := range c.keys {
		if k == key {
			return c.vals[i], true
		}
	}
	return 0, false
}

// Len is the number of counters.
func (c *Counters) Len() int { return len(c.keys) }

func (c *Counters) add(key []byte, v uint64) {
	c.keys = append(c.keys, internKey(key))
	c.vals = append(c.vals, v)
}

// MarshalJSON writes the counters as one object, in the kernel's order.
func (c Counters) MarshalJSON() ([]byte, error) {
	out := make([]byte, 0, 32*len(c.keys)+2)
	out = append(out, '{')
	for i, k := range c.keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendJSONString(out, k)
		out = append(out, ':')
		out = strconv.AppendUint(out, c.vals[i], 10)
	}
	return append(out, '}'), nil
}

// appendJSONString appends s quoted for JSON: Go's quoting where it is
// JSON's too (printable ASCII, as the kernel's names are), else
// encoding/json's.
func appendJSONString(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			b, _ := json.Marshal(s)
			return append(out, b...)
		}
	}
	return strconv.AppendQuote(out, s)
}

// internKey returns key as a string, the same one every time: memory.stat
// names the same few dozen counters at every read. The table is bounded.
func internKey(key []byte) string {
	internMu.Lock()
	defer internMu.Unlock()
	if s, ok := interned[string(key)]; ok { // no allocation for the lookup
		return s
	}
	s := string(key)
	if len(interned) < maxInterned {
		interned[s] = s
	}
	return s
}

const maxInterned = 1024

var (
	internMu sync.Mutex
	interned = map[string]string{}
)

func (r *statReader) fail(dir, name string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%s: %v", filepath.Join(dir, name), err)
	}
}

// readFileInto reads a whole file into *buf, growing it when it fills. It
// uses the raw system calls: os.Open would register the file with the
// poller (cgroup files support poll), two more calls for each file.
func readFileInto(path string, buf *[]byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(*buf) {
			*buf = append(*buf, make([]byte, len(*buf))...)
		}
		m, err := unix.Read(fd, (*buf)[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return (*buf)[:n], nil
		}
		n += m
	}
}

// parseCgroupUint parses one number; "max" (no limit) parses as max.
func parseCgroupUint(b []byte, max uint64) (uint64, error) {
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return max, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

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

// firstOf returns the first of keys present in c, or 0.
func firstOf(c *Counters, keys ...string) uint64 {
	for _, k := range keys {
		if v, ok := c.Get(k); ok {
			return v
		}
	}
	return 0
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
