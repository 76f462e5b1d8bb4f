// Package proto is the on-disk protocol between the ctrfs daemon and
// ctrfs-shim. It is all the two share: file names inside a process's state
// directory and the JSON documents written there or sent over the report
// pipe. Neither side imports the other.
//
// The protocol has a version (Version), since the daemon may be upgraded
// under running shims, and a shim binary may be newer or older than the
// daemon that starts it. The daemon writes its version in Config; the shim
// answers in that version and refuses one it does not know; a daemon loads
// a process directory of a version it does not know as exited (unknown)
// rather than misread it. A document without a version is version 1.
package proto

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the version of the protocol this package describes.
//
//	1  (no version field) the first; a restore's CRIU errors are glued to
//	   Report.Error as "; restore.log: ERRORS".
//	2  Config.Version and Report.Version; CRIU's errors in Report.CRIU.
//
// Every other file is the same in both.
const Version = 2

// VersionOf returns the version a document says it has: v, or 1 for a
// document written before versions existed (v == 0).
func VersionOf(v int) int {
	if v == 0 {
		return 1
	}
	return v
}

// CheckVersion returns an error when a document of version v (0 meaning
// 1) is of a version this side cannot read.
func CheckVersion(v int) error {
	if v = VersionOf(v); v < 1 || v > Version {
		return fmt.Errorf("shim protocol version %d is unknown here (this side speaks 1 to %d)", v, Version)
	}
	return nil
}

// File names inside a process's state directory (<state>/<id>/<proc>/).
const (
	// ConfigFile is written by the daemon before it starts the shim: what
	// the shim is to run (Config).
	ConfigFile = "process.json"
	// PidFile is written by the shim once the process exists: "PID STARTTIME\n"
	// (MarshalPidFile), STARTTIME being field 22 of /proc/PID/stat, the
	// guard against pid reuse.
	PidFile = "pid"
	// ShimPidFile is written by the shim at start: the same of the shim.
	ShimPidFile = "shim.pid"
	// ExitFifo is a fifo made by the daemon; the shim opens it O_RDWR and
	// holds it until it exits, so the daemon's reader sees POLLHUP exactly
	// when the shim is gone. Once the process has exited, the shim writes
	// the ExitStatus JSON line into it (one write, under PIPE_BUF, so never
	// torn), then the ExitStatusFile, then closes it.
	ExitFifo = "exit"
	// ExitStatusFile is written by the shim (tmp + rename) after the process
	// has been reaped and its output drained, just before the shim exits.
	ExitStatusFile = "exitStatus"
	// StdoutLog and StderrLog hold the process's output. Each keeps at most
	// Config.LogMaxSize bytes: past the bound the shim punches the oldest
	// whole blocks out of the file (a hole), so file offsets stay the
	// offsets of the stream and the first byte still kept is where
	// lseek(SEEK_DATA) lands. With a terminal all output is in StdoutLog.
	// With Config.LogMaxSize below 0 a log has no bound and keeps every
	// byte while its filesystem has room to spare (the shim's disk guard).
	StdoutLog = "stdout"
	StderrLog = "stderr"
	// LostSuffix names, after a log's name, the file in which the shim
	// publishes how many bytes of that stream it never wrote (decimal, no
	// newline; absent while none): a log at its bound on a filesystem
	// without holes, held back by the disk guard, or after a write error.
	// The bytes punched out of a log's start are not counted there: they
	// are where lseek(SEEK_DATA) lands. Written atomically (tmp + rename),
	// at most every 100 ms while it changes, and at the end.
	LostSuffix = ".lost"
	// StdinFifo is a fifo made by the daemon when the process was given a
	// stdin (Config.Stdin). The shim holds it open (O_RDWR) and copies what
	// arrives to the process; the daemon writes into it. On close-stdin the
	// shim copies what is left, removes the fifo and closes it: a missing
	// fifo means stdin is closed.
	StdinFifo = "stdin"
	// ControlFifo is a fifo made by the daemon for every process. The shim
	// holds it open (O_RDWR) and reads Control messages, one JSON line each
	// (shorter than PIPE_BUF, so one write is one message).
	ControlFifo = "control"
	// ShimLog is the shim's own log, JSON lines.
	ShimLog = "shim.log"
	// RuntimeLog is the runtime's (runc's) --log file for the shim's calls.
	RuntimeLog = "runtime.log"
	// RestoreLog is CRIU's log of a restore (the runtime's --work-path is
	// the process directory, so it is written here).
	RestoreLog = "restore.log"
	// CRIUConfig is the CRIU configuration file of a restore with
	// Restore.CgroupRoot.
	CRIUConfig = "criu.conf"
	// RuntimePidFile is the runtime's own --pid-file: the bare pid, written
	// by the runtime. The shim reads it and publishes PidFile; the daemon
	// should read PidFile, which also carries the start time.
	RuntimePidFile = "runtime.pid"
)

// ReportFd is the file descriptor on which the shim finds the write end of
// the report pipe (the first of exec.Cmd.ExtraFiles).
const ReportFd = 3

// Action says what the shim asks the runtime to do.
type Action string

const (
	// ActionCreate runs `runtime create`: the container waits for `start`.
	ActionCreate Action = "create"
	// ActionRun runs `runtime run --detach`: created and started in one call.
	ActionRun Action = "run"
	// ActionRestore runs `runtime restore --detach` from Config.Restore: the
	// container comes back running from a checkpoint (CRIU images).
	ActionRestore Action = "restore"
	// ActionExec runs `runtime exec --detach --process SPEC`: one more
	// process (Config.Spec) in the running container Config.ID.
	ActionExec Action = "exec"
)

// Config is what the daemon asks a shim to run (ConfigFile).
type Config struct {
	// Version is the protocol version the daemon speaks (0: version 1).
	// The shim answers in it, and refuses one it does not know.
	Version int `json:"version,omitempty"`
	// ID is the container id (already validated by the daemon).
	ID string `json:"id"`
	// Process is the process name inside the container ("init" for init).
	Process string `json:"process"`
	Action  Action `json:"action"`
	// Bundle is the absolute path of the OCI bundle.
	Bundle string `json:"bundle"`
	// Runtime is the absolute path of the OCI runtime binary.
	Runtime string `json:"runtime"`
	// RuntimeRoot is the runtime's --root (<state>/runc).
	RuntimeRoot string `json:"runtime_root"`
	// RuntimeArgs are extra global runtime flags, placed before the command.
	RuntimeArgs []string `json:"runtime_args,omitempty"`
	NoPivot     bool     `json:"no_pivot,omitempty"`
	// LogMaxSize bounds each of the stdout and stderr logs, in bytes; 0
	// means the shim's default (8 MiB), below 0 no bound (see StdoutLog).
	LogMaxSize int64 `json:"log_max_size"`
	// Restore is the checkpoint to restore from, for ActionRestore.
	Restore *Restore `json:"restore,omitempty"`
	// Spec is the OCI process spec of an exec (ActionExec only).
	Spec json.RawMessage `json:"spec,omitempty"`
	// Stdin says StdinFifo exists and feeds the process's stdin; without
	// it the process's stdin is /dev/null.
	Stdin bool `json:"stdin,omitempty"`
	// Terminal says the process runs on a terminal (its spec's
	// process.terminal): the shim takes the console's master end through
	// the runtime's --console-socket and copies it to StdoutLog.
	Terminal bool `json:"terminal,omitempty"`
	// LogPath, when set, is an absolute path where the shim writes the
	// process's output a second time in the CRI log format
	// ("TIMESTAMP STREAM P|F LINE", lines over 16 KiB split into P
	// records), opened again on ControlReopenLog.
	LogPath string `json:"log_path,omitempty"`
}

// Restore says where a checkpoint is and how it was made: a restore must
// be given the options the checkpoint was taken with.
type Restore struct {
	// Path is the checkpoint's directory, which holds the CRIU images.
	Path        string   `json:"path"`
	TCP         bool     `json:"tcp,omitempty"`
	UnixSockets bool     `json:"unix_sockets,omitempty"`
	Shell       bool     `json:"shell,omitempty"`
	EmptyNS     []string `json:"empty_ns,omitempty"`
	// CgroupsMode is the runtime's --manage-cgroups-mode ("" for its
	// default): "ignore" where it has it, so that CRIU leaves the
	// restored processes in the cgroup the runtime made.
	CgroupsMode string `json:"cgroups_mode,omitempty"`
	// CgroupRoot, when set, is the container's cgroup v2 group, given to
	// CRIU as its cgroup-root (in a configuration file named by
	// CRIU_CONFIG_FILE), for a runtime that does not give it itself (runc
	// before 1.2 on cgroup v2): the restored processes, and their cgroup
	// namespace, then land there and not in the group they were
	// checkpointed from.
	CgroupRoot string `json:"cgroup_root,omitempty"`
}

// Control is one message on ControlFifo.
type Control struct {
	Op ControlOp `json:"op"`
	// Cols and Rows are the new window size (ControlResize).
	Cols uint16 `json:"cols,omitempty"`
	Rows uint16 `json:"rows,omitempty"`
}

// ControlOp names what a Control message asks.
type ControlOp string

const (
	// ControlCloseStdin: deliver what is in StdinFifo, then end the
	// process's input (EOF; on a terminal, the EOF character, as Ctrl-D).
	ControlCloseStdin ControlOp = "close-stdin"
	// ControlResize sets the terminal's window size (SIGWINCH follows).
	ControlResize ControlOp = "resize"
	// ControlReopenLog opens Config.LogPath again (after a rotation moved
	// the file away).
	ControlReopenLog ControlOp = "reopen-log"
)

// Report is the one JSON line the shim writes to the report pipe: the pid
// of the started process, or the runtime's error (MarshalReport,
// ParseReport).
type Report struct {
	// Version is the protocol version of the report (0: version 1).
	Version int    `json:"version,omitempty"`
	Pid     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
	// CRIU holds the errors of RestoreLog when a restore failed, on one
	// line ("" when it has none). Version 1 glued them to Error.
	CRIU string `json:"criu,omitempty"`
}

// criuSep is how version 1 glued Report.CRIU to Report.Error.
const criuSep = "; " + RestoreLog + ": "

// MarshalReport returns r as the report line of protocol version v (the
// version of the daemon's Config; 0 meaning 1), newline included.
func MarshalReport(r Report, v int) []byte {
	r.Version = VersionOf(v)
	if r.Version == 1 {
		if r.CRIU != "" {
			r.Error += criuSep + r.CRIU
		}
		r.Version, r.CRIU = 0, ""
	}
	data, err := json.Marshal(r)
	if err != nil {
		panic(err) // ints and strings always marshal
	}
	return append(data, '\n')
}

// ParseReport parses a report line of any version this package knows.
func ParseReport(line []byte) (Report, error) {
	var r Report
	if err := json.Unmarshal(line, &r); err != nil {
		return Report{}, fmt.Errorf("bad report %q: %v", line, err)
	}
	if err := CheckVersion(r.Version); err != nil {
		return Report{}, fmt.Errorf("report %q: %v", line, err)
	}
	if VersionOf(r.Version) == 1 {
		r.Error, r.CRIU, _ = strings.Cut(r.Error, criuSep)
	}
	r.Version = VersionOf(r.Version)
	return r, nil
}

// MarshalPidFile returns the content of PidFile or ShimPidFile.
func MarshalPidFile(pid int, start uint64) []byte {
	return fmt.Appendf(nil, "%d %d\n", pid, start)
}

// ParsePidFile parses the content of PidFile or ShimPidFile.
func ParsePidFile(data []byte) (pid int, start uint64, err error) {
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("malformed pid file %q", data)
	}
	if pid, err = strconv.Atoi(f[0]); err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("malformed pid in pid file %q", data)
	}
	if start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("malformed start time in pid file %q", data)
	}
	return pid, start, nil
}

// ExitStatus is the content of ExitStatusFile.
type ExitStatus struct {
	// Status follows the shell: the exit code, or 128+N for signal N.
	Status int `json:"status"`
	// Signal is N when the process was killed by signal N, else 0.
	Signal   int       `json:"signal,omitempty"`
	ExitedAt time.Time `json:"exited_at"`
}
