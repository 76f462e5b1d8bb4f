package images

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"

	"io"
	"os"

	"github.com/klauspost/compress/zstd"
)

// putBlob stores the blob digest read from open(), unless it is there
// already: downloaded to tmp/, its digest and size checked, fsynced, renamed
// into blobs/. A crash leaves a temp file that Open removes, never a blob
// with the wrong content. count is told of every byte read.
func (s *Store) putBlob(digest string, size int64, open func() (io.ReadCloser, error), count func(int64)) error {
	if !isDigest(digest) {
		return errorf(ErrInvalid, "bad blob digest %q", digest)
	}
	unlock := s.keys.lock("blob " + digest)
	defer unlock()
	dst := s.blobPath(digest)
	if _, err := os.Stat(dst); err == nil {
		if count != nil {
			count(size)
		}
		return nil
	}
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(s.path("tmp"), "blob-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op once renamed
	h := sha256.New()
	var r io.Reader = rc
	if count != nil {
		r = &countingReader{r: r, count: count}
	}
	// The descriptor's size bounds the download: a registry that sends
	// more is refused rather than trusted.
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size+1))
	if err == nil && n != size {
		err = errorf(ErrInvalid, "blob %s: %d bytes, the manifest says %d", digest, n, size)
	}
	if err == nil {
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
			err = errorf(ErrInvalid, "blob %s: content has digest %s", digest, got)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

// putBlobBytes stores a small blob (a manifest or config) held in memory.
func (s *Store) putBlobBytes(digest string, b []byte) error {
	return s.putBlob(digest, int64(len(b)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, nil)
}

// openLayerBlob opens a stored layer blob and returns its uncompressed tar
// stream, whatever its compression (gzip, zstd or none, told by its magic
// rather than by the media type a registry claims).
func (s *Store) openLayerBlob(digest string) (io.ReadCloser, error) {
	f, err := os.Open(s.blobPath(digest))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errorf(ErrNotFound, "blob %s: not in the store", digest)
		}
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, wrapf(ErrInvalid, err, "layer %s", digest)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	case len(magic) == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, wrapf(ErrInvalid, err, "layer %s", digest)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	return readCloser{br, f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

type countingReader struct {
	r     io.Reader
	count func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.count(int64(n))
	}
	return n, err
}
