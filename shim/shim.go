// Package shim is ctrfs-shim: one per container process, it runs the OCI
// runtime, tells the daemon the pid (or the runtime's error), copies the
// process's output (pipes or a terminal) into bounded logs, feeds its stdin
// from a fifo, carries out close-stdin and resize, reaps it and writes its
// exit status.
// It shares nothing with the daemon but the files of package proto, so it
// outlives the daemon.
package shim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	runc "github.com/containerd/go-runc"
	"github.com/ctrfs/ctrfs/internal/criulog"
	"github.com/ctrfs/ctrfs/shim/proto"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// drainTimeout bounds the wait for the output pipes' EOF after the exit.
const drainTimeout = 2 * time.Second

// defaultLogMaxSize guards against a config without a bound (the daemon
// always sets one; 8 MiB is its default too).
const defaultLogMaxSize = 8 << 20

// Main runs the shim in the process state directory dir and returns the
// exit code: 0 once the exit status is written, 1 on failure.
func Main(dir string) int {
	return run(prepare(), dir)
}

// Spare is a shim started ahead of need: it does all it can before it knows
// its directory, then waits for the directory on stdin (see WaitForDir).
func Spare(stdin *os.File) int {
	p := prepare()
	dir, ok := WaitForDir(stdin)
	if !ok {
		return 0
	}
	return run(p, dir)
}

// prepared is the part of the shim's set-up that does not depend on its
// directory, done before a spare shim waits.
type prepared struct {
	report    *os.File
	start     uint64 // the shim's own start time, for shim.pid
	startErr  error
	reaperErr error
	reaper    *Reaper
}

func prepare() *prepared {
	// Claim fd 3 before anything is opened: if it is missing, the first
	// file we open would get that number and receive the report.
	p := &prepared{report: reportPipe()}
	p.start, p.startErr = procStartTime(os.Getpid())
	// As subreaper the shim becomes the parent of the container's init once
	// runc is done, so it can wait for it.
	p.reaperErr = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	// Catch, rather than ignore, the signals a session or a dead daemon may
	// send: an ignored signal stays ignored across exec, in runc and in the
	// container's processes; a caught one is reset to default there.
	signal.Notify(make(chan os.Signal, 1), unix.SIGHUP, unix.SIGINT, unix.SIGPIPE)
	p.reaper = NewReaper()
	runc.Monitor = p.reaper
	// Load the local time zone now, not at the first log line.
	_ = time.Now().Format(time.RFC3339Nano)
	return p
}

func run(p *prepared, dir string) int {
	report := p.report
	fail := func(log *logrus.Entry, format string, args ...any) int {
		msg := fmt.Sprintf(format, args...)
		if log != nil {
			log.Error(msg)
		}
		sendReport(log, report, proto.Report{Error: msg})
		return 1
	}

	abs, err := filepath.Abs(dir)
	if err == nil {
		err = os.Chdir(abs)
	}
	if err != nil {
		return fail(nil, "shim: %v", err)
	}
	// Hold the exit fifo first: from here on any death of the shim, even a
	// crash, shows as POLLHUP on the daemon's side. A raw fd has no
	// finalizer, so it stays open until the process ends or closes it.
	exitFifo, err := unix.Open(proto.ExitFifo, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(nil, "shim: open exit fifo: %v", err)
	}
	logf, err := os.OpenFile(proto.ShimLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fail(nil, "shim: open %s: %v", proto.ShimLog, err)
	}
	logger := logrus.New()
	logger.SetOutput(logf)
	logger.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	log := logrus.NewEntry(logger)

	err = p.startErr
	if err == nil {
		err = writeAtomic(proto.ShimPidFile, fmt.Appendf(nil, "%d %d\n", os.Getpid(), p.start))
	}
	if err != nil {
		return fail(log, "shim: write %s: %v", proto.ShimPidFile, err)
	}
	if p.reaperErr != nil {
		return fail(log, "shim: set child subreaper: %v", p.reaperErr)
	}
	reaper := p.reaper

	var cfg proto.Config
	if err := readJSON(proto.ConfigFile, &cfg); err != nil {
		return fail(log, "shim: read %s: %v", proto.ConfigFile, err)
	}
	if err := checkConfig(&cfg); err != nil {
		return fail(log, "shim: %s: %v", proto.ConfigFile, err)
	}
	log = log.WithFields(logrus.Fields{"id": cfg.ID, "process": cfg.Process})
	log.WithFields(logrus.Fields{"action": cfg.Action, "bundle": cfg.Bundle, "runtime": cfg.Runtime,
		"stdin": cfg.Stdin, "terminal": cfg.Terminal}).Info("shim started")

	pio, err := newStdio(cfg.Stdin, cfg.Terminal)
	if err != nil {
		return fail(log, "shim: %v", err)
	}
	// With a terminal the stdout log exists from the start, and is fed
	// once the runtime has handed over the terminal.
	var stdout *logCopy
	if cfg.Terminal {
		stdout, err = openLog(proto.StdoutLog, cfg.LogMaxSize)
	} else {
		stdout, err = startLogCopy(pio.outR, proto.StdoutLog, cfg.LogMaxSize)
	}
	if err != nil {
		return fail(log, "shim: %v", err)
	}
	stderr, err := startLogCopy(pio.errR, proto.StderrLog, cfg.LogMaxSize)
	if err != nil {
		return fail(log, "shim: %v", err)
	}
	finishLogs := func() {
		deadline := time.Now().Add(drainTimeout)
		for name, c := range map[string]*logCopy{proto.StdoutLog: stdout, proto.StderrLog: stderr} {
			trimmed, dropped, err := c.finish(deadline)
			l := log.WithField("log", name)
			if err != nil {
				l.WithError(err).Warn("output log")
			}
			if trimmed > 0 {
				l.WithField("trimmed", trimmed).Info("output log at its bound: oldest bytes let go")
			}
			if dropped > 0 {
				l.WithField("dropped", dropped).Warn("output log full: bytes dropped")
			}
		}
	}
	// The fifos are opened before the runtime runs: a process is never
	// started that could not be fed or controlled.
	var stdinFifo, control *os.File
	if cfg.Stdin {
		if stdinFifo, err = openStdinFifo(); err != nil {
			finishLogs()
			return fail(log, "shim: open %s: %v", proto.StdinFifo, err)
		}
	}
	if control, err = openControlFifo(); err != nil {
		// A daemon that made none has no use for it (a shim started by hand).
		log.WithError(err).Warn("no control fifo: close-stdin and resize will not work")
		control = nil
	}
	var sock *consoleSocket
	if cfg.Terminal {
		if sock, err = newConsoleSocket(); err != nil {
			finishLogs()
			return fail(log, "shim: console socket: %v", err)
		}
	}

	pid, err := runRuntime(&cfg, abs, pio, sock)
	pio.CloseAfterStart() // else our copies of the write ends keep EOF away
	var console *os.File
	if err == nil && sock != nil {
		if console, err = sock.master(drainTimeout); err != nil {
			err = fmt.Errorf("shim: receive the terminal from the runtime: %v", err)
			// The process runs on a terminal nobody holds: end it.
			unix.Kill(pid, unix.SIGKILL)
		}
	}
	if sock != nil {
		sock.Close()
	}
	if err != nil {
		finishLogs()
		return fail(log, "%s", err.Error())
	}
	if console != nil {
		startSize(log, console)
		stdout.copyFrom(console)
	}
	var stdin *stdinCopy
	if stdinFifo != nil {
		dst := pio.stdinW
		if console != nil {
			dst = console
		}
		stdin = startStdinCopy(stdinFifo, dst, console != nil)
	}
	if control != nil {
		go serveControl(log, control, stdin, console)
	}

	// A process that is already gone was reaped with its start time, read
	// while it was a zombie. Its pid may even name another process by now:
	// one that is not our child is not ours.
	start, serr := childStartTime(pid)
	exits := reaper.Watch(pid, start)
	var early *Exit
	if serr != nil {
		select {
		case e := <-exits:
			start, early = e.StartTime, &e
			log.WithField("pid", pid).Info("process exited before the runtime returned")
		case <-time.After(drainTimeout):
			finishLogs()
			return fail(log, "shim: process %d: %v", pid, serr)
		}
	}
	if err := writeAtomic(proto.PidFile, fmt.Appendf(nil, "%d %d\n", pid, start)); err != nil {
		// The daemon cannot adopt a process without its pid file: say why.
		// The process exists all the same, so it is still supervised.
		msg := fmt.Sprintf("shim: write %s: %v", proto.PidFile, err)
		log.WithField("pid", pid).Error(msg)
		sendReport(log, report, proto.Report{Error: msg})
	} else {
		log.WithField("pid", pid).Info("process started")
		sendReport(log, report, proto.Report{Pid: pid})
	}

	e := early
	if e == nil {
		awaitExit(reaper, pid)
		x := <-exits
		e = &x
	}
	// The status goes through the exit fifo before anything else: a running
	// daemon records the exit from it at once (every exit watcher waits on
	// this), and a log line or the file, which ext4 may take a millisecond
	// to create, would delay it. The daemon counts the process Done, and
	// its output complete, only once the shim has closed the fifo.
	st := proto.ExitStatus{Status: e.Status, Signal: e.Signal, ExitedAt: e.Time}
	data, _ := json.Marshal(st)
	data = append(data, '\n')
	unix.Write(exitFifo, data)
	log.WithFields(logrus.Fields{"pid": pid, "status": e.Status, "signal": e.Signal}).Info("process exited")
	finishLogs()
	// The file, for a daemon that is down now.
	if err := writeAtomic(proto.ExitStatusFile, data); err != nil {
		log.WithError(err).Error("write exit status")
		return 1
	}
	// Tell the daemon now, not once the kernel has torn the shim down:
	// this is on the path of every exit watcher.
	unix.Close(exitFifo)
	log.Info("exit status written; shim exits")
	return 0
}

// checkConfig checks what the daemon asked and fills in defaults.
func checkConfig(cfg *proto.Config) error {
	if cfg.ID == "" || cfg.Bundle == "" || cfg.Runtime == "" {
		return errors.New("id, bundle and runtime are required")
	}
	switch cfg.Action {
	case proto.ActionCreate, proto.ActionRun:
	case proto.ActionRestore:
		if cfg.Restore == nil || cfg.Restore.Path == "" {
			return errors.New("restore without a checkpoint path")
		}
	case proto.ActionExec:
		if len(cfg.Spec) == 0 {
			return errors.New("exec without a process spec")
		}
	default:
		return fmt.Errorf("unknown action %q", cfg.Action)
	}
	if cfg.LogMaxSize <= 0 {
		cfg.LogMaxSize = defaultLogMaxSize
	}
	return nil
}

// runRuntime asks the runtime to create, run, restore or exec the process
// and returns its pid. Its error is the runtime's own message where there is
// one. sock, when not nil, receives the process's terminal.
func runRuntime(cfg *proto.Config, dir string, io *stdio, sock *consoleSocket) (int, error) {
	logPath := filepath.Join(dir, proto.RuntimeLog)
	var logFrom int64 // only this call's lines name its error
	if st, err := os.Stat(logPath); err == nil {
		logFrom = st.Size()
	}
	pidPath := filepath.Join(dir, proto.RuntimePidFile)
	os.Remove(pidPath) // never read a stale one
	r := &runc.Runc{
		Command:   cfg.Runtime,
		Root:      cfg.RuntimeRoot,
		Log:       logPath,
		LogFormat: runc.JSON,
		ExtraArgs: cfg.RuntimeArgs,
	}
	var cs runc.ConsoleSocket
	if sock != nil {
		cs = sock
	}
	var err error
	switch cfg.Action {
	case proto.ActionExec:
		var spec specs.Process
		if err := json.Unmarshal(cfg.Spec, &spec); err != nil {
			return 0, fmt.Errorf("shim: process spec: %v", err)
		}
		err = r.Exec(context.Background(), cfg.ID, spec, &runc.ExecOpts{
			IO: io, PidFile: pidPath, Detach: true, ConsoleSocket: cs,
		})
	case proto.ActionRun:
		opts := &runc.CreateOpts{IO: io, PidFile: pidPath, NoPivot: cfg.NoPivot, ConsoleSocket: cs, Detach: true}
		_, err = r.Run(context.Background(), cfg.ID, cfg.Bundle, opts)
	case proto.ActionRestore:
		// CRIU's work files and restore.log go to the process directory,
		// not into the checkpoint, which may be restored again.
		os.Remove(filepath.Join(dir, proto.RestoreLog))
		_, err = r.Restore(context.Background(), cfg.ID, cfg.Bundle, &runc.RestoreOpts{
			CheckpointOpts: runc.CheckpointOpts{
				ImagePath: cfg.Restore.Path, WorkDir: dir,
				AllowOpenTCP: cfg.Restore.TCP, AllowExternalUnixSockets: cfg.Restore.UnixSockets,
				AllowTerminal: cfg.Restore.Shell, EmptyNamespaces: cfg.Restore.EmptyNS,
			},
			IO: io, Detach: true, PidFile: pidPath, NoPivot: cfg.NoPivot, ConsoleSocket: cs,
			NoSubreaper: true, // the shim is the subreaper; runc exits at once
		})
	default:
		opts := &runc.CreateOpts{IO: io, PidFile: pidPath, NoPivot: cfg.NoPivot, ConsoleSocket: cs}
		err = r.Create(context.Background(), cfg.ID, cfg.Bundle, opts)
	}
	if err != nil {
		msg := runtimeError(logPath, logFrom)
		if msg == "" {
			msg = oneLine(err.Error())
		}
		if cfg.Action == proto.ActionRestore {
			if crit := criulog.FileErrors(filepath.Join(dir, proto.RestoreLog)); crit != "" {
				msg += "; " + proto.RestoreLog + ": " + crit
			}
		}
		return 0, errors.New(msg)
	}
	data, err := os.ReadFile(pidPath)
	if err != nil {
		return 0, fmt.Errorf("shim: runtime pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("shim: runtime pid file: bad pid %q", data)
	}
	return pid, nil
}

// runtimeError returns the last error message runc logged (JSON lines) from
// offset on, on one line, or "".
func runtimeError(path string, offset int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	var msg string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		var l struct{ Level, Msg string }
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Level == "error" && l.Msg != "" {
			msg = l.Msg
		}
	}
	return oneLine(msg)
}

func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s))
}

// reportPipe returns the inherited report pipe, or nil when fd 3 is not
// open (the shim was started by hand).
func reportPipe() *os.File {
	if _, err := unix.FcntlInt(proto.ReportFd, unix.F_GETFD, 0); err != nil {
		return nil
	}
	unix.CloseOnExec(proto.ReportFd) // runc and the container must not hold it
	return os.NewFile(proto.ReportFd, "report")
}

// sendReport writes the one report line and closes the pipe. A daemon that
// died meanwhile (EPIPE) is no reason to stop: it finds us from the files.
func sendReport(log *logrus.Entry, f *os.File, r proto.Report) {
	if f == nil {
		return
	}
	data, _ := json.Marshal(r)
	_, err := f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil && log != nil {
		log.WithError(err).Warn("report to daemon")
	}
}

// procStartTime returns field 22 of /proc/PID/stat: the process's start
// time in clock ticks since boot, which tells it from a later one with the
// same pid.
func procStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStartTime(data)
}

// childStartTime is procStartTime of pid, provided pid is a child of the
// shim (as the runtime leaves the process it started: the shim is their
// subreaper); 0 and an error otherwise.
func childStartTime(pid int) (uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	if ppid, err := parseStatField(data, 4); err != nil || ppid != uint64(os.Getpid()) {
		return 0, fmt.Errorf("pid %d is not the shim's child (parent %d, %v)", pid, ppid, err)
	}
	return parseStartTime(data)
}

// parseStartTime parses the content of /proc/PID/stat. The comm field (2)
// may hold spaces and parens, so fields are counted after the last ')'.
func parseStartTime(stat []byte) (uint64, error) {
	return parseStatField(stat, 22)
}

// parseStatField returns field n (1-based, n >= 3) of /proc/PID/stat.
func parseStatField(stat []byte, n int) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')'")
	}
	f := strings.Fields(string(stat[i+1:])) // f[0] is field 3
	if len(f) <= n-3 {
		return 0, errors.New("stat: too few fields")
	}
	return strconv.ParseUint(f[n-3], 10, 64)
}

// writeAtomic writes a file in the current directory so that a reader sees
// the whole content or nothing: tmp file, rename. No fsync: the rename
// guards against a crash of the shim or the daemon; only a kernel crash
// could lose it, and no container outlives that.
func writeAtomic(name string, data []byte) error {
	tmp := "." + name + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func readJSON(name string, v any) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
