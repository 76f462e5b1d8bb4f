// Package images is ctrfs's image store: content-addressed blobs, layers
// unpacked once each (keyed by chain id, ready to be overlayfs lower
// directories), an index of references, and what running from an image needs
// (an OCI spec from the image config, an overlay rootfs). See docs/images.md.
package images

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Limits bound what one layer or image may unpack to; archives and registries
// are hostile. Zero fields take the defaults below.
type Limits struct {
	LayerBytes   int64 // bytes of file data one layer may unpack to
	ImageBytes   int64 // bytes of file data all of an image's layers may unpack to
	LayerEntries int64 // tar entries in one layer
	JSONBytes    int64 // a manifest, config or index
}

// The default limits (docs/images.md).
const (
	DefaultLayerBytes   = 16 << 30
	DefaultImageBytes   = 32 << 30
	DefaultLayerEntries = 1 << 20
	DefaultJSONBytes    = 4 << 20
)

func (l Limits) withDefaults() Limits {
	if l.LayerBytes <= 0 {
		l.LayerBytes = DefaultLayerBytes
	}
	if l.ImageBytes <= 0 {
		l.ImageBytes = DefaultImageBytes
	}
	if l.LayerEntries <= 0 {
		l.LayerEntries = DefaultLayerEntries
	}
	if l.JSONBytes <= 0 {
		l.JSONBytes = DefaultJSONBytes
	}
	return l
}

// Options configure a Store; they are the daemon's image options.
type Options struct {
	// AuthFile is a docker-style config.json with registry credentials
	// ("auths"); empty means anonymous pulls only.
	AuthFile string
	// Insecure lists registries ("127.0.0.1:5000") spoken to over plain HTTP.
	Insecure []string
	// Mirrors maps a registry ("registry.k8s.io", "docker.io") to mirror
	// endpoints ("http://127.0.0.1:5000"), tried in order before the
	// registry itself, with the same repository paths.
	Mirrors map[string][]string
	// Limits bound unpacking.
	Limits Limits
	// Platform is the platform picked from multi-arch indexes; empty
	// means the host's (linux/runtime.GOARCH).
	Platform string
}

// Store is an image store rooted at a directory (<state>/images):
//
//	blobs/sha256/<hex>          manifests, configs, compressed layers
//	layers/sha256/<chainid>/    one unpacked layer, an overlayfs lowerdir
//	index.json                  references, images and holds
//	tmp/                        downloads and unpacks in progress
//
// Lock order: layerLocks/blobLocks before mu; mu is never held across I/O
// other than the index write.
type Store struct {
	root   string
	opts   Options
	limits Limits

	keys keyedLocks // per blob digest and per chain id: one fetch, one unpack

	mu         sync.Mutex // protects all following fields
	idx        *index
	pins       map[string]int   // "blob <digest>" / "layer <chainid>" in use by an ingest
	layerBytes map[string]int64 // chain id -> unpacked bytes, of layers on disk
}

// Open opens (creating if needed) the store at root, removes what a crash
// left in tmp/ and collects blobs and layers no image references.
func Open(root string, opts Options) (*Store, error) {
	s := &Store{root: root, opts: opts, limits: opts.Limits.withDefaults(),
		pins: map[string]int{}, layerBytes: map[string]int64{}}
	// A missing, hostile or unreadable auth file stops the daemon's start
	// rather than its first pull.
	if opts.AuthFile != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := readAuthFile(ctx, opts.AuthFile, s.limits.JSONBytes)
		cancel()
		if err != nil {
			return nil, err
		}
	}
	for _, d := range []string{"", "blobs/sha256", "layers/sha256", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, err
		}
	}
	// Everything in tmp/ is a pull or unpack that did not finish.
	if err := os.RemoveAll(s.path("tmp")); err != nil {
		return nil, fmt.Errorf("images: clean tmp: %w", err)
	}
	if err := os.Mkdir(s.path("tmp"), 0o700); err != nil {
		return nil, err
	}
	// And an index write that did not finish.
	if olds, err := filepath.Glob(s.path(".tmp-*")); err == nil {
		for _, o := range olds {
			os.Remove(o)
		}
	}
	idx, err := loadIndex(s.path("index.json"))
	if err != nil {
		return nil, err
	}
	s.idx = idx
	for _, im := range idx.Images {
		for _, l := range im.Layers {
			s.layerBytes[l.ChainID] = l.Unpacked
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.gcLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.root}, elem...)...)
}

func (s *Store) blobPath(digest string) string {
	return s.path("blobs", "sha256", digest[len("sha256:"):])
}

// LayerDir is the unpacked tree of the layer with the given chain id.
func (s *Store) LayerDir(chainID string) string {
	return s.path("layers", "sha256", chainID[len("sha256:"):])
}

// keyedLocks is a mutex per key, made on demand and dropped when unused.
type keyedLocks struct {
	mu sync.Mutex // protects m
	m  map[string]*keyedLock
}

type keyedLock struct {
	mu    sync.Mutex
	users int // guarded by keyedLocks.mu
}

func (k *keyedLocks) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*keyedLock{}
	}
	l := k.m[key]
	if l == nil {
		l = &keyedLock{}
		k.m[key] = l
	}
	l.users++
	k.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		k.mu.Lock()
		if l.users--; l.users == 0 {
			delete(k.m, key)
		}
		k.mu.Unlock()
	}
}
