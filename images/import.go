package images

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// Import stores the image in the archive at path under ref. path is a
// `docker save` tarball, an OCI image layout directory, or an OCI archive (a
// tar of a layout). Archives are hostile: path itself must not be a
// symlink, a tar is scanned first (clean names, sizes within the limits), a
// layout is copied into the store's tmp/ (regular files and directories
// only, no symlinks followed) before go-containerregistry reads it, and
// everything is verified by digest on the way in.
func (s *Store) Import(ctx context.Context, ref, path string) (*Image, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, err
	}
	plat, err := s.platform()
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, errorf(ErrUnsafe, "import %s: a symlink", path)
		}
		if errors.Is(err, os.ErrNotExist) {
			return nil, errorf(ErrNotFound, "import %s: no such file", path)
		}
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(s.path("tmp"), "import-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)

	var img v1.Image
	switch {
	case st.IsDir():
		if err := s.copyLayout(int(f.Fd()), tmp); err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		img, err = layoutImage(tmp, plat, r)
	case st.Mode().IsRegular():
		var kind string
		kind, err = s.scanArchive(f, st.Size())
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", path, err)
		}
		if kind == "oci" {
			if err := s.extractLayout(io.NewSectionReader(f, 0, st.Size()), tmp); err != nil {
				return nil, fmt.Errorf("import %s: %w", path, err)
			}
			img, err = layoutImage(tmp, plat, r)
		} else {
			img, err = tarball.Image(func() (io.ReadCloser, error) {
				return io.NopCloser(io.NewSectionReader(f, 0, st.Size())), nil
			}, nil)
		}
	default:
		return nil, errorf(ErrUnsafe, "import %s: not a regular file or directory", path)
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, wrapf(ErrInvalid, err, "import %s", path)
	}
	im, err := s.ingest(ctx, img, r.String(), nil)
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, wrapf(ErrInvalid, err, "import %s", path)
	}
	return im, nil
}

// scanArchive checks every entry of the tar in f and says what it is: "oci"
// (it has oci-layout) or "docker" (manifest.json, `docker save`). Newer
// docker writes both; the OCI layout is preferred, as it keeps the layers'
// compressed digests.
func (s *Store) scanArchive(f *os.File, size int64) (string, error) {
	tr := tar.NewReader(io.NewSectionReader(f, 0, size))
	var entries, total int64
	oci, docker := false, false
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", wrapf(ErrInvalid, err, "bad archive")
		}
		if entries++; entries > s.limits.LayerEntries {
			return "", errorf(ErrTooBig, "archive has more than %d entries", s.limits.LayerEntries)
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return "", err
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
			total += hdr.Size
			if total > s.limits.ImageBytes {
				return "", errorf(ErrTooBig, "archive larger than the limit of %d bytes", s.limits.ImageBytes)
			}
			if path.Ext(name) == ".json" || name == "oci-layout" || name == "repositories" {
				if hdr.Size > s.limits.JSONBytes {
					return "", errorf(ErrTooBig, "archive entry %q larger than %d bytes", hdr.Name, s.limits.JSONBytes)
				}
			}
		case tar.TypeDir:
		case tar.TypeSymlink, tar.TypeLink:
			// Older `docker save` links a repeated layer to its first copy;
			// go-containerregistry follows such links inside the tar only.
			if _, err := cleanName(path.Join(path.Dir(name), hdr.Linkname)); err != nil || path.IsAbs(hdr.Linkname) {
				return "", errorf(ErrUnsafe, "archive entry %q: link to %q leads out of the archive", hdr.Name, hdr.Linkname)
			}
		default:
			return "", errorf(ErrUnsafe, "archive entry %q: unexpected type %q", hdr.Name, hdr.Typeflag)
		}
		oci = oci || name == "oci-layout"
		docker = docker || name == "manifest.json"
	}
	switch {
	case oci:
		return "oci", nil
	case docker:
		return "docker", nil
	}
	return "", errorf(ErrInvalid, "archive is neither an OCI layout (oci-layout) nor a docker save (manifest.json)")
}

// extractLayout extracts an OCI archive's regular files and directories
// into dir (already scanned, so names are clean and sizes bounded).
func (s *Store) extractLayout(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return wrapf(ErrInvalid, err, "bad archive")
		}
		name, err := cleanName(hdr.Name)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return err
			}
		case tar.TypeReg, tar.TypeRegA:
			if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
				return err
			}
			if err := copyFileAt(dst, io.LimitReader(tr, hdr.Size), hdr.Size); err != nil {
				return err
			}
		default:
			return errorf(ErrUnsafe, "OCI archive entry %q: not a file or directory", hdr.Name)
		}
	}
}

// copyFileAt makes dst (never through a symlink: O_EXCL|O_NOFOLLOW; dst's
// directory is ours) with the n bytes of r.
func copyFileAt(dst string, r io.Reader, n int64) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	m, err := io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && m != n {
		err = errorf(ErrInvalid, "%s: short", dst)
	}
	return err
}

// copyLayout copies the OCI layout directory open at fd into dst: regular
// files and directories only, each opened beneath fd without following any
// symlink, within the size limits.
func (s *Store) copyLayout(fd int, dst string) error {
	var total, entries int64
	var walk func(dirfd int, rel string) error
	walk = func(dirfd int, rel string) error {
		d := os.NewFile(uintptr(dirfd), rel)
		defer d.Close()
		names, err := d.Readdirnames(-1)
		if err != nil {
			return err
		}
		for _, n := range names {
			if entries++; entries > s.limits.LayerEntries {
				return errorf(ErrTooBig, "layout has more than %d entries", s.limits.LayerEntries)
			}
			child, err := unix.Openat2(dirfd, n, &unix.OpenHow{
				Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOFOLLOW | unix.O_NONBLOCK,
				Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
			})
			if err != nil {
				if errors.Is(err, unix.ELOOP) {
					return errorf(ErrUnsafe, "layout entry %q: a symlink", path.Join(rel, n))
				}
				return fmt.Errorf("layout entry %q: %w", path.Join(rel, n), err)
			}
			var st unix.Stat_t
			if err := unix.Fstat(child, &st); err != nil {
				unix.Close(child)
				return err
			}
			p := path.Join(rel, n)
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFDIR:
				if err := os.Mkdir(filepath.Join(dst, p), 0o700); err != nil {
					unix.Close(child)
					return err
				}
				err = walk(child, p) // takes child
			case unix.S_IFREG:
				total += st.Size
				if total > s.limits.ImageBytes {
					unix.Close(child)
					return errorf(ErrTooBig, "layout larger than the limit of %d bytes", s.limits.ImageBytes)
				}
				cf := os.NewFile(uintptr(child), p)
				err = copyFileAt(filepath.Join(dst, p), io.LimitReader(cf, st.Size), st.Size)
				cf.Close()
			default:
				unix.Close(child)
				return errorf(ErrUnsafe, "layout entry %q: not a regular file or directory", p)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	nfd, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	return walk(nfd, ".")
}

// layoutImage picks the image for plat from the OCI layout at dir: the
// only image, or the one for plat (through nested indexes), or the one
// whose ref.name annotation is r's tag.
func layoutImage(dir string, plat *v1.Platform, r Ref) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	ii, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	return pickImage(ii, plat, r, 0)
}

func pickImage(ii v1.ImageIndex, plat *v1.Platform, r Ref, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errorf(ErrInvalid, "indexes nested too deep")
	}
	im, err := ii.IndexManifest()
	if err != nil {
		return nil, err
	}
	var cands []v1.Descriptor
	for _, d := range im.Manifests {
		if d.Platform != nil && !d.Platform.Satisfies(*plat) {
			continue
		}
		cands = append(cands, d)
	}
	if len(cands) > 1 {
		var named []v1.Descriptor
		for _, d := range cands {
			n := d.Annotations["org.opencontainers.image.ref.name"]
			if n != "" && (n == r.Identifier() || n == r.String()) {
				named = append(named, d)
			}
		}
		cands = named
	}
	if len(cands) != 1 {
		return nil, errorf(ErrInvalid, "layout: %d images fit %s (want one; name it with an org.opencontainers.image.ref.name annotation)", len(cands), r)
	}
	d := cands[0]
	if d.MediaType.IsIndex() {
		child, err := ii.ImageIndex(d.Digest)
		if err != nil {
			return nil, err
		}
		return pickImage(child, plat, r, depth+1)
	}
	if !d.MediaType.IsImage() {
		return nil, errorf(ErrInvalid, "layout: %s is not an image (%s)", d.Digest, d.MediaType)
	}
	return ii.Image(d.Digest)
}
