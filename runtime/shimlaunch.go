package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// shimLauncher starts shims. It keeps one spare shim started ahead of need
// (`ctrfs-shim --wait`), so a create does not wait for an exec and a Go
// start-up; the spare learns its directory from a line on its stdin.
type shimLauncher struct {
	path string
	mon  *monitor // reaps the shims this daemon starts

	mu        sync.Mutex // protects all following fields; never held across a fork
	spare     *startedShim
	refilling bool // a refill is starting a spare
}

// startedShim is a shim process waiting for its directory.
type startedShim struct {
	pid    int
	dirW   *os.File // the shim's stdin: its directory, one line
	report *os.File // read end of the report pipe (the shim's fd 3)
}

// start execs a waiting shim in a session of its own, so it outlives the
// daemon.
func (l *shimLauncher) start() (*startedShim, error) {
	dirR, dirW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		dirR.Close()
		dirW.Close()
		return nil, err
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		dirR.Close()
		dirW.Close()
		repR.Close()
		repW.Close()
		return nil, err
	}
	cmd := exec.Command(l.path, "--wait")
	cmd.Dir = "/"
	cmd.Stdin, cmd.Stdout, cmd.Stderr = dirR, devnull, devnull
	cmd.ExtraFiles = []*os.File{repW} // proto.ReportFd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	dirR.Close()
	repW.Close()
	devnull.Close()
	if err != nil {
		dirW.Close()
		repR.Close()
		return nil, fmt.Errorf("start shim %s: %w", l.path, err)
	}
	l.reapLater(cmd)
	return &startedShim{pid: cmd.Process.Pid, dirW: dirW, report: repR}, nil
}

// reapLater has the monitor reap the shim whenever it ends: while the
// daemon lives it is our child. Only if that cannot be set up does a
// goroutine wait for it, holding a thread until then.
func (l *shimLauncher) reapLater(cmd *exec.Cmd) {
	// The shim is our child and nobody reaps it meanwhile, so its pid
	// cannot name another process yet.
	pidfd, err := unix.PidfdOpen(cmd.Process.Pid, 0) // close-on-exec
	if err == nil {
		err = l.mon.reapChild(pidfd) // closes pidfd on failure
	}
	if err != nil {
		go cmd.Wait()
		return
	}
	cmd.Process.Release() // Go's own handle (a pidfd): not needed any more
}

// take returns the spare, or a new shim if there is none.
func (l *shimLauncher) take() (*startedShim, error) {
	l.mu.Lock()
	s := l.spare
	l.spare = nil
	l.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return l.start()
}

// refill starts a spare if there is none. The fork happens outside the
// lock, so a take never waits for it: it starts a shim of its own instead.
func (l *shimLauncher) refill() {
	l.mu.Lock()
	if l.spare != nil || l.refilling {
		l.mu.Unlock()
		return
	}
	l.refilling = true
	l.mu.Unlock()
	// A failed start is left for the next launch, which starts a shim
	// itself and reports the error to its caller.
	s, err := l.start()
	l.mu.Lock()
	l.refilling = false
	if err == nil {
		l.spare = s
	}
	l.mu.Unlock()
}

// launch starts a shim for one process in dir (which must exist) and waits
// for its report: the pid of the started process, or the runtime's error.
// The report arrives on an inherited pipe, so there is no polling for a pid
// file; if the shim dies before reporting, the pipe's EOF says so.
func (l *shimLauncher) launch(ctx context.Context, dir string, cfg proto.Config) (int, error) {
	cfg.Version = proto.Version
	if err := writeJSONAtomic(filepath.Join(dir, proto.ConfigFile), cfg); err != nil {
		return 0, err
	}
	fifos := []string{proto.ExitFifo, proto.ControlFifo}
	if cfg.Stdin {
		fifos = append(fifos, proto.StdinFifo)
	}
	for _, name := range fifos {
		if err := unix.Mkfifo(filepath.Join(dir, name), 0o600); err != nil {
			return 0, fmt.Errorf("make %s fifo: %w", name, err)
		}
	}
	s, err := l.take()
	if err != nil {
		return 0, err
	}
	if _, err := s.dirW.WriteString(dir + "\n"); err != nil {
		// The spare died while it waited (EPIPE): use a fresh one.
		s.dirW.Close()
		s.report.Close()
		if s, err = l.start(); err != nil {
			return 0, err
		}
		if _, err := s.dirW.WriteString(dir + "\n"); err != nil {
			s.dirW.Close()
			s.report.Close()
			return 0, fmt.Errorf("hand the directory to the shim: %w", err)
		}
	}
	s.dirW.Close()
	defer s.report.Close()
	// The next spare starts once this create is done, not competing with it.
	defer func() { go l.refill() }()

	type result struct {
		rep proto.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(s.report).ReadBytes('\n')
		if len(line) == 0 && err != nil {
			done <- result{err: fmt.Errorf("shim exited without a report%s", shimLogTail(dir))}
			return
		}
		rep, err := proto.ParseReport(line)
		if err != nil {
			done <- result{err: fmt.Errorf("shim: %v", err)}
			return
		}
		done <- result{rep: rep}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return 0, r.err
		}
		if r.rep.Error != "" {
			return 0, reportFailure(r.rep)
		}
		if r.rep.Pid <= 0 {
			return 0, fmt.Errorf("shim reported no pid")
		}
		return r.rep.Pid, nil
	case <-ctx.Done():
		// The shim leads a process group: take runc and its hooks with it.
		syscall.Kill(-s.pid, syscall.SIGKILL)
		return 0, fmt.Errorf("timed out waiting for the runtime (a hook that hangs?): %w", ctx.Err())
	}
}

// reportError is the runtime's failure as the shim reported it: the
// runtime's message (an *Error of KindRuntime) and, for a restore, the
// errors of CRIU's log apart.
type reportError struct {
	err  error
	criu string
}

func (e *reportError) Error() string { return e.err.Error() }
func (e *reportError) Unwrap() error { return e.err }

// reportFailure is the error of a report that carries one.
func reportFailure(rep proto.Report) error {
	return &reportError{err: Errorf(KindRuntime, "%s", oneLine(rep.Error)), criu: oneLine(rep.CRIU)}
}

// restoreFailure splits an error of launch into the runtime's message and
// the errors of CRIU's log ("" when there are none).
func restoreFailure(err error) (msg, criu string) {
	var re *reportError
	if errors.As(err, &re) {
		return re.err.Error(), re.criu
	}
	return err.Error(), ""
}

// shimLogTail returns ": " and the last line of the shim's own log, to
// explain a shim that died early.
func shimLogTail(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, proto.ShimLog))
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := lines[len(lines)-1]
	var entry struct {
		Msg   string `json:"msg"`
		Error string `json:"error"`
	}
	if json.Unmarshal([]byte(last), &entry) == nil && entry.Msg != "" {
		last = entry.Msg
		if entry.Error != "" {
			last += ": " + entry.Error
		}
	}
	return ": " + oneLine(last)
}
