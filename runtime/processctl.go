package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"syscall"

	"github.com/ctrfs/ctrfs/shim/proto"
	"golang.org/x/sys/unix"
)

// Signal sends sig to the process. init's signal goes through the runtime
// (`runc kill`), as the container's kill does; an exec's is sent to its
// host pid through a pidfd, which stays bound to that very process even if
// the pid is reused meanwhile.
func (p *Process) Signal(ctx context.Context, sig syscall.Signal) error {
	if p == p.c.init {
		return p.c.Kill(ctx, sig, false)
	}
	if p.State() == ProcExited {
		return Errorf(KindBusy, "kill: process %q has exited", p.name)
	}
	if err := p.signal(sig); err != nil {
		if errors.Is(err, errGone) {
			return Errorf(KindBusy, "kill: process %q has exited", p.name)
		}
		return Errorf(KindInternal, "kill: process %q: %v", p.name, err)
	}
	return nil
}

// signal sends sig to the process if it is still the one started (pid and
// start time), through a pidfd.
func (p *Process) signal(sig syscall.Signal) error {
	h, err := p.open()
	if err != nil {
		return err
	}
	defer h.close()
	return h.signal(sig)
}

// open holds the process through a pidfd (pidwait.go); errGone if it has
// exited.
func (p *Process) open() (*pidHandle, error) {
	p.mu.RLock()
	pid, start := p.pid, p.start
	p.mu.RUnlock()
	return openPid(pid, start)
}

// CloseStdin ends the process's input, after what was written before.
// Closing a closed stdin, or the stdin of a process that has exited, is not
// an error; closing a stdin the process was never given is.
func (p *Process) CloseStdin() error {
	if !p.stdin {
		return Errorf(KindClosed, "close-stdin: process %q has no stdin (it was not started with --stdin)", p.name)
	}
	p.mu.Lock()
	if p.stdinClosed || p.exit != nil {
		p.mu.Unlock()
		return nil
	}
	p.stdinClosed = true
	p.mu.Unlock()
	err := p.control(proto.Control{Op: proto.ControlCloseStdin})
	if err != nil && KindOf(err) == KindBusy {
		return nil // it exited meanwhile: its input has ended anyway
	}
	if err != nil {
		// Not delivered: stdin stays open, and close-stdin may be tried again.
		p.mu.Lock()
		p.stdinClosed = false
		p.mu.Unlock()
	}
	return err
}

// Resize sets the window size of the process's terminal.
func (p *Process) Resize(cols, rows uint16) error {
	if !p.tty {
		return Errorf(KindNotTTY, "resize: process %q has no terminal (it was not started with --tty)", p.name)
	}
	if p.State() == ProcExited {
		return Errorf(KindBusy, "resize: process %q has exited", p.name)
	}
	return p.control(proto.Control{Op: proto.ControlResize, Cols: cols, Rows: rows})
}

// control sends one message to the process's shim. A message is one write
// of less than PIPE_BUF bytes, so it is never mixed with another.
func (p *Process) control(m proto.Control) error {
	fd, err := unix.Open(filepath.Join(p.dir, proto.ControlFifo), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ENXIO || err == unix.ENOENT {
		// No reader: the shim is gone, so is the process.
		return Errorf(KindBusy, "%s: process %q has exited", m.Op, p.name)
	}
	if err != nil {
		return Errorf(KindInternal, "%s: process %q: control fifo: %v", m.Op, p.name, err)
	}
	defer unix.Close(fd)
	data, _ := json.Marshal(m) // a struct of strings and numbers: cannot fail
	data = append(data, '\n')
	n, err := unix.Write(fd, data)
	switch {
	case err == unix.EAGAIN:
		return Errorf(KindInternal, "%s: process %q: its shim does not read its control fifo", m.Op, p.name)
	case err == unix.EPIPE:
		return Errorf(KindBusy, "%s: process %q has exited", m.Op, p.name)
	case err != nil || n != len(data):
		return Errorf(KindInternal, "%s: process %q: control fifo: %v", m.Op, p.name, err)
	}
	return nil
}
