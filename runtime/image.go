package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ctrfs/ctrfs/images"
	"github.com/ctrfs/ctrfs/internal/atomicfile"
)

// A container run from an image (`create ID --image REF`) gets a bundle made
// in its state directory, <state>/<id>/bundle: config.json (images.Spec),
// rootfs/ (an overlayfs of the image's layers), upper/ and work/ (its
// writes). Its state.json names the image's digest, and the image store
// holds the image for it (owner: the container id) until it is deleted.
const imageBundleDir = "bundle"

// DefaultImageDir is where the daemon keeps its image store: images outlive
// a reboot, which the state directory (/run) does not.
const DefaultImageDir = "/var/lib/ctrfs/images"

// ImageStore is the daemon's image store as the file tree uses it: every
// error is an *Error whose Kind says the errno (see imageError).
type ImageStore struct {
	r *Runtime
	s *images.Store
}

// openImages opens the store of cfg.ImageDir, locked like the state
// directory so that no two daemons share one.
func openImages(r *Runtime, cfg Config) (*ImageStore, error) {
	dir, err := filepath.Abs(cfg.ImageDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("image directory: %w", err)
	}
	lock, err := lockStateDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image directory: %w", err)
	}
	s, err := images.Open(dir, cfg.Images)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("image directory %s: %w", dir, err)
	}
	r.imageLock = lock
	return &ImageStore{r: r, s: s}, nil
}

// Images is the image store, or nil when the daemon has none (no ImageDir).
func (r *Runtime) Images() *ImageStore { return r.images }

// imageError maps the image store's errors to Kinds, in this one place:
// not found → ENOENT, invalid or unsafe → EINVAL, over a limit → EFBIG, in
// use → EBUSY, the registry failing → EIO (KindRuntime), anything else EIO.
func imageError(verb string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	kind := KindInternal
	switch {
	case errors.Is(err, images.ErrNotFound):
		kind = KindNotFound
	case errors.Is(err, images.ErrInvalid), errors.Is(err, images.ErrUnsafe):
		kind = KindInvalid
	case errors.Is(err, images.ErrTooBig):
		kind = KindTooBig
	case errors.Is(err, images.ErrBusy):
		kind = KindBusy
	case errors.Is(err, images.ErrRegistry):
		kind = KindRuntime
	}
	return Errorf(kind, "%s: %w", verb, err)
}

// Pull fetches ref and publishes its progress as pull events (at most every
// 200 ms, and once at the end: images.PullOptions.Progress). A writer who
// interrupts the write cancels the pull, which leaves nothing half-made.
// authFile, if not "", is this pull's credentials instead of the daemon's
// --registry-auth.
func (is *ImageStore) Pull(ctx context.Context, ref, authFile string) error {
	shown := ref
	if r, err := images.ParseRef(ref); err == nil {
		shown = r.String()
	}
	if authFile != "" {
		if err := images.CheckPullAuthFile(authFile); err != nil {
			return imageError("pull", err)
		}
	}
	_, err := is.s.Pull(ctx, ref, images.PullOptions{AuthFile: authFile, Progress: func(done, total int64) {
		is.r.events.publish(Event{Time: time.Now().UTC(), Type: EventPull, Ref: shown, Bytes: &done, Total: &total})
	}})
	return imageError("pull", err)
}

// Import stores the image of a docker-save tarball, an OCI layout directory
// or an OCI archive at path (absolute) under ref.
func (is *ImageStore) Import(ctx context.Context, ref, path string) error {
	_, err := is.s.Import(ctx, ref, path)
	return imageError("import", err)
}

// Tag makes dst name src's image.
func (is *ImageStore) Tag(src, dst string) error { return imageError("tag", is.s.Tag(src, dst)) }

// Remove untags a reference, or with a digest removes every reference.
func (is *ImageStore) Remove(ref string) error { return imageError("remove", is.s.Remove(ref)) }

// List is every reference with its image, sorted by reference.
func (is *ImageStore) List() []images.ListEntry { return is.s.List() }

// Digests are the digests of every complete image, sorted.
func (is *ImageStore) Digests() []string { return is.s.Images() }

// Get is the image of this digest.
func (is *ImageStore) Get(digest string) (*images.Image, error) {
	im, err := is.s.Get(digest)
	return im, imageError("image", err)
}

// Manifest is the image's manifest, as stored.
func (is *ImageStore) Manifest(digest string) ([]byte, error) {
	b, err := is.s.Manifest(digest)
	return b, imageError("image", err)
}

// Config is the image's config, as stored.
func (is *ImageStore) Config(digest string) ([]byte, error) {
	b, err := is.s.ConfigJSON(digest)
	return b, imageError("image", err)
}

// The values of create's --user-groups.
const (
	UserGroupsImage = "image"
	UserGroupsNone  = "none"
)

// checkImageRequest checks the image options of a create request.
func (req *CreateRequest) checkImage() error {
	if err := req.checkImageMounts(); err != nil {
		return err
	}
	if req.Image == "" {
		if len(req.Env) > 0 || req.Workdir != "" || req.User != "" || req.UserGroups != "" || len(req.Args) > 0 {
			return Errorf(KindInvalid, "--env, --workdir, --user, --user-groups and a command are for --image only")
		}
		return nil
	}
	if req.Bundle != "" {
		return Errorf(KindInvalid, "a bundle or --image, not both")
	}
	if req.Checkpoint != "" {
		return Errorf(KindInvalid, "--checkpoint restores into a bundle; not with --image")
	}
	if _, err := images.ParseRef(req.Image); err != nil {
		return imageError("--image", err)
	}
	for _, kv := range req.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" || strings.ContainsRune(kv, 0) {
			return Errorf(KindInvalid, "--env %q: want K=V", kv)
		}
	}
	if req.Workdir != "" && (!filepath.IsAbs(req.Workdir) || strings.ContainsRune(req.Workdir, 0)) {
		return Errorf(KindInvalid, "--workdir %q: must be an absolute path", req.Workdir)
	}
	if strings.ContainsRune(req.User, 0) {
		return Errorf(KindInvalid, "--user: holds a NUL")
	}
	switch req.UserGroups {
	case "", UserGroupsImage, UserGroupsNone:
	default:
		return Errorf(KindInvalid, "--user-groups %q: want %s or %s", req.UserGroups, UserGroupsImage, UserGroupsNone)
	}
	if req.UserGroups != "" && req.Config != "" && req.User == "" {
		// With --config, ctrfs resolves no user unless --user names one.
		return Errorf(KindInvalid, "--user-groups: with --config, for --user only")
	}
	for _, a := range req.Args {
		if strings.ContainsRune(a, 0) {
			return Errorf(KindInvalid, "command argument holds a NUL")
		}
	}
	return nil
}

// makeImageBundle makes the bundle of a container run from req.Image in its
// state directory, holding the image for it, and returns the bundle and the
// image's digest. The caller undoes all of it on failure (undoCreate).
func (r *Runtime) makeImageBundle(req *CreateRequest) (bundle, digest string, err error) {
	if r.images == nil {
		return "", "", Errorf(KindInvalid, "%s: --image: this daemon has no image store", req.verb())
	}
	bundle = filepath.Join(r.cfg.StateDir, req.ID, imageBundleDir)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return "", "", err
	}
	im, err := r.images.s.Acquire(req.Image, req.ID)
	if err != nil {
		return "", "", imageError(req.verb()+": --image", err)
	}
	config, err := r.images.s.ConfigJSON(im.Digest)
	if err != nil {
		return "", "", imageError(req.verb()+": --image", err)
	}
	rootfs, err := images.PrepareRootfs(bundle, im)
	if err != nil {
		return "", "", imageError(req.verb()+": --image", err)
	}
	var raw []byte
	if req.Config != "" {
		raw, err = callerSpec(req.Config, filepath.Base(rootfs), rootfs, req.User, req.UserGroups != UserGroupsNone)
		if err != nil {
			return "", "", err
		}
	} else {
		spec, err := images.Spec(config, rootfs, images.SpecOptions{
			ID: req.ID, Rootfs: filepath.Base(rootfs), Env: req.Env, Workdir: req.Workdir,
			User: req.User, Args: req.Args, Terminal: req.TTY, NoUserGroups: req.UserGroups == UserGroupsNone,
		})
		if err != nil {
			return "", "", imageError(req.verb()+": --image", err)
		}
		if raw, err = json.MarshalIndent(spec, "", "  "); err != nil {
			return "", "", err
		}
		raw = append(raw, '\n')
	}
	mounts, err := r.mountImageVolumes(req, bundle)
	if err != nil {
		return "", "", err
	}
	if raw, err = withImageMounts(raw, mounts); err != nil {
		return "", "", err
	}
	if err := atomicfile.WriteFile(filepath.Join(bundle, "config.json"), raw, 0o600); err != nil {
		return "", "", err
	}
	return bundle, im.Digest, nil
}

// dropImageBundle unmounts and removes the rootfs of a container run from an
// image (its writes go with it) and releases its hold on the image. It is
// done before the container's directory is removed, and is harmless for a
// container made from a bundle of its own.
func (r *Runtime) dropImageBundle(id string) {
	bundle := filepath.Join(r.cfg.StateDir, id, imageBundleDir)
	if _, err := os.Lstat(bundle); err == nil {
		r.dropImageVolumes(bundle)
		if err := images.RemoveRootfs(bundle); err != nil {
			r.log.WithError(err).WithField("id", id).Warn("cannot remove the rootfs of the image")
		}
	}
	if r.images == nil {
		return
	}
	for _, d := range r.images.s.Holds()[id] {
		if err := r.images.s.Release(d, id); err != nil {
			r.log.WithError(err).WithFields(map[string]any{"id": id, "image": d}).Warn("cannot release the image")
		}
	}
}

// loadImageRootfs makes sure a loaded container run from an image has its
// hold and its rootfs again (the mount is gone after the daemon's mount
// namespace or the host went; its upper directory, the writes, is kept).
func (r *Runtime) loadImageRootfs(rec containerRecord) {
	if rec.Image == "" {
		return
	}
	log := r.log.WithFields(map[string]any{"id": rec.ID, "image": rec.Image})
	if r.images == nil {
		log.Warn("container of an image, but this daemon has no image store: its rootfs is not mounted")
		return
	}
	im, err := r.images.s.Acquire(rec.Image, rec.ID)
	if err != nil {
		log.WithError(err).Warn("the container's image is gone: its rootfs is not mounted")
		return
	}
	bundle := filepath.Join(r.cfg.StateDir, rec.ID, imageBundleDir)
	if _, err := images.PrepareRootfs(bundle, im); err != nil {
		log.WithError(err).Warn("cannot mount the container's rootfs again")
	}
	r.loadImageVolumes(rec.ID, bundle)
}

// releaseVanishedHolds releases the holds of containers that are no more
// (deleted while the store could not record it, or made by a create cut
// short before its state.json). Owners are container ids.
func (r *Runtime) releaseVanishedHolds() {
	if r.images == nil {
		return
	}
	for owner, digests := range r.images.s.Holds() {
		if _, ok := r.Get(owner); ok {
			continue
		}
		for _, d := range digests {
			if err := r.images.s.Release(d, owner); err != nil {
				r.log.WithError(err).WithFields(map[string]any{"owner": owner, "image": d}).Warn("cannot release a vanished container's image")
			}
		}
	}
}
