package images

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount mounts an overlayfs at target: lowers bottom first (image order,
// as Image.Layers lists them), upper and work writable. The mount data is
// limited to a page, so very deep images (about 40 layers with the store's
// paths) fail with ErrTooBig.
func Mount(lowers []string, upper, work, target string) error {
	if len(lowers) == 0 {
		return errorf(ErrInvalid, "overlay: no lower directory")
	}
	for _, d := range append(slices.Clone(lowers), upper, work) {
		if strings.ContainsAny(d, ":,") {
			return errorf(ErrInvalid, "overlay: path %q has ':' or ','", d)
		}
	}
	top := slices.Clone(lowers)
	slices.Reverse(top) // overlayfs wants the top layer first
	data := "lowerdir=" + strings.Join(top, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(data) >= os.Getpagesize() {
		return errorf(ErrTooBig, "overlay: %d layers are too many for one mount", len(lowers))
	}
	if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
		return fmt.Errorf("overlay mount on %s: %w", target, err)
	}
	return nil
}

// Unmount unmounts target; not mounted is not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, 0)
	if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if errors.Is(err, unix.EBUSY) {
		// Something (a leftover process) still uses it: detach it from the
		// tree now; the kernel frees it when the last user goes.
		err = unix.Unmount(target, unix.MNT_DETACH)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// Rootfs names a container's overlay directories under its directory.
type Rootfs struct {
	Dir string // the container's directory
}

func (r Rootfs) Upper() string  { return filepath.Join(r.Dir, "upper") }
func (r Rootfs) Work() string   { return filepath.Join(r.Dir, "work") }
func (r Rootfs) Target() string { return filepath.Join(r.Dir, "rootfs") }

// PrepareRootfs makes upper/, work/ and rootfs/ under dir and mounts the
// image's layers there, returning the mount point. It is idempotent: a
// rootfs already mounted (a daemon restart) is left as it is, so the
// container's writes in upper/ are found again. An image without layers
// gets an empty lower directory of its own.
func PrepareRootfs(dir string, im *Image) (string, error) {
	r := Rootfs{Dir: dir}
	for _, d := range []string{r.Upper(), r.Work(), r.Target()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", err
		}
	}
	if mounted, err := isOverlayMount(r.Target()); err != nil {
		return "", err
	} else if mounted {
		return r.Target(), nil
	}
	var lowers []string
	for _, l := range im.Layers {
		lowers = append(lowers, l.Dir)
	}
	if len(lowers) == 0 {
		empty := filepath.Join(dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return "", err
		}
		lowers = []string{empty}
	}
	if err := Mount(lowers, r.Upper(), r.Work(), r.Target()); err != nil {
		return "", err
	}
	return r.Target(), nil
}

// RemoveRootfs unmounts dir's rootfs and removes upper/, work/ and rootfs/
// (the container's writes). Done twice it does nothing the second time.
func RemoveRootfs(dir string) error {
	r := Rootfs{Dir: dir}
	if err := Unmount(r.Target()); err != nil {
		return err
	}
	for _, d := range []string{r.Target(), r.Upper(), r.Work(), filepath.Join(dir, "empty")} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return nil
}

// isOverlayMount reports whether p is an overlayfs mount point.
func isOverlayMount(p string) (bool, error) {
	var fs unix.Statfs_t
	if err := unix.Statfs(p, &fs); err != nil {
		return false, err
	}
	if fs.Type != unix.OVERLAYFS_SUPER_MAGIC {
		return false, nil
	}
	var st, pst unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false, err
	}
	if err := unix.Lstat(filepath.Dir(p), &pst); err != nil {
		return false, err
	}
	return st.Dev != pst.Dev, nil
}
