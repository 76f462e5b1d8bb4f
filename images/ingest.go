package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"github.com/ctrfs/ctrfs/internal/atomicfile"
	"io"
	"os"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ingest stores img (from a registry or an archive) under ref: blobs,
// unpacked layers, then the index, in that order, so the image appears only
// once complete. Blobs and layers it makes are pinned until the index holds
// them, so a concurrent collection cannot remove them.
func (s *Store) ingest(ctx context.Context, img v1.Image, ref string, progress func(done, total int64)) (_ *Image, err error) {
	rawManifest, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	if int64(len(rawManifest)) > s.limits.JSONBytes {
		return nil, errorf(ErrTooBig, "manifest larger than %d bytes", s.limits.JSONBytes)
	}
	digest := sha256Digest(rawManifest)
	m, err := v1.ParseManifest(bytes.NewReader(rawManifest))
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "bad manifest")
	}
	if m.Config.Size > s.limits.JSONBytes {
		return nil, errorf(ErrTooBig, "image config larger than %d bytes", s.limits.JSONBytes)
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	if got := sha256Digest(rawConfig); got != m.Config.Digest.String() {
		return nil, errorf(ErrInvalid, "image config has digest %s, the manifest says %s", got, m.Config.Digest)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, wrapf(ErrInvalid, err, "bad image config")
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errorf(ErrInvalid, "image has %d layers and %d diff ids", len(m.Layers), len(cfg.RootFS.DiffIDs))
	}

	entry := &imageEntry{Manifest: digest, MediaType: string(m.MediaType), Config: m.Config.Digest.String(), Added: time.Now().UTC()}
	if !cfg.Created.IsZero() {
		entry.Created = cfg.Created.UTC()
	}
	var total int64
	chain := ""
	for i, l := range m.Layers {
		diffID := cfg.RootFS.DiffIDs[i].String()
		chain = chainID(chain, diffID)
		entry.Layers = append(entry.Layers, layerEntry{Digest: l.Digest.String(), DiffID: diffID, ChainID: chain, Size: l.Size})
		total += l.Size
	}
	pins := []string{"blob " + digest, "blob " + entry.Config}
	for _, l := range entry.Layers {
		pins = append(pins, "blob "+l.Digest, "layer "+l.ChainID)
	}
	s.pin(pins)
	defer func() {
		s.unpin(pins)
		if err != nil {
			// Leave nothing of a failed ingest: its blobs and layers
			// are collected unless another image uses them.
			s.mu.Lock()
			s.gcLocked()
			s.mu.Unlock()
		}
	}()

	rep := newReporter(progress, total)
	var imageBytes int64
	for i := range entry.Layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		l := &entry.Layers[i]
		h, err := v1.NewHash(l.Digest)
		if err != nil {
			return nil, wrapf(ErrInvalid, err, "bad layer digest")
		}
		layer, err := img.LayerByDigest(h)
		if err != nil {
			return nil, err
		}
		if err := s.putBlob(l.Digest, l.Size, layer.Compressed, rep.add); err != nil {
			return nil, err
		}
		n, err := s.unpackOnce(l.ChainID, l.DiffID, l.Digest, s.limits.ImageBytes-imageBytes)
		if err != nil {
			return nil, err
		}
		l.Unpacked = n
		imageBytes += n
	}
	if err := s.putBlobBytes(entry.Config, rawConfig); err != nil {
		return nil, err
	}
	if err := s.putBlobBytes(digest, rawManifest); err != nil {
		return nil, err
	}
	rep.done()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idx.Images[digest] == nil {
		s.idx.Images[digest] = entry
	}
	if ref != "" {
		s.idx.Refs[ref] = digest
	}
	if err := s.saveLocked(); err != nil {
		return nil, err
	}
	// ref may have named another image, now perhaps unreferenced.
	if err := s.gcLocked(); err != nil {
		return nil, err
	}
	return s.imageLocked(digest), nil
}

// unpackOnce unpacks the layer blob into layers/sha256/<chain> unless it is
// there already, and returns its unpacked size. Two pulls sharing the layer
// unpack it once: the second waits on the chain id's lock and finds it made.
func (s *Store) unpackOnce(chain, diffID, blob string, imageLeft int64) (int64, error) {
	unlock := s.keys.lock("layer " + chain)
	defer unlock()
	dst := s.LayerDir(chain)
	s.mu.Lock()
	n, known := s.layerBytes[chain]
	s.mu.Unlock()
	if _, err := os.Stat(dst); err == nil {
		if known {
			return n, nil
		}
		// Made but not recorded (cannot happen after Open's collection;
		// be safe): make it again.
		if err := os.RemoveAll(dst); err != nil {
			return 0, err
		}
	}
	rc, err := s.openLayerBlob(blob)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	tmp, err := os.MkdirTemp(s.path("tmp"), "layer-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp) // nothing once renamed
	if err := os.Chmod(tmp, 0o755); err != nil {
		return 0, err
	}
	lim := unpackLimits{bytes: min(s.limits.LayerBytes, imageLeft), entries: s.limits.LayerEntries}
	res, err := unpackLayer(rc, tmp, lim)
	if err != nil {
		if errors.Is(err, ErrTooBig) && imageLeft < s.limits.LayerBytes {
			return 0, errorf(ErrTooBig, "image is larger than the limit of %d bytes", s.limits.ImageBytes)
		}
		return 0, err
	}
	if res.diffID != diffID {
		return 0, errorf(ErrInvalid, "layer %s: content has diff id %s, the config says %s", blob, res.diffID, diffID)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return 0, err
	}
	if err := atomicfile.SyncDir(s.path("layers", "sha256")); err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.layerBytes[chain] = res.bytes
	s.mu.Unlock()
	return res.bytes, nil
}

// chainID is the OCI chain id of a layer on top of parent ("" for the
// bottom layer): sha256 of "parent diffID".
func chainID(parent, diffID string) string {
	if parent == "" {
		return diffID
	}
	return sha256Digest([]byte(parent + " " + diffID))
}

func sha256Digest(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func (s *Store) pin(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.pins[k]++
	}
}

func (s *Store) unpin(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if s.pins[k]--; s.pins[k] <= 0 {
			delete(s.pins, k)
		}
	}
}

// reporter calls a progress callback at most every progressEvery, and once
// at the end.
type reporter struct {
	fn    func(done, total int64)
	total int64

	mu   sync.Mutex // protects all following fields
	n    int64
	last time.Time
}

const progressEvery = 200 * time.Millisecond

func newReporter(fn func(done, total int64), total int64) *reporter {
	return &reporter{fn: fn, total: total}
}

func (r *reporter) add(n int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	r.n += n
	now := time.Now()
	call := now.Sub(r.last) >= progressEvery
	if call {
		r.last = now
	}
	done := r.n
	r.mu.Unlock()
	if call {
		r.fn(done, r.total)
	}
}

func (r *reporter) done() {
	if r.fn != nil {
		r.fn(r.total, r.total)
	}
}

var _ io.Reader = (*countingReader)(nil)
