package images

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Unpacking a layer is the security-critical step: the daemon is root and the
// tar is hostile. Every name is resolved with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_MAGICLINKS) from the layer directory, so neither "..", nor an
// absolute name, nor a symlink (absolute or relative) can lead outside it;
// files are made with *at calls on the resolved parent and O_NOFOLLOW|O_EXCL,
// so a symlink is never written through. Names with ".." or a leading "/" are
// refused outright rather than rewritten: a layer that has them is not one a
// sane tool made.

// unpackLimits bound one layer.
type unpackLimits struct {
	bytes   int64 // file data
	entries int64
}

// unpackResult is what unpacking a layer measured.
type unpackResult struct {
	diffID string // sha256 of the uncompressed tar stream
	bytes  int64  // file data written
}

// unpackLayer applies the uncompressed tar r to dir, an empty directory,
// turning OCI whiteouts into overlayfs ones. It reads r to its end so the
// diff id covers the whole stream. On error dir holds a partial tree: the
// caller unpacks into a temporary directory and removes it.
func unpackLayer(r io.Reader, dir string, lim unpackLimits) (unpackResult, error) {
	root, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return unpackResult{}, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(root)

	h := sha256.New()
	// The stream itself is capped too: headers and padding of an endless
	// tar count against the limit, not only file data.
	cr := &cappedReader{r: io.TeeReader(r, h), left: lim.bytes + lim.entries*1024 + 1<<20}
	tr := tar.NewReader(cr)
	u := &unpacker{root: root, lim: lim}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if cr.over {
				return unpackResult{}, errorf(ErrTooBig, "layer is larger than the limit of %d bytes", lim.bytes)
			}
			return unpackResult{}, wrapf(ErrInvalid, err, "bad layer tar")
		}
		u.entries++
		if u.entries > lim.entries {
			return unpackResult{}, errorf(ErrTooBig, "layer has more than the limit of %d entries", lim.entries)
		}
		if err := u.entry(hdr, tr); err != nil {
			if cr.over {
				return unpackResult{}, errorf(ErrTooBig, "layer is larger than the limit of %d bytes", lim.bytes)
			}
			return unpackResult{}, err
		}
	}
	// Read the trailer (and anything after it) so the digest is the stream's.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		if cr.over {
			return unpackResult{}, errorf(ErrTooBig, "layer is larger than the limit of %d bytes", lim.bytes)
		}
		return unpackResult{}, wrapf(ErrInvalid, err, "bad layer tar")
	}
	// Directory times last: making their children changed them.
	for i := len(u.dirs) - 1; i >= 0; i-- {
		if err := u.setTimes(u.dirs[i].name, u.dirs[i].hdr); err != nil {
			return unpackResult{}, err
		}
	}
	return unpackResult{diffID: "sha256:" + hex.EncodeToString(h.Sum(nil)), bytes: u.bytes}, nil
}

type unpacker struct {
	root    int // the layer directory
	lim     unpackLimits
	entries int64
	bytes   int64
	dirs    []dirTimes
}

type dirTimes struct {
	name string
	hdr  *tar.Header
}

// cleanName checks a tar name and returns it cleaned, "." for the root.
func cleanName(n string) (string, error) {
	if strings.HasPrefix(n, "/") {
		return "", errorf(ErrUnsafe, "layer entry %q: absolute name", n)
	}
	for _, part := range strings.Split(n, "/") {
		if part == ".." {
			return "", errorf(ErrUnsafe, "layer entry %q: name with \"..\"", n)
		}
	}
	if strings.IndexByte(n, 0) >= 0 {
		return "", errorf(ErrUnsafe, "layer entry %q: NUL in name", n)
	}
	c := path.Clean(n)
	if c == "" {
		c = "."
	}
	return c, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	dir, base := splitName(name)
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errorf(ErrUnsafe, "layer entry %q: the root is not a directory", hdr.Name)
		}
		u.dirs = append(u.dirs, dirTimes{name, hdr})
		return u.meta(u.root, ".", hdr, name)
	}

	// Whiteouts name a file to hide; they are never made as themselves.
	if strings.HasPrefix(base, whiteoutPrefix) {
		parent, err := u.mkdirAll(dir)
		if err != nil {
			return err
		}
		defer unix.Close(parent)
		return whiteout(parent, dir, base)
	}

	parent, err := u.mkdirAll(dir)
	if err != nil {
		return err
	}
	defer unix.Close(parent)

	if hdr.Typeflag == tar.TypeDir {
		err := unix.Mkdirat(parent, base, 0o700)
		if errors.Is(err, unix.EEXIST) {
			// A directory made earlier (implicitly, or by an earlier entry)
			// takes this entry's metadata; anything else is replaced.
			var st unix.Stat_t
			if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("layer entry %q: %w", hdr.Name, err)
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err := removeAt(parent, base, hdr.Name); err != nil {
					return err
				}
				err = unix.Mkdirat(parent, base, 0o700)
			} else {
				err = nil
			}
		}
		if err != nil {
			return fmt.Errorf("layer entry %q: mkdir: %w", hdr.Name, err)
		}
		u.dirs = append(u.dirs, dirTimes{name, hdr})
		return u.meta(parent, base, hdr, name)
	}

	// A later entry of the same name replaces an earlier one (tar order).
	if err := removeAt(parent, base, hdr.Name); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		if hdr.Size < 0 || hdr.Size > u.lim.bytes-u.bytes {
			return errorf(ErrTooBig, "layer entry %q: layer is larger than the limit of %d bytes", hdr.Name, u.lim.bytes)
		}
		fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("layer entry %q: create: %w", hdr.Name, err)
		}
		n, err := io.Copy(fdWriter(fd), io.LimitReader(r, hdr.Size))
		u.bytes += n
		if err == nil && n != hdr.Size {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			err = setXattrs(fd, hdr)
		}
		unix.Close(fd)
		if err != nil {
			return wrapf(ErrInvalid, err, "layer entry %q", hdr.Name)
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, parent, base); err != nil {
			return fmt.Errorf("layer entry %q: symlink: %w", hdr.Name, err)
		}
	case tar.TypeLink:
		if err := u.hardlink(parent, base, hdr); err != nil {
			return err
		}
		return nil // a hard link shares its target's metadata
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(parent, base, mode|0o600, int(dev)); err != nil {
			return fmt.Errorf("layer entry %q: mknod: %w", hdr.Name, err)
		}
	default:
		return errorf(ErrUnsafe, "layer entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	return u.meta(parent, base, hdr, name)
}

// mkdirAll resolves dir beneath the root, making missing directories, and
// returns an O_PATH fd of it. A component that is a symlink leading out of
// the layer fails (EXDEV from openat2).
func (u *unpacker) mkdirAll(dir string) (int, error) {
	fd, err := u.resolve(dir)
	if err == nil || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	cur := "."
	for _, part := range strings.Split(dir, "/") {
		p, err := u.resolve(cur)
		if err != nil {
			return -1, err
		}
		err = unix.Mkdirat(p, part, 0o755)
		unix.Close(p)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, fmt.Errorf("layer: mkdir %q: %w", path.Join(cur, part), err)
		}
		cur = path.Join(cur, part)
	}
	return u.resolve(dir)
}

func (u *unpacker) resolve(name string) (int, error) {
	fd, err := unix.Openat2(u.root, name, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	switch {
	case err == nil:
		return fd, nil
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return -1, errorf(ErrUnsafe, "layer entry under %q: path leads out of the layer (through a symlink)", name)
	case errors.Is(err, unix.ENOTDIR):
		return -1, errorf(ErrUnsafe, "layer entry under %q: not a directory", name)
	}
	return -1, fmt.Errorf("layer: open %q: %w", name, err)
}

// hardlink links name to hdr.Linkname, a file earlier in this same layer.
func (u *unpacker) hardlink(parent int, base string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return errorf(ErrUnsafe, "layer entry %q: hard link to %q: outside the layer", hdr.Name, hdr.Linkname)
	}
	if target == "." {
		return errorf(ErrUnsafe, "layer entry %q: hard link to the root", hdr.Name)
	}
	tdir, tbase := splitName(target)
	tp, err := u.resolve(tdir)
	if err != nil {
		return err
	}
	defer unix.Close(tp)
	// No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
	if err := unix.Linkat(tp, tbase, parent, base, 0); err != nil {
		return fmt.Errorf("layer entry %q: hard link to %q: %w", hdr.Name, hdr.Linkname, err)
	}
	return nil
}

// meta sets ownership, mode (after chown, which clears setuid) and times.
func (u *unpacker) meta(parent int, base string, hdr *tar.Header, name string) error {
	if err := unix.Fchownat(parent, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: chown: %w", hdr.Name, err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// The tree is private to this unpack (tmp/ is 0700), so the name
		// cannot have become a symlink since it was made.
		mode := uint32(hdr.Mode & 0o7777)
		if err := unix.Fchmodat(parent, base, mode, 0); err != nil {
			return fmt.Errorf("layer entry %q: chmod: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			if err := setXattrsAt(parent, base, hdr); err != nil {
				return err
			}
			return nil // times at the end
		}
	}
	return u.setTimesAt(parent, base, hdr)
}

func (u *unpacker) setTimes(name string, hdr *tar.Header) error {
	if name == "." {
		return u.setTimesAt(u.root, ".", hdr)
	}
	dir, base := splitName(name)
	p, err := u.resolve(dir)
	if err != nil {
		return err
	}
	defer unix.Close(p)
	return u.setTimesAt(p, base, hdr)
}

// splitName splits a clean name into its directory ("." for the root) and
// last element.
func splitName(name string) (dir, base string) {
	dir, base = path.Split(name)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		dir = "."
	}
	return dir, base
}

func (u *unpacker) setTimesAt(parent int, base string, hdr *tar.Header) error {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{timespec(at), timespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(parent, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("layer entry %q: times: %w", hdr.Name, err)
	}
	return nil
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

// removeAt removes whatever base is in parent (a file, or an empty
// directory), so a later entry can take the name.
func removeAt(parent int, base, entry string) error {
	err := unix.Unlinkat(parent, base, 0)
	if errors.Is(err, unix.EISDIR) {
		err = unix.Unlinkat(parent, base, unix.AT_REMOVEDIR)
	}
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	return fmt.Errorf("layer entry %q: replace: %w", entry, err)
}

// fdWriter writes to a raw fd.
type fdWriter int

func (w fdWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := unix.Write(int(w), b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// cappedReader fails once more than left bytes are read.
type cappedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		c.over = true
		return 0, errorf(ErrTooBig, "stream longer than its limit")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
