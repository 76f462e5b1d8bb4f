package images

import (
	"errors"
	"os"
	"slices"
	"sort"
	"time"
)

// Image is one image of the store, named by its manifest digest.
type Image struct {
	Digest    string    // manifest digest, "sha256:<hex>"
	MediaType string    // of the manifest
	Config    string    // config digest
	Refs      []string  // references naming it, sorted (may be empty while held)
	Layers    []Layer   // bottom first
	Size      int64     // compressed size of its layers, as registries count it
	Unpacked  int64     // bytes of file data of its layers
	Created   time.Time // from the image config; zero if it has none
	Holders   []string  // owners holding it (Acquire)
}

// Layer is one layer of an image.
type Layer struct {
	Digest   string // compressed blob
	DiffID   string
	ChainID  string
	Dir      string // the unpacked tree, an overlayfs lowerdir
	Size     int64  // compressed
	Unpacked int64
}

// ListEntry is one line of List: a reference and its image.
type ListEntry struct {
	Ref     string
	Digest  string
	Size    int64
	Created time.Time
}

// List returns every reference with its image, sorted by reference.
func (s *Store) List() []ListEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ListEntry
	for ref, d := range s.idx.Refs {
		im := s.idx.Images[d]
		if im == nil {
			continue
		}
		out = append(out, ListEntry{Ref: ref, Digest: d, Size: imageSize(im), Created: im.Created})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out
}

// Images returns the digests of all images, sorted.
func (s *Store) Images() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for d := range s.idx.Images {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Get returns the image with the given manifest digest.
func (s *Store) Get(digest string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im := s.imageLocked(digest)
	if im == nil {
		return nil, errorf(ErrNotFound, "image %s: not in the store", digest)
	}
	return im, nil
}

// Resolve returns the image a reference or digest names.
func (s *Store) Resolve(refOrDigest string) (*Image, error) {
	d, err := s.lookup(refOrDigest)
	if err != nil {
		return nil, err
	}
	return s.Get(d)
}

// Manifest returns the image's manifest as stored (the exact bytes).
func (s *Store) Manifest(digest string) ([]byte, error) { return s.readJSONBlob(digest, digest) }

// ConfigJSON returns the image's config as stored (the exact bytes).
func (s *Store) ConfigJSON(digest string) ([]byte, error) {
	im, err := s.Get(digest)
	if err != nil {
		return nil, err
	}
	return s.readJSONBlob(digest, im.Config)
}

func (s *Store) readJSONBlob(image, blob string) ([]byte, error) {
	if !isDigest(image) {
		return nil, errorf(ErrInvalid, "bad image digest %q", image)
	}
	s.mu.Lock()
	_, ok := s.idx.Images[image]
	s.mu.Unlock()
	if !ok {
		return nil, errorf(ErrNotFound, "image %s: not in the store", image)
	}
	b, err := os.ReadFile(s.blobPath(blob))
	if errors.Is(err, os.ErrNotExist) {
		return nil, errorf(ErrNotFound, "image %s: blob %s missing", image, blob)
	}
	return b, err
}

// imageLocked builds the Image for digest, nil if there is none. s.mu held.
func (s *Store) imageLocked(digest string) *Image {
	e := s.idx.Images[digest]
	if e == nil {
		return nil
	}
	im := &Image{Digest: e.Manifest, MediaType: e.MediaType, Config: e.Config, Created: e.Created, Size: imageSize(e)}
	for ref, d := range s.idx.Refs {
		if d == digest {
			im.Refs = append(im.Refs, ref)
		}
	}
	sort.Strings(im.Refs)
	for _, l := range e.Layers {
		im.Layers = append(im.Layers, Layer{Digest: l.Digest, DiffID: l.DiffID, ChainID: l.ChainID,
			Dir: s.LayerDir(l.ChainID), Size: l.Size, Unpacked: l.Unpacked})
		im.Unpacked += l.Unpacked
	}
	im.Holders = slices.Clone(s.idx.Holds[digest])
	return im
}

func imageSize(e *imageEntry) int64 {
	var n int64
	for _, l := range e.Layers {
		n += l.Size
	}
	return n
}

// lookup resolves a reference or a manifest digest to a digest in the store.
func (s *Store) lookup(refOrDigest string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(refOrDigest)
}

func (s *Store) lookupLocked(refOrDigest string) (string, error) {
	if isDigest(refOrDigest) {
		if _, ok := s.idx.Images[refOrDigest]; ok {
			return refOrDigest, nil
		}
		return "", errorf(ErrNotFound, "image %s: not in the store", refOrDigest)
	}
	r, err := ParseRef(refOrDigest)
	if err != nil {
		return "", err
	}
	d, ok := s.idx.Refs[r.String()]
	if !ok {
		return "", errorf(ErrNotFound, "image %s: not in the store", r)
	}
	return d, nil
}
