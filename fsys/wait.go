package fsys

import (
	"context"
	"syscall"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/runtime"
)

// waitFile is processes/NAME/wait: a read blocks until the process has
// exited, then gives its exit status, as the exit file shows it. POLL
// reports POLLIN once it has exited.
type waitFile struct {
	readOnlyFile
	p       Process
	waiters pollWaiters
}

func (f *waitFile) Open(ctx context.Context, req *fuse.OpenRequest, resp *fuse.OpenResponse) (fs.Handle, error) {
	if err := allow(ctx, kindFile, openWant(req.Flags)); err != nil {
		return nil, err
	}
	if !req.Flags.IsReadOnly() {
		return nil, fuse.Errno(syscall.EACCES)
	}
	resp.Flags |= fuse.OpenDirectIO
	return &waitHandle{f: f}, nil
}

// exited wakes the pollers once the process has exited.
func (f *waitFile) exited(n *notifier) { f.waiters.wakeAll(n) }

// done reports whether the process has exited. It asks the exit record,
// set before the exit event goes out, not Done, closed after it: the
// event's wake-ups may reach a poller before Done is closed, and a poll
// that then found nothing would wait for good.
func (f *waitFile) done() bool {
	return f.p.State() == runtime.ProcExited
}

type waitHandle struct {
	f   *waitFile
	reg pollRegistration
}

func (h *waitHandle) Read(ctx context.Context, req *fuse.ReadRequest, resp *fuse.ReadResponse) error {
	if err := waitReadable(ctx, req, h.f.done, h.f.p.Exited()); err != nil {
		return err
	}
	resp.Data = sliceAt(text(h.f.p.ExitText()), req.Offset, req.Size)
	return nil
}

func (h *waitHandle) Poll(ctx context.Context, req *fuse.PollRequest, resp *fuse.PollResponse) error {
	h.reg.set(h.f.waiters.poll(req, resp, h.f.done))
	return nil
}

func (h *waitHandle) Release(ctx context.Context, req *fuse.ReleaseRequest) error {
	h.reg.release(&h.f.waiters)
	return nil
}

func (h *waitHandle) Flush(ctx context.Context, req *fuse.FlushRequest) error {
	return fuse.Errno(syscall.ENOSYS)
}
