package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ctrfs/ctrfs/internal/procfs"
)

// The tests' own reading of the kernel's cgroup files, on cgroup v1 (one
// hierarchy per controller, as on this machine) and v2 (one group, as on
// every current distribution; tests/vm boots both). Written apart from the
// daemon's runtime/cgroup.go on purpose: the tests check what it reads.

// cgroupDir returns the directory of pid's cgroup for controller: in the v1
// hierarchy holding controller where there is one, otherwise pid's cgroup v2
// group (v2 true). controller "" asks for the v2 group. "" when pid is gone,
// exiting (on v1), or has no such cgroup. Paths come from /proc/PID/cgroup and mountinfo,
// never guessed (runc nests the v1 memory cgroup under the caller's own).
func cgroupDir(pid int, controller string) (dir string, v2 bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", false
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	// mount finds the mount of the v2 hierarchy, or of the v1 one holding
	// controller: its root within the hierarchy and its mountpoint.
	mount := func(v2 bool) (root, point string) {
		sc := bufio.NewScanner(strings.NewReader(string(mounts)))
		for sc.Scan() {
			left, right, _ := strings.Cut(sc.Text(), " - ")
			lf, rf := strings.Fields(left), strings.Fields(right)
			if len(lf) < 5 || len(rf) < 3 {
				continue
			}
			if v2 && rf[0] == "cgroup2" || !v2 && rf[0] == "cgroup" && slices.Contains(strings.Split(rf[2], ","), controller) {
				return lf[3], lf[4]
			}
		}
		return "", ""
	}
	join := func(root, point, path string) string {
		if root != "/" {
			path = strings.TrimPrefix(path, root)
		}
		return filepath.Join(point, path)
	}
	v2path := ""
	for _, l := range lines(string(data)) {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[0] == "0" && f[1] == "" {
			v2path = f[2]
			continue
		}
		if controller != "" && slices.Contains(strings.Split(f[1], ","), controller) {
			if root, point := mount(false); point != "" {
				if exiting(pid) {
					// v1 shows an exiting task in the root cgroup of every
					// hierarchy (kernel/cgroup/cgroup.c, proc_cgroup_show).
					return "", false
				}
				return join(root, point, f[2]), false
			}
		}
	}
	if root, point := mount(true); point != "" && v2path != "" {
		return join(root, point, v2path), true
	}
	return "", false
}

// pidsCgroup returns the directory of pid's pids cgroup (v1) or its v2 group,
// or "" when the process is gone.
func pidsCgroup(pid int) string {
	dir, _ := cgroupDir(pid, "pids")
	return dir
}

// freezerState returns the freezer state of pid's cgroup, FROZEN or THAWED:
// v1 freezer.state, or on v2 the "frozen" key of cgroup.events (1 once every
// process of the group is frozen). "" when pid is gone or has no freezer;
// v1's transient FREEZING is returned as is.
func freezerState(pid int) string {
	dir, v2 := cgroupDir(pid, "freezer")
	if dir == "" {
		return ""
	}
	if !v2 {
		s, err := os.ReadFile(filepath.Join(dir, "freezer.state"))
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(s))
	}
	s, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
	if err != nil {
		return ""
	}
	for _, l := range lines(string(s)) {
		switch l {
		case "frozen 1":
			return "FROZEN"
		case "frozen 0":
			return "THAWED"
		}
	}
	return ""
}

// hostCgroupFile returns the path of file name in pid's cgroup of controller
// (v1), or, with controller "" or on a cgroup v2 host, in its v2 group. It
// fails tb when pid has no such cgroup.
func hostCgroupFile(tb testing.TB, pid int, controller, name string) string {
	tb.Helper()
	dir, _ := cgroupDir(pid, controller)
	if dir == "" {
		tb.Fatalf("no %q cgroup for pid %d", controller, pid)
	}
	return filepath.Join(dir, name)
}

// exiting reports whether pid is exiting or a zombie (PF_EXITING in the
// flags of /proc/PID/stat), or gone.
func exiting(pid int) bool {
	st, err := procfs.ReadStat(pid)
	return err != nil || st.Flags&procfs.PFExiting != 0
}
