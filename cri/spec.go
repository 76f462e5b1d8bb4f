package cri

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI server writes the whole OCI spec of every sandbox and container
// and hands it to ctrfs with `create ID --image REF --config PATH`: ctrfs
// sets only root.path, to the image's rootfs.

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultCaps are docker's and containerd's default capabilities.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var defaultMaskedPaths = []string{
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
}

var defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// imageConfig is the part of an image config (images/sha256:HEX/config.json)
// a spec is made from.
type imageConfig struct {
	Config struct {
		User       string
		Env        []string
		Entrypoint []string
		Cmd        []string
		WorkingDir string
		StopSignal string
	} `json:"config"`
}

// baseSpec is the OCI default of `runc spec` with docker's capabilities and
// a writable root, as ctrfs's own --image specs are. It repeats
// images.DefaultSpec's capabilities, mounts and masked paths on purpose:
// this package is a client of the tree and imports none of the daemon's
// (cri/imports_test.go), and the tree has no file of default specs (a
// `--config` spec is taken as written, so the daemon cannot fill gaps
// without changing other callers' specs). The two differ where the CRI
// must (no namespaces, no rlimits or no_new_privileges by default: the
// CRI's security context decides); a change to the common part belongs in
// both.
func baseSpec() *specs.Spec {
	caps := append([]string(nil), defaultCaps...)
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs"},
		Process: &specs.Process{
			Env: []string{defaultPath},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
			MaskedPaths:   append([]string(nil), defaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), defaultReadonlyPaths...),
		},
	}
}

// mergeEnv is the image's environment with over's K=V replacing or adding.
func mergeEnv(image []string, over []string) []string {
	out := append([]string(nil), image...)
	idx := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		idx[k] = i
	}
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	if _, ok := idx["PATH"]; !ok {
		out = append([]string{defaultPath}, out...)
	}
	return out
}

// numericUser parses an image's User of numbers ("1000", "1000:1000");
// names are not resolved (ok false).
func numericUser(s string) (uid, gid uint32, ok bool) {
	if s == "" {
		return 0, 0, true
	}
	u, g, hasG := strings.Cut(s, ":")
	un, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	if !hasG {
		return uint32(un), 0, true
	}
	gn, err := strconv.ParseUint(g, 10, 32)
	if err != nil {
		return 0, 0, false
	}
	return uint32(un), uint32(gn), true
}

// nsPath is the path of a namespace of the process pid.
func nsPath(pid int, ns string) string { return fmt.Sprintf("/proc/%d/ns/%s", pid, ns) }

// clampOOM keeps oom_score_adj at 0 or above: this kind of host refuses to
// lower a score even to root (DESIGN §5), and a refused score fails the
// create.
func clampOOM(v int64) *int {
	if v < 0 {
		v = 0
	}
	if v > 1000 {
		v = 1000
	}
	i := int(v)
	return &i
}

// applySecurity applies a CRI Linux security context to the spec.
func applySecurity(s *specs.Spec, sc securityContext) {
	if sc.privileged {
		all := allCaps()
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
		s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		for i := range s.Mounts {
			if s.Mounts[i].Destination == "/sys" || s.Mounts[i].Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = removeString(s.Mounts[i].Options, "ro")
			}
		}
	} else {
		c := s.Process.Capabilities
		set := func(list []string) []string {
			for _, a := range sc.addCaps {
				if strings.EqualFold(a, "ALL") {
					return allCaps()
				}
				list = appendUnique(list, capName(a))
			}
			for _, d := range sc.dropCaps {
				if strings.EqualFold(d, "ALL") {
					list = nil
					for _, a := range sc.addCaps {
						list = appendUnique(list, capName(a))
					}
					break
				}
				list = removeString(list, capName(d))
			}
			return list
		}
		c.Bounding, c.Effective, c.Permitted = set(c.Bounding), set(c.Effective), set(c.Permitted)
		if sc.maskedPaths != nil {
			s.Linux.MaskedPaths = sc.maskedPaths
		}
		if sc.readonlyPaths != nil {
			s.Linux.ReadonlyPaths = sc.readonlyPaths
		}
	}
	s.Process.NoNewPrivileges = sc.noNewPrivs
	if sc.readonlyRoot {
		s.Root.Readonly = true
	}
}

// securityContext is what the pod's and the container's CRI security
// contexts have in common.
type securityContext struct {
	privileged, noNewPrivs, readonlyRoot bool
	addCaps, dropCaps                    []string
	maskedPaths, readonlyPaths           []string
}

func capName(c string) string {
	c = strings.ToUpper(c)
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	return c
}

// allCaps is every capability the running kernel knows and this process
// may hand on: its own bounding set (a host may withhold some even from
// root, as this kind of VM does CAP_SYS_RESOURCE; asking runc for one then
// fails every privileged container, so containerd takes the same set).
func allCaps() []string {
	bounding := ^uint64(0)
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "CapBnd:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					bounding = n
				}
			}
		}
	}
	last := 40
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			last = n
		}
	}
	names := []string{"CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
		"SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK",
		"IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT",
		"SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL",
		"SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON",
		"BPF", "CHECKPOINT_RESTORE"}
	var out []string
	for i, n := range names {
		if i <= last && bounding&(1<<i) != 0 {
			out = append(out, "CAP_"+n)
		}
	}
	return out
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

func removeString(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// applyResources sets the CRI's Linux resources on the spec.
func applyResources(s *specs.Spec, r *runtimeapi.LinuxContainerResources) {
	if r == nil {
		return
	}
	res := s.Linux.Resources
	if r.CpuShares != 0 || r.CpuQuota != 0 || r.CpuPeriod != 0 || r.CpusetCpus != "" || r.CpusetMems != "" {
		res.CPU = &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
		if r.CpuShares != 0 {
			v := uint64(r.CpuShares)
			res.CPU.Shares = &v
		}
		if r.CpuQuota != 0 {
			v := r.CpuQuota
			res.CPU.Quota = &v
		}
		if r.CpuPeriod != 0 {
			v := uint64(r.CpuPeriod)
			res.CPU.Period = &v
		}
	}
	if r.MemoryLimitInBytes > 0 {
		v := r.MemoryLimitInBytes
		res.Memory = &specs.LinuxMemory{Limit: &v}
		if r.MemorySwapLimitInBytes > 0 {
			sw := r.MemorySwapLimitInBytes
			res.Memory.Swap = &sw
		}
	}
	for _, h := range r.HugepageLimits {
		if !hugetlbCgroup() {
			break
		}
		res.HugepageLimits = append(res.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.PageSize, Limit: h.Limit})
	}
	if r.OomScoreAdj != 0 {
		s.Process.OOMScoreAdj = clampOOM(r.OomScoreAdj)
	}
}

// resourcesJSON is the OCI LinuxResources of a CRI update, for `update
// {JSON}`: only the fields runc can change on a running container.
func resourcesJSON(r *runtimeapi.LinuxContainerResources) ([]byte, error) {
	s := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Resources: &specs.LinuxResources{}}}
	applyResources(s, r)
	s.Linux.Resources.HugepageLimits = nil
	return json.Marshal(s.Linux.Resources)
}

// applyMounts adds the CRI's mounts (binds of host paths), replacing a
// default mount at the same destination.
func applyMounts(s *specs.Spec, mounts []*runtimeapi.Mount) error {
	for _, m := range mounts {
		if isImageMount(m) {
			continue // the daemon mounts it: --image-mount (imagevolume.go)
		}
		if m.ContainerPath == "" || !filepath.IsAbs(m.ContainerPath) {
			return fmt.Errorf("mount %q: the container path must be absolute", m.ContainerPath)
		}
		src := m.HostPath
		st, err := os.Stat(src)
		if err != nil {
			if !os.IsNotExist(err) {
				return fmt.Errorf("mount %s: %v", src, err)
			}
			// As docker and containerd: a missing source is made a directory.
			if err := os.MkdirAll(src, 0o755); err != nil {
				return fmt.Errorf("mount %s: %v", src, err)
			}
		} else if !st.IsDir() && !st.Mode().IsRegular() && st.Mode()&os.ModeSocket == 0 && st.Mode()&os.ModeDevice == 0 {
			return fmt.Errorf("mount %s: not a file or directory", src)
		}
		opts := []string{"rbind"}
		if m.Readonly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		if m.RecursiveReadOnly {
			// runc makes the submounts read-only too (mount_setattr).
			opts = append(opts, "rro")
		}
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			opts = append(opts, "rshared")
			// A mount made inside reaches the host only if the
			// container's root is shared too (runc makes it private).
			s.Linux.RootfsPropagation = "rshared"
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			opts = append(opts, "rslave")
			if s.Linux.RootfsPropagation != "rshared" {
				s.Linux.RootfsPropagation = "rslave"
			}
		default:
			opts = append(opts, "rprivate")
		}
		kept := s.Mounts[:0]
		for _, x := range s.Mounts {
			if filepath.Clean(x.Destination) != filepath.Clean(m.ContainerPath) {
				kept = append(kept, x)
			}
		}
		s.Mounts = append(kept, specs.Mount{Destination: m.ContainerPath, Type: "bind", Source: src, Options: opts})
	}
	return nil
}

// applyDevices adds the CRI's devices (host device nodes) to the spec.
func applyDevices(s *specs.Spec, devs []*runtimeapi.Device) error {
	for _, d := range devs {
		var st unix.Stat_t
		if err := unix.Stat(d.HostPath, &st); err != nil {
			return fmt.Errorf("device %s: %v", d.HostPath, err)
		}
		var typ string
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return fmt.Errorf("device %s: not a device node", d.HostPath)
		}
		major, minor := int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev)))
		mode := os.FileMode(st.Mode & 0o777)
		s.Linux.Devices = append(s.Linux.Devices, specs.LinuxDevice{
			Path: d.ContainerPath, Type: typ, Major: major, Minor: minor, FileMode: &mode, UID: &st.Uid, GID: &st.Gid,
		})
		perm := d.Permissions
		if perm == "" {
			perm = "rwm"
		}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: typ, Major: &major, Minor: &minor, Access: perm,
		})
	}
	return nil
}

// sortedKeys is the keys of m, sorted.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
