// Package procfs reads /proc/PID/stat, the one place ctrfs learns a
// process's state, parent and start time. The daemon, the shim and the
// tests share it: the start time is how all of them tell a process from a
// later one that reused its pid.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what ctrfs uses of /proc/PID/stat.
type Stat struct {
	// State is field 3: 'R', 'S', 'D', 'Z' (zombie), 'X' (dead), ...
	State byte
	// PPid is field 4, the parent's pid.
	PPid int
	// Flags is field 9, the kernel's PF_* flags of the task.
	Flags uint64
	// StartTime is field 22: clock ticks since boot at which the process
	// started.
	StartTime uint64
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(data)
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// StartTime returns field 22 of /proc/PID/stat.
func StartTime(pid int) (uint64, error) {
	st, err := ReadStat(pid)
	return st.StartTime, err
}

// ParseStat parses the content of /proc/PID/stat. The comm field (2) may
// hold spaces and parentheses, even ") (", so fields are counted after the
// last ')'.
func ParseStat(data []byte) (Stat, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return Stat{}, errors.New("no ')' after comm")
	}
	f := strings.Fields(string(data[i+1:])) // f[0] is field 3
	if len(f) < 22-2 {
		return Stat{}, errors.New("too few fields")
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("bad state %q", f[0])
	}
	ppid, err := strconv.Atoi(f[4-3])
	if err != nil {
		return Stat{}, fmt.Errorf("bad ppid %q", f[4-3])
	}
	flags, err := strconv.ParseUint(f[9-3], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("bad flags %q", f[9-3])
	}
	start, err := strconv.ParseUint(f[22-3], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("bad start time %q", f[22-3])
	}
	return Stat{State: f[0][0], PPid: ppid, Flags: flags, StartTime: start}, nil
}

// PFExiting is the PF_EXITING flag (Stat.Flags): set early in do_exit and
// never cleared, so a task that has it is exiting or a zombie.
const PFExiting = 0x4

// Alive reports whether pid runs and is not a zombie and, when start is
// not 0, is still the process that started at start.
func Alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := ReadStat(pid)
	if err != nil || st.State == 'Z' || st.State == 'X' {
		return false
	}
	return start == 0 || st.StartTime == start
}
