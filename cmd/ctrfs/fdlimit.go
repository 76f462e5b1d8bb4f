package main

import (
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// raiseFileLimit makes the daemon's soft limit of open files its hard
// limit: every open file of the mount that holds a file descriptor (and
// every container's exit fifo, cgroup files kept open) counts against it.
// Go (1.19 and later) does this already before main, and gives the
// programs it starts the limit it found (syscall.StartProcess), so shims,
// runc and containers keep the limit the daemon was started with: done
// here too in case it did not, through prlimit(2), which leaves Go's
// record of that original limit alone (syscall.Setrlimit would drop it,
// and every container would inherit the raised limit).
func raiseFileLimit(log logrus.FieldLogger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.WithError(err).Warn("cannot read the open files limit")
		return
	}
	if lim.Cur < lim.Max {
		raised := unix.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := unix.Prlimit(0, unix.RLIMIT_NOFILE, &raised, nil); err != nil {
			log.WithError(err).Warn("cannot raise the open files limit")
		} else {
			lim = raised
		}
	}
	log.WithField("nofile", lim.Cur).Debug("open files limit")
}
