// Package safeio reads and removes files that a user points the daemon at
// (a bundle's config.json, a checkpoint's directory) without trusting them:
// only regular files are read, never more than a cap, never past a
// deadline; a path below a directory is resolved by the kernel (openat2)
// so that no symlink can lead out of it; removal works on directory fds,
// never on a path string a symlink could redirect.
package safeio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Resolve flags for openat2 (see openat2(2)).
const (
	// Beneath keeps resolution inside the directory: absolute symlinks and
	// ".." out of it fail (EXDEV); symlinks that stay inside are followed.
	Beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS
	// Strict follows no symlink at all (ELOOP) and stays beneath.
	Strict = Beneath | unix.RESOLVE_NO_SYMLINKS
)

// ErrNotRegular is returned for a file that is not a regular file (a FIFO,
// a device, a directory, a socket).
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is returned for a file larger than its cap.
var ErrTooLarge = errors.New("too large")

// ErrOutside is returned for a path that leaves its directory or passes
// through a symlink where none is allowed.
var ErrOutside = errors.New("a symlink or \"..\" leads out of its directory")

// OpenDir opens a directory for use as a dirfd. dirfd -1 opens path as an
// absolute (or cwd-relative) path, following symlinks: the caller chose it.
// O_NONBLOCK: a FIFO named like a directory never blocks the open.
func OpenDir(dirfd int, path string, resolve uint64) (*os.File, error) {
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NONBLOCK
	fd, err := openat(dirfd, path, flags, resolve)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// OpenPathDir opens a directory below dirfd as an O_PATH handle, resolved
// with resolve: what a child process is given as /proc/PID/fd/N (FdPath)
// to name that very directory, whatever is renamed or swapped meanwhile.
func OpenPathDir(dirfd int, path string, resolve uint64) (*os.File, error) {
	fd, err := openat(dirfd, path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, resolve)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return os.NewFile(uintptr(fd), path), nil
}

func openat(dirfd int, path string, flags int, resolve uint64) (int, error) {
	if dirfd < 0 {
		return unix.Open(path, flags, 0)
	}
	fd, err := unix.Openat2(dirfd, path, &unix.OpenHow{Flags: uint64(flags), Resolve: resolve})
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) {
		return -1, fmt.Errorf("%w (%v)", ErrOutside, err)
	}
	if errors.Is(err, unix.EAGAIN) { // openat2 asks a retry under a rename race
		fd, err = unix.Openat2(dirfd, path, &unix.OpenHow{Flags: uint64(flags), Resolve: resolve})
	}
	return fd, err
}

// ReadFile reads a regular file of at most max bytes: path below dirfd
// (resolved with resolve), or with dirfd -1 a path the caller chose. The
// open cannot block (O_NONBLOCK: a FIFO opens at once, and is refused by
// the fstat that follows); the read gives up when ctx ends (a read stuck on
// a network or FUSE file then finishes on its own, unseen).
func ReadFile(ctx context.Context, dirfd int, path string, resolve uint64, max int64) ([]byte, error) {
	fd, err := openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, resolve)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w (%s)", ErrNotRegular, typeName(st.Mode))}
	}
	if st.Size > max {
		f.Close()
		return nil, &os.PathError{Op: "read", Path: path, Err: fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, st.Size, max)}
	}
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		defer f.Close()
		// One byte over the cap tells a file that grew since the fstat.
		b, err := io.ReadAll(io.LimitReader(f, max+1))
		if err == nil && int64(len(b)) > max {
			err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
		}
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: r.err}
		}
		return r.b, nil
	case <-ctx.Done():
		return nil, &os.PathError{Op: "read", Path: path, Err: ctx.Err()}
	}
}

func typeName(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symlink"
	}
	return "not a regular file"
}

// IsRegularAt reports whether path below dirfd is a regular file, reached
// without a symlink.
func IsRegularAt(dirfd int, path string) bool {
	fd, err := openat(dirfd, path, unix.O_PATH|unix.O_CLOEXEC, Strict)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	return unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG
}

// RemoveAllAt removes name, an entry of the directory dirfd, and all below
// it, through directory fds: a symlink met on the way is removed, never
// followed, so nothing outside the directory can be touched.
func RemoveAllAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return &os.PathError{Op: "unlinkat", Path: name, Err: err}
	}
	sub, err := OpenDir(dirfd, name, Strict)
	if err != nil {
		return err
	}
	names, err := sub.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if e := RemoveAllAt(int(sub.Fd()), n); e != nil && err == nil {
				err = e
			}
		}
	}
	sub.Close()
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "rmdir", Path: name, Err: err}
	}
	return nil
}

// FdPath is a path naming the directory open as f through /proc: a path
// that a child process (the runtime) can use and that no rename or symlink
// swap in between can redirect.
func FdPath(f *os.File) string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
}
