package images

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ctrfs/ctrfs/internal/atomicfile"
	"os"
	"time"
)

// index is index.json: what the store holds, written whole and atomically
// (temp file, fsync, rename) after every change.
type index struct {
	Version int                    `json:"version"`
	Refs    map[string]string      `json:"refs"`   // display reference -> manifest digest
	Images  map[string]*imageEntry `json:"images"` // manifest digest -> image
	// Holds are the owners (container ids) using an image, by manifest
	// digest. They survive a restart so nothing is collected under a
	// container; the runtime reconciles them (Holds, Release).
	Holds map[string][]string `json:"holds,omitempty"`
}

const indexVersion = 1

// imageEntry is one image as the index records it.
type imageEntry struct {
	Manifest  string       `json:"manifest"` // manifest digest: the image's name in the store
	MediaType string       `json:"mediaType"`
	Config    string       `json:"config"` // config digest
	Layers    []layerEntry `json:"layers"`
	Created   time.Time    `json:"created,omitzero"` // from the image config
	Added     time.Time    `json:"added"`            // when the store got it
}

type layerEntry struct {
	Digest   string `json:"digest"`   // compressed blob
	DiffID   string `json:"diffID"`   // uncompressed tar
	ChainID  string `json:"chainID"`  // names the unpacked directory
	Size     int64  `json:"size"`     // compressed
	Unpacked int64  `json:"unpacked"` // bytes of file data
}

func loadIndex(path string) (*index, error) {
	idx := &index{Version: indexVersion, Refs: map[string]string{}, Images: map[string]*imageEntry{}, Holds: map[string][]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return idx, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("images: %s: %w", path, err)
	}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("images: %s: version %d, want %d", path, idx.Version, indexVersion)
	}
	if idx.Refs == nil {
		idx.Refs = map[string]string{}
	}
	if idx.Images == nil {
		idx.Images = map[string]*imageEntry{}
	}
	if idx.Holds == nil {
		idx.Holds = map[string][]string{}
	}
	return idx, nil
}

// saveLocked writes the index atomically. s.mu must be held.
func (s *Store) saveLocked() error {
	b, err := json.MarshalIndent(s.idx, "", "\t")
	if err != nil {
		return err
	}
	return atomicfile.WriteFileDurable(s.path("index.json"), b, 0o600)
}
