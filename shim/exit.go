package shim

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/ctrfs/ctrfs/internal/atomicfile"
	"github.com/ctrfs/ctrfs/internal/procfs"
	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// watchProcess subscribes to the exit of the started process, publishes
// its pid file and reports its pid to the daemon. early is its exit when
// it was gone before the runtime returned.
func (s *shim) watchProcess() (exits <-chan Exit, early *Exit, err error) {
	// A process that is already gone was reaped with its start time, read
	// while it was a zombie. Its pid may even name another process by now:
	// one that is not our child is not ours.
	start, serr := childStartTime(s.pid)
	exits = s.reaper.Watch(s.pid, start)
	if serr != nil {
		select {
		case e := <-exits:
			start, early = e.StartTime, &e
			s.log.WithField("pid", s.pid).Info("process exited before the runtime returned")
		case <-time.After(drainTimeout):
			s.finishLogs()
			return nil, nil, fmt.Errorf("shim: process %d: %v", s.pid, serr)
		}
	}
	if err := atomicfile.WriteFile(proto.PidFile, proto.MarshalPidFile(s.pid, start), 0o644); err != nil {
		// The daemon cannot adopt a process without its pid file: say why.
		// The process exists all the same, so it is still supervised.
		msg := fmt.Sprintf("shim: write %s: %v", proto.PidFile, err)
		s.log.WithField("pid", s.pid).Error(msg)
		s.report.send(s.log, proto.Report{Error: msg})
	} else {
		s.log.WithField("pid", s.pid).Info("process started")
		s.report.send(s.log, proto.Report{Pid: s.pid})
	}
	return exits, early, nil
}

// childStartTime is the start time of pid, provided pid is a child of the
// shim (as the runtime leaves the process it started: the shim is their
// subreaper); 0 and an error otherwise.
func childStartTime(pid int) (uint64, error) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0, err
	}
	if st.PPid != os.Getpid() {
		return 0, fmt.Errorf("pid %d is not the shim's child (parent %d)", pid, st.PPid)
	}
	return st.StartTime, nil
}

// waitExit waits for the process's exit, unless it came early.
func (s *shim) waitExit(exits <-chan Exit, early *Exit) Exit {
	if early != nil {
		return *early
	}
	awaitExit(s.reaper, s.pid)
	return <-exits
}

// recordExit hands the exit status to the daemon and to the directory, and
// returns the shim's exit code.
func (s *shim) recordExit(e Exit) int {
	// The status goes through the exit fifo before anything else: a running
	// daemon records the exit from it at once (every exit watcher waits on
	// this), and a log line or the file, which ext4 may take a millisecond
	// to create, would delay it. The daemon counts the process Done, and
	// its output complete, only once the shim has closed the fifo.
	st := proto.ExitStatus{Status: e.Status, Signal: e.Signal, ExitedAt: e.Time}
	data, err := json.Marshal(st)
	if err != nil {
		panic(err) // ints and a time always marshal
	}
	data = append(data, '\n')
	// One write under PIPE_BUF, into a fifo the shim holds open for
	// reading too: it cannot block or be torn. Should it fail, the daemon
	// still learns the exit, from the file, at the fifo's POLLHUP.
	if _, err := unix.Write(s.exitFifo, data); err != nil {
		s.log.WithError(err).Warn("write the exit status into the exit fifo; the daemon reads the file instead")
	}
	s.log.WithFields(logrus.Fields{"pid": s.pid, "status": e.Status, "signal": e.Signal}).Info("process exited")
	s.finishLogs()
	// The file, for a daemon that is down now.
	if err := atomicfile.WriteFile(proto.ExitStatusFile, data, 0o644); err != nil {
		s.log.WithError(err).Error("write exit status")
		return 1
	}
	// Tell the daemon now, not once the kernel has torn the shim down:
	// this is on the path of every exit watcher.
	if err := unix.Close(s.exitFifo); err != nil {
		// The fd is released all the same (close(2) never leaves it open
		// on Linux), and the daemon's POLLHUP follows.
		s.log.WithError(err).Warn("close the exit fifo")
	}
	s.log.Info("exit status written; shim exits")
	return 0
}
