package images

import (
	"archive/tar"
	"bytes"
	"github.com/ctrfs/ctrfs/images/imagetest"
	"io"
	"os"
	"testing"
	"time"
)

// needRoot skips a test that needs root (chown, mknod, trusted xattrs,
// mounts), or fails it when CTRFS_REQUIRE_INTEGRATION=1.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}

func skipOrFail(t testing.TB, why string) {
	t.Helper()
	imagetest.SkipOrFail(t, why)
}

// tarOf makes a tar of the given headers; a regular file's content is its
// Linkname field misused as body when Size is 0 (keeps tables short).
type entry struct {
	hdr  tar.Header
	body string
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	es := make([]imagetest.Entry, len(entries))
	for i, e := range entries {
		es[i] = imagetest.Entry{Hdr: e.hdr, Body: e.body}
	}
	b, err := imagetest.Tar(es...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func file(name, body string) entry { return entry{hdr: tar.Header{Name: name}, body: body} }
func dir(name string) entry        { return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir}} }
func symlink(name, to string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}}
}
func hardlink(name, to string) entry {
	return entry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: to}}
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0) }

type ioReadCloser = io.ReadCloser

type nopCloser struct{ io.Reader }

func (nopCloser) Close() error { return nil }

func bytesReaderOf(b []byte) io.Reader { return bytes.NewReader(b) }
