package runtime

import (
	"errors"
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileLimitError says that err happened while the daemon had no file
// descriptor left (EMFILE: its RLIMIT_NOFILE; ENFILE: the system's
// fs.file-max), and so why, whatever err itself says: an open that failed
// deep inside (a bundle's config.json) would otherwise be reported as
// the wrong thing (no readable config.json, EINVAL). It returns nil when
// err is no such failure: when err does not wrap EMFILE or ENFILE and,
// with probe, when the daemon can still open a file now.
func FileLimitError(err error, probe bool) error {
	if err == nil || KindOf(err) == KindTooMany {
		return nil
	}
	errno := syscall.Errno(0)
	switch {
	case errors.Is(err, syscall.EMFILE):
		errno = syscall.EMFILE
	case errors.Is(err, syscall.ENFILE):
		errno = syscall.ENFILE
	case probe:
		errno = fdShortage()
	}
	if errno == 0 {
		return nil
	}
	why := "the system's open files (fs.file-max) are all in use"
	if errno == syscall.EMFILE {
		var lim unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
		why = fmt.Sprintf("the daemon has all the %d file descriptors its limit allows (RLIMIT_NOFILE) open; open files of the mount hold some", lim.Cur)
	}
	return &Error{Kind: KindTooMany, Cause: errno, Msg: "ctrfs: too many open files: " + why + "; what failed: " + err.Error()}
}

// fdShortage reports EMFILE or ENFILE if the daemon cannot open a file
// now, else 0.
func fdShortage() syscall.Errno {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return 0
	}
	if err == unix.EMFILE || err == unix.ENFILE {
		return err.(syscall.Errno)
	}
	return 0
}
