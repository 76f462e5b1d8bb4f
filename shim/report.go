package shim

import (
	"os"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// reporter is the write end of the report pipe, on which the daemon waits
// for one line: the pid or the runtime's error (proto.Report).
type reporter struct {
	f *os.File // nil when the shim was started by hand
	// version is the daemon's protocol version (proto.Config.Version):
	// 0, version 1, which every daemon reads, until the config is read.
	version int
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

// send writes the one report line and closes the pipe. A daemon that died
// meanwhile (EPIPE) is no reason to stop: it finds us from the files.
func (r *reporter) send(log *logrus.Entry, rep proto.Report) {
	if r.f == nil {
		return
	}
	_, err := r.f.Write(proto.MarshalReport(rep, r.version))
	if cerr := r.f.Close(); err == nil {
		err = cerr
	}
	r.f = nil // one report only
	if err != nil && log != nil {
		log.WithError(err).Warn("report to daemon")
	}
}
