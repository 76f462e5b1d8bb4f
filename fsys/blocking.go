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
	return waitReadableEach(ctx, req, ready, func() <-chan struct{} { return signal })
}

// waitReadableEach is waitReadable for a signal that is a new channel at
// every change (closed once, then replaced): next is asked for the current
// one before every check of ready, so that a change between the two is
// never missed and a closed channel is never waited on twice.
func waitReadableEach(ctx context.Context, req *fuse.ReadRequest, ready func() bool, next func() <-chan struct{}) error {
	for {
		signal := next()
		if ready() {
			return nil
		}
		if req.FileFlags&fuse.OpenNonblock != 0 {
			return fuse.Errno(syscall.EAGAIN)
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return fuse.Errno(syscall.EINTR)
		}
	}
}
