package fsys

import (
	"errors"
	"fmt"
	"syscall"

	"bazil.org/fuse"
	"github.com/ctrfs/ctrfs/runtime"
	"golang.org/x/sys/unix"
)

// errnoOf is the errno that tells a caller what went wrong.
func errnoOf(err error) fuse.Errno {
	var errno fuse.Errno
	if errors.As(err, &errno) {
		return errno
	}
	// Out of file descriptors is said as such, whatever the error's Kind:
	// it is the reason, and the caller's to act on.
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
	return fmt.Sprintf("%s (%s)", err.Error(), errnoName(errnoOf(err)))
}
