package runtime

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// launchShim starts a shim for one process in dir (which must exist) and
// waits for its report: the pid of the started process, or the runtime's
// error. The shim runs in a session of its own so it outlives the daemon.
//
// The report arrives on an inherited pipe, so there is no polling for a pid
// file; if the shim dies before reporting, the pipe's EOF says so.
func launchShim(ctx context.Context, shimPath, dir string, cfg proto.Config) (int, error) {
	if err := writeJSONAtomic(filepath.Join(dir, proto.ConfigFile), cfg); err != nil {
		return 0, err
	}
	if err := unix.Mkfifo(filepath.Join(dir, proto.ExitFifo), 0o600); err != nil {
		return 0, fmt.Errorf("make exit fifo: %w", err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		wr.Close()
		return 0, err
	}
	defer devnull.Close()
	cmd := exec.Command(shimPath, dir)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.ExtraFiles = []*os.File{wr} // proto.ReportFd
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	wr.Close()
	if err != nil {
		return 0, fmt.Errorf("start shim %s: %w", shimPath, err)
	}
	// Reap the shim whenever it ends; while the daemon lives it is our child.
	go cmd.Wait()

	type result struct {
		rep proto.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		line, err := bufio.NewReader(rd).ReadBytes('\n')
		if len(line) == 0 && err != nil {
			done <- result{err: fmt.Errorf("shim exited without a report%s", shimLogTail(dir))}
			return
		}
		var rep proto.Report
		if err := json.Unmarshal(line, &rep); err != nil {
			done <- result{err: fmt.Errorf("bad report from shim: %q", line)}
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
			return 0, Errorf(KindRuntime, "%s", oneLine(r.rep.Error))
		}
		if r.rep.Pid <= 0 {
			return 0, fmt.Errorf("shim reported no pid")
		}
		return r.rep.Pid, nil
	case <-ctx.Done():
		cmd.Process.Kill()
		return 0, fmt.Errorf("no report from the shim: %w", ctx.Err())
	}
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
