package shim

import (
	"bufio"
	"encoding/json"
	"os"

	"github.com/ctrfs/ctrfs/shim/proto"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// openControlFifo opens the control fifo the daemon made, O_RDWR: the shim
// is always a reader, so the daemon's non-blocking open for writing
// succeeds exactly while the shim lives, and no EOF comes between writers.
func openControlFifo() (*os.File, error) {
	fd, err := unix.Open(proto.ControlFifo, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), proto.ControlFifo), nil
}

// serveControl carries out the daemon's messages until the shim exits. The
// daemon has checked them (a resize only for a terminal, close-stdin only
// with a stdin); what fails here is logged.
func serveControl(log *logrus.Entry, f *os.File, stdin *stdinCopy, console *os.File, cri *criLog) {
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m proto.Control
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			log.WithField("message", sc.Text()).Warn("control: not a message")
			continue
		}
		l := log.WithField("op", m.Op)
		switch m.Op {
		case proto.ControlCloseStdin:
			if stdin == nil {
				l.WithError(errNoStdin).Warn("control")
				continue
			}
			stdin.close()
			l.Info("stdin closing")
		case proto.ControlResize:
			if console == nil {
				l.Warn("control: resize without a terminal")
				continue
			}
			if err := setWinsize(console, m.Cols, m.Rows); err != nil {
				l.WithError(err).Warn("control: resize")
				continue
			}
			l.WithFields(logrus.Fields{"cols": m.Cols, "rows": m.Rows}).Info("resized")
		case proto.ControlReopenLog:
			if cri == nil {
				l.Warn("control: reopen-log without a log path")
				continue
			}
			if err := cri.reopen(); err != nil {
				l.WithError(err).Warn("control: reopen-log")
				continue
			}
			l.Info("log reopened")
		default:
			l.Warn("control: unknown op")
		}
	}
	// The shim holds the fifo for writing too, so there is no EOF: the
	// loop ends only on an error (or a line longer than the scanner's
	// buffer, which the daemon never writes).
	log.WithError(sc.Err()).Error("control fifo: read failed; close-stdin and resize no longer work")
}
