package main

import (
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// logFileLimit logs the daemon's limit of open files. Every open file of
// the mount that holds a file descriptor (and every container's exit
// fifo, the cgroup files kept open) counts against it. The daemon does
// not set it: Go (1.19 and later) raises the soft limit to the hard one
// less one before main, and gives the programs it starts (shims, and so
// runc and the containers) the limit the daemon was started with, but only
// while the limit is still the one it set: a daemon that raised it to the
// hard limit itself would hand that to every container.
func logFileLimit(log logrus.FieldLogger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		log.WithError(err).Warn("cannot read the open files limit")
		return
	}
	log.WithFields(logrus.Fields{"soft": lim.Cur, "hard": lim.Max}).Debug("open files limit")
}
