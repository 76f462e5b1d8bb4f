package cri

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ContainerStatus.user is the identity the container's init process has
// (its real uid, gid and groups), read from /proc/PID/status: the CRI runs
// on the daemon's host, and the kernel's word is what the process got,
// whatever the spec asked. The pid is the tree's; a process that is gone,
// or a file that does not parse, leaves the user empty.

// maxProcStatus bounds the read of /proc/PID/status (a few KiB on a real
// kernel).
const maxProcStatus = 64 << 10

// processUser is the user of the process pid, or an empty one.
func processUser(pid int) *runtimeapi.ContainerUser {
	u := &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{}}
	if pid <= 0 {
		return u
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProcStatus))
	if err != nil {
		return u
	}
	if lu, ok := parseProcUser(b); ok {
		u.Linux = lu
	}
	return u
}

// parseProcUser takes the Uid, Gid and Groups lines of a /proc/PID/status
// ("Uid:\treal\teffective\tsaved\tfs", "Groups:\tg1 g2 "): all three, or
// ok false.
func parseProcUser(b []byte) (*runtimeapi.LinuxContainerUser, bool) {
	u := &runtimeapi.LinuxContainerUser{}
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid", "Gid":
			if len(f) != 4 {
				return nil, false
			}
			id, err := strconv.ParseUint(f[0], 10, 32)
			if err != nil {
				return nil, false
			}
			if k == "Uid" {
				u.Uid, seen = int64(id), seen|1
			} else {
				u.Gid, seen = int64(id), seen|2
			}
		case "Groups":
			for _, g := range f {
				id, err := strconv.ParseUint(g, 10, 32)
				if err != nil {
					return nil, false
				}
				u.SupplementalGroups = append(u.SupplementalGroups, int64(id))
			}
			seen |= 4
		}
	}
	if sc.Err() != nil || seen != 7 {
		return nil, false
	}
	return u, true
}
