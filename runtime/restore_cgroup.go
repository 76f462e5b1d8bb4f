package runtime

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ctrfs/ctrfs/internal/procfs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// A restored container must end up in its own cgroup, the one the runtime
// made for it and records in its state. runc 1.1 does not see to it on
// cgroup v2: it gives CRIU no cgroup root there, and CRIU puts the restored
// processes back in the cgroup they were checkpointed from (the old
// container's), so pause, update, stats and a second checkpoint would act
// on an empty group. runc 1.2 has `--manage-cgroups-mode ignore`, where CRIU
// leaves cgroups alone and runc puts the processes in the container's
// cgroup: ctrfs asks for it where the runtime offers it, and after every
// restore moves whatever is still elsewhere (restoredCgroups).

// ignoreModes caches, per runtime binary (path, size and mtime), whether its
// `restore --help` offers `--manage-cgroups-mode ignore`: one run of the
// runtime per binary, on the first restore, never on a read.
var ignoreModes sync.Map // runtimeBinary -> bool

type runtimeBinary struct {
	path  string
	size  int64
	mtime time.Time
}

// restoreCgroupsMode returns the --manage-cgroups-mode to restore with
// using the runtime at path: "ignore" where it has it, else "" (its
// default).
func restoreCgroupsMode(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return ""
	}
	key := runtimeBinary{path, st.Size(), st.ModTime()}
	if v, ok := ignoreModes.Load(key); ok {
		if v.(bool) {
			return "ignore"
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, path, "restore", "--help").Output()
	ok := offersIgnoreMode(string(out))
	ignoreModes.Store(key, ok)
	if ok {
		return "ignore"
	}
	return ""
}

// offersIgnoreMode reads `runc restore --help`: runc 1.1 says "cgroups
// mode: 'soft' (default), 'full' and 'strict'", 1.2 adds "ignore".
func offersIgnoreMode(help string) bool {
	for _, l := range strings.Split(help, "\n") {
		if strings.Contains(l, "--manage-cgroups-mode") {
			return strings.Contains(l, "ignore")
		}
	}
	return false
}

// restoreCgroupRoot returns the cgroup v2 group CRIU should restore
// container id into, where the runtime (runc before 1.2: no ignore mode)
// does not tell CRIU itself: runc's group for it, "/ID" or the bundle's
// absolute linux.cgroupsPath. "" on cgroup v1 (runc gives CRIU the roots
// there), with ignore mode, and where runc's choice is not known without
// guessing (systemd cgroups, a relative path): restoredCgroups still moves
// the processes then.
func restoreCgroupRoot(spec *specs.Spec, id string, runtimeArgs []string, mode string) string {
	var fs unix.Statfs_t
	if mode != "" || unix.Statfs("/sys/fs/cgroup", &fs) != nil || fs.Type != unix.CGROUP2_SUPER_MAGIC {
		return ""
	}
	for _, a := range runtimeArgs {
		if a == "--systemd-cgroup" {
			return ""
		}
	}
	p := ""
	if spec.Linux != nil {
		p = spec.Linux.CgroupsPath
	}
	switch {
	case p == "":
		return "/" + id
	case filepath.IsAbs(p):
		return filepath.Clean(p)
	}
	return ""
}

// runcCgroupPaths reads the cgroup directories the runtime records for
// container id in its state (runc: <root>/<id>/state.json, cgroup_paths:
// controller -> directory, "" for the v2 group).
func runcCgroupPaths(root, id string) (map[string]string, error) {
	var st struct {
		CgroupPaths map[string]string `json:"cgroup_paths"`
	}
	if err := readJSON(filepath.Join(root, id, "state.json"), &st); err != nil {
		return nil, err
	}
	return st.CgroupPaths, nil
}

// restoreMovePasses bounds the passes over an old cgroup: a pass that moves
// nothing ends the move, and each pass only finds what was forked during
// the one before.
const restoreMovePasses = 100

// restoredCgroups puts the processes of the restored container c where the
// runtime's state says its cgroups are, in every hierarchy, and removes
// the cgroups they came from once empty, unless the runtime records them
// for another container (a checkpoint without --exit: the old container
// still runs there).
func (r *Runtime) restoredCgroups(c *Container) error {
	want, err := runcCgroupPaths(r.runtimeRoot, c.id)
	if err != nil {
		// Another runtime keeps its state elsewhere: nothing to go by.
		c.log.WithError(err).Warn("restore: the runtime's state has no cgroup paths; the restored processes stay where the runtime put them")
		return nil
	}
	mounts, err := readCgroupMounts()
	if err != nil {
		return Errorf(KindInternal, "restore: %v", err)
	}
	pid := c.init.Pid()
	belongs, err := restoredProcs(pid)
	if err != nil {
		return Errorf(KindInternal, "restore: %v", err)
	}
	done := map[string]bool{}
	var left []string // the cgroups the processes were moved out of
	for _, target := range want {
		if target == "" || done[target] {
			continue
		}
		done[target] = true
		m, ok := mountOf(mounts, target)
		if !ok {
			continue
		}
		cur, err := cgroupIn(pid, m)
		if err != nil {
			return Errorf(KindInternal, "restore: %v", err)
		}
		if cur == "" || cur == target {
			continue
		}
		if err := moveProcs(cur, target, belongs); err != nil {
			return Errorf(KindInternal, "restore: moving the restored processes from %s to %s: %v", cur, target, err)
		}
		c.log.WithFields(logrus.Fields{"from": cur, "to": target}).Info("restore: processes moved into the container's cgroup")
		if cur != m.point && !strings.HasPrefix(target, cur+"/") {
			left = append(left, cur)
		}
	}
	for _, dir := range left {
		r.removeLeftCgroup(c, dir)
	}
	return nil
}

// removeLeftCgroup removes dir, a cgroup the restored processes were moved
// out of, when it is empty (the kernel refuses otherwise) and no other
// container of this runtime root records it as its own.
func (r *Runtime) removeLeftCgroup(c *Container, dir string) {
	ents, _ := os.ReadDir(r.runtimeRoot)
	for _, e := range ents {
		if e.Name() == c.id {
			continue
		}
		paths, err := runcCgroupPaths(r.runtimeRoot, e.Name())
		if err != nil {
			continue
		}
		for _, p := range paths {
			if p == dir {
				return // that container's delete removes it
			}
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.EBUSY) {
		c.log.WithError(err).WithField("cgroup", dir).Warn("restore: cannot remove the cgroup the restored processes were moved out of")
	}
}

// mountOf returns the cgroup mount holding directory dir (the longest
// mountpoint that is a prefix of it).
func mountOf(mounts []cgroupMount, dir string) (cgroupMount, bool) {
	var best cgroupMount
	found := false
	for _, m := range mounts {
		if (dir == m.point || strings.HasPrefix(dir, m.point+"/")) && (!found || len(m.point) > len(best.point)) {
			best, found = m, true
		}
	}
	return best, found
}

// cgroupIn returns the directory of pid's cgroup in the hierarchy mounted
// as m, from /proc/PID/cgroup; "" when it has none there.
func cgroupIn(pid int, m cgroupMount) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		match := m.v2 && parts[0] == "0" && parts[1] == ""
		if !m.v2 && parts[1] != "" {
			for _, ctl := range strings.Split(parts[1], ",") {
				match = match || m.controllers[ctl]
			}
		}
		if match {
			return filepath.Join(m.point, relCgroup(m.root, parts[2])), nil
		}
	}
	return "", sc.Err()
}

// restoredProcs returns the test of a process belonging to the restored
// container whose init is pid: in init's pid namespace (when it has its
// own), or a descendant of init.
func restoredProcs(pid int) (func(int) bool, error) {
	initNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil, err
	}
	ownNS, _ := os.Readlink("/proc/self/ns/pid")
	return func(p int) bool {
		if initNS != ownNS {
			if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p)); err == nil && ns == initNS {
				return true
			}
		}
		for i := 0; i < 64 && p > 1; i++ { // a nested namespace, or none
			if p == pid {
				return true
			}
			st, err := procfs.ReadStat(p)
			if err != nil {
				return false
			}
			p = st.PPid
		}
		return false
	}, nil
}

// moveProcs writes every process of cgroup from that belongs into cgroup
// to, pass after pass, until a pass finds none left: a process forked
// before its parent moved is created in from, and the next pass finds it.
func moveProcs(from, to string, belongs func(int) bool) error {
	for pass := 0; pass < restoreMovePasses; pass++ {
		b, err := os.ReadFile(filepath.Join(from, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		moved := 0
		for _, f := range strings.Fields(string(b)) {
			p, err := strconv.Atoi(f)
			if err != nil || !belongs(p) {
				continue
			}
			err = os.WriteFile(filepath.Join(to, "cgroup.procs"), []byte(f), 0)
			if errors.Is(err, syscall.ESRCH) {
				continue // gone meanwhile
			}
			if err != nil {
				return fmt.Errorf("pid %d: %w", p, err)
			}
			moved++
		}
		if moved == 0 {
			return nil
		}
	}
	return fmt.Errorf("processes kept appearing after %d passes", restoreMovePasses)
}
