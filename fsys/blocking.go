package fsys

import (
	"context"
	"syscall"

	"bazil.org/fuse"
)

// waitReadable blocks a read until ready() holds, rechecking whenever
// signal fires. Under O_NONBLOCK it answers EAGAIN at once instead (Go's
// os.File reads that way, then waits for a poll wake-up); an interrupted
// reader (Ctrl-C: the kernel sends INTERRUPT, which cancels ctx) gets EINTR
// at once, so no request is left behind in the daemon.
func waitReadable(ctx context.Context, req *fuse.ReadRequest, ready func() bool, signal <-chan struct{}) error {
	for !ready() {
		if req.FileFlags&fuse.OpenNonblock != 0 {
			return fuse.Errno(syscall.EAGAIN)
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return fuse.Errno(syscall.EINTR)
		}
	}
	return nil
}
