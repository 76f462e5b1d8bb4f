package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ctrfs/ctrfs/images"
	"github.com/ctrfs/ctrfs/internal/atomicfile"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// An image mount (`create ID --image REF --image-mount IMG:/PATH[:SUB]`) is
// an image of the store, or a path inside it, mounted read-only at PATH in
// the container (the kubelet's image volumes). Each is a read-only overlay
// of the image's layers in <bundle>/volumes/<n>/root, bind-mounted by the
// runtime; volumes/<n>/volume.json says which image, so that a daemon
// restart after a reboot mounts it again. The container holds the image as
// it holds its own. Teardown lists volumes/ on disk rather than trusting a
// record, so a create cut short at any step leaves nothing mounted that the
// next load's undo does not unmount.

// ImageMount is one --image-mount.
type ImageMount struct {
	Image   string // a reference or a digest of the store
	Dest    string // absolute path in the container
	SubPath string // relative path inside the image; "" for its root
}

// maxImageMounts bounds the image mounts of one container.
const maxImageMounts = 64

const volumesDir = "volumes"

// volumeRecord is volumes/<n>/volume.json.
type volumeRecord struct {
	Image   string `json:"image"` // the manifest digest
	Dest    string `json:"destination"`
	SubPath string `json:"sub_path,omitempty"`
}

// ParseImageMount parses REF:/PATH[:SUBPATH]. REF ends at the first ":/"
// (no reference holds one: what follows a ':' in a reference is a port, a
// tag or a digest); PATH ends at the next ':', so it cannot hold one.
func ParseImageMount(s string) (ImageMount, error) {
	ref, rest, ok := strings.Cut(s, ":/")
	if !ok || ref == "" {
		return ImageMount{}, Errorf(KindInvalid, "--image-mount %q: want REF:/PATH[:SUBPATH]", s)
	}
	m := ImageMount{Image: ref}
	var hasSub bool
	m.Dest, m.SubPath, hasSub = strings.Cut("/"+rest, ":")
	if hasSub && m.SubPath == "" {
		return ImageMount{}, Errorf(KindInvalid, "--image-mount %q: empty sub-path after ':'", s)
	}
	return m, nil
}

// String is the mount as --image-mount takes it.
func (m ImageMount) String() string {
	if m.SubPath == "" {
		return m.Image + ":" + m.Dest
	}
	return m.Image + ":" + m.Dest + ":" + m.SubPath
}

// checkImageMounts checks the --image-mount options of a create request.
func (req *CreateRequest) checkImageMounts() error {
	if len(req.ImageMounts) == 0 {
		return nil
	}
	if req.Image == "" {
		return Errorf(KindInvalid, "--image-mount is for --image only (a bundle has its own config.json)")
	}
	if len(req.ImageMounts) > maxImageMounts {
		return Errorf(KindInvalid, "--image-mount: at most %d", maxImageMounts)
	}
	seen := map[string]bool{}
	for _, m := range req.ImageMounts {
		what := "--image-mount " + m.String()
		if err := CheckUTF8(what, m.String()); err != nil {
			return err
		}
		if _, err := images.ParseRef(m.Image); err != nil {
			return imageError(what, err)
		}
		if !filepath.IsAbs(m.Dest) || strings.ContainsAny(m.Dest, ":\x00") {
			return Errorf(KindInvalid, "%s: the container path must be absolute", what)
		}
		d := filepath.Clean(m.Dest)
		if d == "/" {
			return Errorf(KindInvalid, "%s: cannot mount over the container's root", what)
		}
		if seen[d] {
			return Errorf(KindInvalid, "%s: %s is mounted twice", what, d)
		}
		seen[d] = true
		if err := images.CheckSubPath(m.SubPath); err != nil {
			return imageError(what, err)
		}
	}
	return nil
}

// mountImageVolumes mounts req's image mounts under bundle, holding their
// images for the container, and returns the spec mounts that bind them. The
// caller undoes all of it on failure (undoCreate → dropImageBundle).
func (r *Runtime) mountImageVolumes(req *CreateRequest, bundle string) ([]specs.Mount, error) {
	var out []specs.Mount
	for i, m := range req.ImageMounts {
		what := req.verb() + ": --image-mount " + m.String()
		im, err := r.images.s.Acquire(m.Image, req.ID)
		if err != nil {
			return nil, imageError(what, err)
		}
		dir := filepath.Join(bundle, volumesDir, strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		rec, err := json.Marshal(volumeRecord{Image: im.Digest, Dest: m.Dest, SubPath: m.SubPath})
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(filepath.Join(dir, "volume.json"), rec, 0o600); err != nil {
			return nil, err
		}
		if err := images.MountVolume(dir, im); err != nil {
			return nil, imageError(what, err)
		}
		src, err := images.VolumePath(dir, m.SubPath)
		if err != nil {
			return nil, imageError(what, err)
		}
		out = append(out, specs.Mount{Destination: filepath.Clean(m.Dest), Type: "bind", Source: src,
			Options: []string{"rbind", "ro", "rprivate", "nosuid", "nodev"}})
	}
	return out, nil
}

// withImageMounts is the config.json raw with mounts appended to its
// mounts (after the caller's: a later mount of the same path wins).
func withImageMounts(raw []byte, mounts []specs.Mount) ([]byte, error) {
	if len(mounts) == 0 {
		return raw, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	var list []json.RawMessage
	if m, ok := doc["mounts"]; ok && string(m) != "null" {
		if err := json.Unmarshal(m, &list); err != nil {
			return nil, Errorf(KindInvalid, "--config: mounts: %v", err)
		}
	}
	for _, m := range mounts {
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		list = append(list, b)
	}
	doc["mounts"], _ = json.Marshal(list)
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// dropImageVolumes unmounts and removes every volume under bundle, whatever
// made it: it lists the directory, so a create cut short is undone too.
func (r *Runtime) dropImageVolumes(bundle string) {
	dir := filepath.Join(bundle, volumesDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	failed := false
	for _, e := range entries {
		if err := images.RemoveVolume(filepath.Join(dir, e.Name())); err != nil {
			r.log.WithError(err).WithField("volume", filepath.Join(dir, e.Name())).Warn("cannot remove an image volume")
			failed = true // the others are still taken down
		}
	}
	if failed {
		return
	}
	if err := os.Remove(dir); err != nil {
		r.log.WithError(err).WithField("dir", dir).Warn("cannot remove the image volumes' directory")
	}
}

// loadImageVolumes mounts a loaded container's image volumes again (gone
// with the host or the daemon's mount namespace), holding their images.
func (r *Runtime) loadImageVolumes(id, bundle string) {
	dir := filepath.Join(bundle, volumesDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		vdir := filepath.Join(dir, e.Name())
		log := r.log.WithFields(map[string]any{"id": id, "volume": vdir})
		var rec volumeRecord
		if err := readJSON(filepath.Join(vdir, "volume.json"), &rec); err != nil {
			log.WithError(err).Warn("unreadable volume.json: the image volume is not mounted")
			continue
		}
		im, err := r.images.s.Acquire(rec.Image, id)
		if err != nil {
			log.WithError(err).Warn("the image volume's image is gone: it is not mounted")
			continue
		}
		if err := images.MountVolume(vdir, im); err != nil {
			log.WithError(err).Warn(fmt.Sprintf("cannot mount the image volume of %s again", rec.Image))
		}
	}
}
