package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// cgroupDirs are the cgroup directories ctrfs reads for a container. They are
// found from /proc/<init pid>/cgroup and /proc/self/mountinfo, never guessed:
// runc nests the v1 memory cgroup under the caller's own, for one.
type cgroupDirs struct {
	// procs is the directory whose cgroup.procs lists every process of
	// the container: the v1 pids (or else freezer) hierarchy, or the v2 group.
	procs string
	// freezer is the v1 freezer directory, or the v2 group (cgroup.freeze).
	freezer string
	// memory is the v1 memory directory, or the v2 group (memory.events).
	memory string
	// pidsDir, cpu, cpuacct and blkio are the v1 directories of those
	// controllers ("" where one is not mounted), or the v2 group: the
	// stats file reads them.
	pidsDir, cpu, cpuacct, blkio string
	// cpuset is the v1 cpuset directory, or the v2 group: a failed
	// update reads back what the kernel has.
	cpuset string
	v2     bool
}

// cgroupMount is one cgroup filesystem mount from mountinfo.
type cgroupMount struct {
	root, point string
	controllers map[string]bool // empty for cgroup2
	v2          bool
}

func readCgroupMounts() ([]cgroupMount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupMount
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root point opts [optional...] - fstype source superopts
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) < 5 || len(rf) < 3 {
			continue
		}
		m := cgroupMount{root: lf[3], point: lf[4], controllers: map[string]bool{}}
		switch rf[0] {
		case "cgroup2":
			m.v2 = true
		case "cgroup":
			for _, o := range strings.Split(rf[2], ",") {
				m.controllers[o] = true
			}
		default:
			continue
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// cgroupDirsOf finds the cgroup directories of process pid.
func cgroupDirsOf(pid int) (cgroupDirs, error) {
	mounts, err := readCgroupMounts()
	if err != nil {
		return cgroupDirs{}, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return cgroupDirs{}, err
	}
	v1 := map[string]string{} // controller -> path
	v2Path, haveV2 := "", false
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2Path, haveV2 = parts[2], true
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			v1[c] = parts[2]
		}
	}
	dir := func(controller string) string {
		p, ok := v1[controller]
		if !ok {
			return ""
		}
		for _, m := range mounts {
			if !m.v2 && m.controllers[controller] {
				return filepath.Join(m.point, relCgroup(m.root, p))
			}
		}
		return ""
	}
	var d cgroupDirs
	if d.procs = dir("pids"); d.procs == "" {
		d.procs = dir("freezer")
	}
	d.freezer = dir("freezer")
	d.memory = dir("memory")
	d.pidsDir, d.cpu, d.cpuacct, d.blkio = dir("pids"), dir("cpu"), dir("cpuacct"), dir("blkio")
	d.cpuset = dir("cpuset")
	if d.procs == "" && haveV2 {
		// A pure v2 host: one group holds everything.
		for _, m := range mounts {
			if m.v2 {
				g := filepath.Join(m.point, relCgroup(m.root, v2Path))
				d = cgroupDirs{procs: g, freezer: g, memory: g, pidsDir: g, cpu: g, cpuacct: g, blkio: g, cpuset: g, v2: true}
				break
			}
		}
	}
	if d.procs == "" {
		return d, fmt.Errorf("no pids, freezer or cgroup2 hierarchy found for pid %d", pid)
	}
	return d, nil
}

// relCgroup makes a /proc/PID/cgroup path relative to a mount whose root is
// not the hierarchy's root (as inside a cgroup namespace).
func relCgroup(root, path string) string {
	if root != "/" && strings.HasPrefix(path, root) {
		return strings.TrimPrefix(path, root)
	}
	return path
}

// pids lists the processes of the cgroup, ascending.
func (d cgroupDirs) pids() ([]int, error) {
	if d.procs == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(d.procs, "cgroup.procs"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	sort.Ints(out)
	return out, nil
}

// frozen reports whether the cgroup is frozen (paused).
func (d cgroupDirs) frozen() bool {
	if d.freezer == "" {
		return false
	}
	if d.v2 {
		b, err := os.ReadFile(filepath.Join(d.freezer, "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	b, err := os.ReadFile(filepath.Join(d.freezer, "freezer.state"))
	return err == nil && strings.TrimSpace(string(b)) == "FROZEN"
}
