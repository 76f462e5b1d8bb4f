package fsys

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"time"

	"bazil.org/fuse"
	"bazil.org/fuse/fs"
	"github.com/ctrfs/ctrfs/images"
)

// Images is the image store as the images/ tree uses it (the runtime's
// ImageStore): its errors are runtime Errors, whose Kind gives the errno.
type Images interface {
	Pull(ctx context.Context, ref, authFile string) error
	Import(ctx context.Context, ref, path string) error
	Tag(src, dst string) error
	Remove(ref string) error
	List() []images.ListEntry
	Digests() []string
	Get(digest string) (*images.Image, error)
	Manifest(digest string) ([]byte, error)
	Config(digest string) ([]byte, error)
}

// imagesRuntime is a Runtime that has an image store; the tree has an
// images/ directory only then.
type imagesRuntime interface {
	Images() Images
}

func (r rtRuntime) Images() Images {
	if is := r.Runtime.Images(); is != nil {
		return is
	}
	return nil
}

// imagesDir is images/: ctl, list, and one directory per complete image,
// named by its manifest digest (sha256:<hex>).
type imagesDir struct {
	immutableDir
	im   Images
	ctl  *ctlFile
	list *roFile
}

func newImagesDir(im Images) *imagesDir {
	d := &imagesDir{im: im, ctl: imagesTable.ctl(im)}
	d.list = newROFile(func() ([]byte, error) { return imageList(im.List()), nil })
	return d
}

func (d *imagesDir) Attr(ctx context.Context, a *fuse.Attr) error {
	setAttr(ctx, a, kindDir)
	return nil
}

func (d *imagesDir) Lookup(ctx context.Context, req *fuse.LookupRequest, resp *fuse.LookupResponse) (fs.Node, error) {
	if err := allow(ctx, kindDir, mayExec); err != nil {
		return nil, err
	}
	switch req.Name {
	case "ctl":
		resp.EntryValid = 0 // a node per lookup: see ctlFile.fresh
		return d.ctl.fresh(), nil
	case "list":
		return d.list, nil
	}
	if !strings.HasPrefix(req.Name, "sha256:") {
		return nil, fuse.Errno(syscall.ENOENT)
	}
	if _, err := d.im.Get(req.Name); err != nil {
		return nil, errnoOf(err)
	}
	// Images come and go (remove, and back by a pull): ask every time.
	resp.EntryValid = 0
	return newImageDir(d.im, req.Name), nil
}

func (d *imagesDir) ReadDirAll(ctx context.Context) ([]fuse.Dirent, error) {
	if err := allow(ctx, kindDir, mayRead); err != nil {
		return nil, err
	}
	out := []fuse.Dirent{{Name: "ctl", Type: fuse.DT_File}, {Name: "list", Type: fuse.DT_File}}
	for _, dg := range d.im.Digests() {
		out = append(out, fuse.Dirent{Name: dg, Type: fuse.DT_Dir})
	}
	return out, nil
}

// imageListHeader heads images/list. The columns are fixed (digest 71,
// size 12 right-aligned, created 20), the reference last, so `cut -c` and
// `awk` both work.
var imageListHeader = fmt.Sprintf(imageListLine, "DIGEST", "SIZE", "CREATED", "REFERENCE")

const imageListLine = "%-71s  %12s  %-20s  %s\n"

// imageList is images/list: a header, then one line per reference.
func imageList(entries []images.ListEntry) []byte {
	var b strings.Builder
	b.WriteString(imageListHeader)
	for _, e := range entries {
		created := "-"
		if !e.Created.IsZero() {
			created = e.Created.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, imageListLine, e.Digest, fmt.Sprint(e.Size), created, e.Ref)
	}
	return []byte(b.String())
}

// newImageDir is the directory of one image: refs, manifest.json,
// config.json, size, layers, each read from the store at open (ENOENT
// once the image is gone).
func newImageDir(im Images, digest string) *staticDir {
	get := func(f func(*images.Image) string) *roFile {
		return newROFile(func() ([]byte, error) {
			img, err := im.Get(digest)
			if err != nil {
				return nil, err
			}
			return text(f(img)), nil
		})
	}
	return &staticDir{entries: map[string]fs.Node{
		"refs": get(func(img *images.Image) string { return strings.Join(img.Refs, "\n") }),
		"size": get(func(img *images.Image) string { return fmt.Sprint(img.Size) }),
		"layers": get(func(img *images.Image) string {
			lines := make([]string, len(img.Layers))
			for i, l := range img.Layers {
				lines[i] = fmt.Sprintf("%s %d %d %s", l.Digest, l.Size, l.Unpacked, l.DiffID)
			}
			return strings.Join(lines, "\n")
		}),
		"manifest.json": newROFile(func() ([]byte, error) { return im.Manifest(digest) }),
		"config.json":   newROFile(func() ([]byte, error) { return im.Config(digest) }),
	}}
}
