// Package proto is the on-disk protocol between the ctrfs daemon and
// ctrfs-shim. It is all the two share: file names inside a process's state
// directory and the JSON documents written there or sent over the report
// pipe. Neither side imports the other.
package proto

import (
	"encoding/json"
	"time"
)

// File names inside a process's state directory (<state>/<id>/<proc>/).
const (
	// ConfigFile is written by the daemon before it starts the shim: what
	// the shim is to run (Config).
	ConfigFile = "process.json"
	// PidFile is written by the shim once the process exists: "PID STARTTIME\n",
	// STARTTIME being field 22 of /proc/PID/stat, the guard against pid reuse.
	PidFile = "pid"
	// ShimPidFile is written by the shim at start: "PID STARTTIME\n" of the shim.
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
	StdoutLog = "stdout"
	StderrLog = "stderr"
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
	// LogMaxSize bounds each of the stdout and stderr logs, in bytes.
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
)

// Report is the one JSON line the shim writes to the report pipe: the pid
// of the started process, or the runtime's error.
type Report struct {
	Pid   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
}

// ExitStatus is the content of ExitStatusFile.
type ExitStatus struct {
	// Status follows the shell: the exit code, or 128+N for signal N.
	Status int `json:"status"`
	// Signal is N when the process was killed by signal N, else 0.
	Signal   int       `json:"signal,omitempty"`
	ExitedAt time.Time `json:"exited_at"`
}
