package runtime

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procStat returns field 3 (state) and field 22 (start time, in clock ticks
// since boot) of /proc/PID/stat. The start time tells a process from a later
// one that reused its pid.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// comm (field 2) may hold spaces and parentheses: parse after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	// fields[0] is field 3 (state); field 22 is fields[19].
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(fields[19], 10, 64)
	return fields[0][0], start, err
}

// alive reports whether pid is still the process that started at start,
// and not a zombie.
func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	state, s, err := procStat(pid)
	if err != nil {
		return false
	}
	return s == start && state != 'Z' && state != 'X'
}

// parsePidFile parses "PID STARTTIME\n" (the shim's pid files).
func parsePidFile(b []byte) (pid int, start uint64, err error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("malformed pid file %q", b)
	}
	if pid, err = strconv.Atoi(f[0]); err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("malformed pid in pid file %q", b)
	}
	if start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("malformed start time in pid file %q", b)
	}
	return pid, start, nil
}
