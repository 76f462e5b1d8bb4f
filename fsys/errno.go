package fsys

import (
	"errors"
	"fmt"
	"syscall"

	"bazil.org/fuse"
	"github.com/ctrfs/ctrfs/runtime"
	"golang.org/x/sys/unix"
)

// explain is err, or, when it happened for want of a file descriptor,
// the error that says so (see runtime.FileLimitError). An internal error
// (EIO) is checked against the daemon's fds even when it does not carry
// the errno; an order's failure is (see orderFailure).
func explain(err error) error {
	var errno fuse.Errno
	if errors.As(err, &errno) {
		return err
	}
	if e := runtime.FileLimitError(err, runtime.KindOf(err) == runtime.KindInternal); e != nil {
		return e
	}
	return err
}

// orderFailure is explain for the failure of an order, which may come
// from any file the order read (a bundle's config.json that cannot be
// opened reads as invalid), so that any kind but the user's own mistakes
// (a taken name, a wrong state) is checked against the daemon's fds.
func orderFailure(err error) error {
	switch runtime.KindOf(err) {
	case runtime.KindInternal, runtime.KindInvalid, runtime.KindRuntime:
		if e := runtime.FileLimitError(err, true); e != nil {
			return e
		}
	}
	return explain(err)
}

// errnoOf is the errno that tells a caller what went wrong.
func errnoOf(err error) fuse.Errno {
	var errno fuse.Errno
	if errors.As(err, &errno) {
		return errno
	}
	err = explain(err)
	// Out of file descriptors is said as such: it is the reason, and the
	// caller's to act on.
	if errors.Is(err, syscall.ENFILE) {
		return fuse.Errno(syscall.ENFILE)
	}
	if errors.Is(err, syscall.EMFILE) {
		return fuse.Errno(syscall.EMFILE)
	}
	switch runtime.KindOf(err) {
	case runtime.KindInvalid:
		return fuse.Errno(syscall.EINVAL)
	case runtime.KindNotFound:
		return fuse.Errno(syscall.ENOENT)
	case runtime.KindExists:
		return fuse.Errno(syscall.EEXIST)
	case runtime.KindBusy:
		return fuse.Errno(syscall.EBUSY)
	case runtime.KindTooBig:
		return fuse.Errno(syscall.EFBIG)
	case runtime.KindClosed:
		return fuse.Errno(syscall.EPIPE)
	case runtime.KindNotTTY:
		return fuse.Errno(syscall.ENOTTY)
	case runtime.KindInterrupted:
		return fuse.Errno(syscall.EINTR)
	case runtime.KindTooMany:
		return fuse.Errno(syscall.EMFILE)
	}
	return fuse.Errno(syscall.EIO)
}

// errnoName is the errno's symbolic name, as the result text shows it.
func errnoName(e fuse.Errno) string {
	if name := unix.ErrnoName(syscall.Errno(e)); name != "" {
		return name
	}
	return fmt.Sprintf("errno %d", int(e))
}

// describe is the one-line error text of a ctl result.
func describe(err error) string {
	err = explain(err)
	return fmt.Sprintf("%s (%s)", err.Error(), errnoName(errnoOf(err)))
}
