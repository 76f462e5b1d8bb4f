package images

import (
	"archive/tar"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// OCI whiteouts (image-spec layer.md) become overlayfs ones, because each
// layer is its own lower directory: a deletion must hide the file in the
// layers below, not remove anything.
//
//	DIR/.wh.NAME        -> DIR/NAME, a 0/0 character device
//	DIR/.wh..wh..opq    -> DIR gets the xattr trusted.overlay.opaque=y
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// whiteout applies the whiteout entry base in the directory parent (named
// dir, for messages).
func whiteout(parent int, dir, base string) error {
	if base == whiteoutOpaque {
		fd, err := unix.Openat(parent, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("layer: opaque %q: %w", dir, err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("layer: opaque %q: %w", dir, err)
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other aufs metadata (.wh..wh.plnk, ...): not content
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return errorf(ErrUnsafe, "layer entry %q: bad whiteout", dir+"/"+base)
	}
	if err := removeAt(parent, name, dir+"/"+base); err != nil {
		return err
	}
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("layer: whiteout %q: %w", dir+"/"+name, err)
	}
	if err := unix.Fchownat(parent, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer: whiteout %q: %w", dir+"/"+name, err)
	}
	return nil
}

// xattrAllowed says which of an image's extended attributes are kept: user
// ones and file capabilities. trusted.* (overlayfs's own: opaque, redirect,
// metacopy) would let an image forge overlay metadata, and security.selinux
// and the like belong to the host's policy, so they are dropped.
func xattrAllowed(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "security.capability"
}

// setXattrs sets the allowed xattrs of hdr (PAX SCHILY.xattr.*) on fd.
func setXattrs(fd int, hdr *tar.Header) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !xattrAllowed(name) {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

// setXattrsAt sets hdr's xattrs on the directory base in parent.
func setXattrsAt(parent int, base string, hdr *tar.Header) error {
	if !hasXattrs(hdr) {
		return nil
	}
	fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	defer unix.Close(fd)
	if err := setXattrs(fd, hdr); err != nil {
		return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
	}
	return nil
}

func hasXattrs(hdr *tar.Header) bool {
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			return true
		}
	}
	return false
}
