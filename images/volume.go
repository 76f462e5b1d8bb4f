package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// An image volume is an image's files mounted read-only into a container
// (the kubelet's image volumes): an overlayfs of the image's layers only,
// with neither upper nor work directory, so nothing can write to it and
// nothing is kept. Its directory holds root/ (the mount point) and empty/
// (a bottom layer of its own: overlayfs without an upper directory wants
// at least two lower directories, and an image may have one layer or none).

// VolumeRoot is the mount point of the image volume of directory dir.
func VolumeRoot(dir string) string { return filepath.Join(dir, "root") }

// MountVolume mounts im's layers read-only at dir/root, making dir's
// directories as needed. It is idempotent: a volume already mounted (a
// daemon restart) is left as it is.
func MountVolume(dir string, im *Image) error {
	root, empty := VolumeRoot(dir), filepath.Join(dir, "empty")
	for _, d := range []string{root, empty} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if mounted, err := isOverlayMount(root); err != nil {
		return err
	} else if mounted {
		return nil
	}
	lowers := []string{empty}
	for _, l := range im.Layers {
		lowers = append(lowers, l.Dir)
	}
	for _, d := range lowers {
		if strings.ContainsAny(d, ":,") {
			return errorf(ErrInvalid, "overlay: path %q has ':' or ','", d)
		}
	}
	slices.Reverse(lowers) // overlayfs wants the top layer first
	data := "lowerdir=" + strings.Join(lowers, ":")
	if len(data) >= os.Getpagesize() {
		return errorf(ErrTooBig, "overlay: %d layers are too many for one mount", len(im.Layers))
	}
	if err := unix.Mount("overlay", root, "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		return fmt.Errorf("overlay mount on %s: %w", root, err)
	}
	return nil
}

// RemoveVolume unmounts dir's volume and removes dir. Done twice it does
// nothing the second time. The mount is read-only, so a removal that runs
// while it is still mounted cannot touch the image's layers.
func RemoveVolume(dir string) error {
	if err := Unmount(VolumeRoot(dir)); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// VolumePath resolves sub, a relative path inside the image, in the volume
// mounted at dir/root and returns it as a host path without symlinks, fit
// to be bind-mounted. The image's content is hostile: sub may hold no ".."
// and a symlink on the way may not lead out of the image (an absolute
// link, or ".." above the root): ErrUnsafe. A missing path is ErrNotFound;
// what is neither a directory nor a regular file is ErrInvalid.
func VolumePath(dir, sub string) (string, error) {
	root := VolumeRoot(dir)
	if err := CheckSubPath(sub); err != nil {
		return "", err
	}
	if sub == "" {
		return root, nil
	}
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(rfd)
	fd, err := unix.Openat2(rfd, sub, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return "", errorf(ErrNotFound, "sub-path %q: not in the image", sub)
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return "", errorf(ErrUnsafe, "sub-path %q: a symlink leads out of the image", sub)
	case err != nil:
		return "", fmt.Errorf("sub-path %q: %w", sub, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", err
	}
	if m := st.Mode & unix.S_IFMT; m != unix.S_IFDIR && m != unix.S_IFREG {
		return "", errorf(ErrInvalid, "sub-path %q: neither a directory nor a regular file", sub)
	}
	// The kernel's name of what was opened: no symlink left in it, and
	// stable, since the mount is read-only and layers never change.
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return "", err
	}
	if p != root && !strings.HasPrefix(p, root+"/") {
		return "", errorf(ErrUnsafe, "sub-path %q: resolves to %s, outside the image", sub, p)
	}
	return p, nil
}

// CheckSubPath checks the form of a sub-path: relative, no "..", no NUL.
func CheckSubPath(sub string) error {
	if strings.ContainsRune(sub, 0) {
		return errorf(ErrInvalid, "sub-path holds a NUL")
	}
	if filepath.IsAbs(sub) {
		return errorf(ErrInvalid, "sub-path %q: must be relative to the image's root", sub)
	}
	for _, c := range strings.Split(sub, "/") {
		if c == ".." {
			return errorf(ErrUnsafe, "sub-path %q: holds \"..\"", sub)
		}
	}
	return nil
}
