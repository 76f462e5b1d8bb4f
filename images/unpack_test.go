package images

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var testLimits = unpackLimits{bytes: 1 << 20, entries: 100}

// TestUnpackRefusesHostileLayers: each crafted layer fails with a clear
// error of the right kind and writes nothing outside the layer directory.
func TestUnpackRefusesHostileLayers(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name    string
		entries []entry
		lim     unpackLimits
		kind    error
		msg     string
	}{
		{"absolute name", []entry{file("/etc/evil", "x")}, testLimits, ErrUnsafe, "absolute name"},
		{"dotdot escape", []entry{file("a/../../evil", "x")}, testLimits, ErrUnsafe, `".."`},
		{"symlink out then write through", []entry{symlink("link", "/OUTSIDE"), file("link/evil", "x")}, testLimits, ErrUnsafe, "leads out of the layer"},
		{"relative symlink out then write through", []entry{symlink("link", "../OUTSIDE"), file("link/evil", "x")}, testLimits, ErrUnsafe, "leads out of the layer"},
		{"symlink chain out", []entry{dir("d"), symlink("d/up", ".."), symlink("d/up2", "up/.."), file("d/up2/OUTSIDE/evil", "x")}, testLimits, ErrUnsafe, "leads out of the layer"},
		{"hardlink to outside", []entry{hardlink("h", "../OUTSIDE/target")}, testLimits, ErrUnsafe, "outside the layer"},
		{"hardlink to absolute", []entry{hardlink("h", "/etc/passwd")}, testLimits, ErrUnsafe, "outside the layer"},
		{"hardlink through symlink out", []entry{symlink("l", "/"), hardlink("h", "l/OUTSIDE/target")}, testLimits, ErrUnsafe, "leads out of the layer"},
		{"over the byte limit", []entry{file("big", strings.Repeat("x", 4096))}, unpackLimits{bytes: 1000, entries: 100}, ErrTooBig, "limit of 1000 bytes"},
		{"over the entry limit", []entry{file("a", ""), file("b", ""), file("c", "")}, unpackLimits{bytes: 1000, entries: 2}, ErrTooBig, "limit of 2 entries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			outside := filepath.Join(base, "OUTSIDE")
			os.Mkdir(outside, 0o755)
			os.WriteFile(filepath.Join(outside, "target"), []byte("secret"), 0o600)
			layer := filepath.Join(base, "a", "b", "layer")
			os.MkdirAll(layer, 0o755)
			// "/OUTSIDE" resolves on the host's root: make it point at
			// our outside dir so a wrong unpack would show there.
			_, err := unpackLayer(bytes.NewReader(tarOf(t, tt.entries...)), layer, tt.lim)
			if err == nil {
				t.Fatal("unpack succeeded")
			}
			if !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %q (kind ok: %v), want kind %v with %q", err, errors.Is(err, tt.kind), tt.kind, tt.msg)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Fatalf("outside dir changed: %v", ents)
			}
			if _, err := os.Stat("/OUTSIDE"); err == nil {
				t.Fatal("/OUTSIDE was made")
			}
			if _, err := os.Stat("/etc/evil"); err == nil {
				t.Fatal("/etc/evil was made")
			}
			var st unix.Stat_t
			unix.Stat(filepath.Join(outside, "target"), &st)
			if st.Nlink != 1 {
				t.Fatalf("outside target has %d links", st.Nlink)
			}
		})
	}
}

// TestUnpackEndlessLayer: a stream that never ends is cut at the limit.
func TestUnpackEndlessLayer(t *testing.T) {
	needRoot(t)
	_, err := unpackLayer(zeroReader{}, t.TempDir(), unpackLimits{bytes: 1 << 16, entries: 10})
	if !errors.Is(err, ErrTooBig) && !errors.Is(err, ErrInvalid) {
		t.Fatalf("endless zeros: %v", err)
	}
	// A tar whose one file claims a huge (sparse-like) size.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Size: 1 << 40, Mode: 0o644})
	r := io.MultiReader(&buf, zeroReader{})
	_, err = unpackLayer(r, t.TempDir(), unpackLimits{bytes: 1 << 16, entries: 10})
	if !errors.Is(err, ErrTooBig) {
		t.Fatalf("huge file: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestUnpackKeepsWhatTheImageSays: whiteouts become overlay whiteouts, an
// opaque dir gets its xattr, devices, setuid bits, owners, times, in-layer
// symlinks and hard links are kept.
func TestUnpackKeepsWhatTheImageSays(t *testing.T) {
	needRoot(t)
	layer := t.TempDir()
	mt := int64(1_600_000_000)
	entries := []entry{
		dir("etc"),
		{hdr: tar.Header{Name: "etc/conf", Uid: 1234, Gid: 5678, Mode: 0o640, ModTime: unixTime(mt)}, body: "conf"},
		{hdr: tar.Header{Name: "bin/su", Mode: 0o4755}, body: "su"},
		{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}},
		symlink("etc/link", "/etc/conf"),
		hardlink("etc/hard", "etc/conf"),
		file("gone/.wh.deleted", ""),
		file("opaque/.wh..wh..opq", ""),
		file("opaque/new", "new"),
		{hdr: tar.Header{Name: "x", PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.overlay.redirect": "/etc"}}, body: "x"},
	}
	res, err := unpackLayer(bytes.NewReader(tarOf(t, entries...)), layer, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.diffID, "sha256:") || res.bytes != int64(len("conf")+len("su")+len("new")+1) {
		t.Fatalf("result %+v", res)
	}
	var st unix.Stat_t
	must := func(p string) *unix.Stat_t {
		t.Helper()
		if err := unix.Lstat(filepath.Join(layer, p), &st); err != nil {
			t.Fatal(err)
		}
		return &st
	}
	if s := must("etc/conf"); s.Uid != 1234 || s.Gid != 5678 || s.Mode&0o7777 != 0o640 || s.Mtim.Sec != mt || s.Nlink != 2 {
		t.Errorf("etc/conf: uid %d gid %d mode %o mtime %d nlink %d", s.Uid, s.Gid, s.Mode&0o7777, s.Mtim.Sec, s.Nlink)
	}
	if s := must("bin/su"); s.Mode&0o7777 != 0o4755 {
		t.Errorf("bin/su mode %o, want setuid 4755", s.Mode&0o7777)
	}
	if s := must("dev/null"); s.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(s.Rdev) != 1 || unix.Minor(s.Rdev) != 3 {
		t.Errorf("dev/null: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if l, _ := os.Readlink(filepath.Join(layer, "etc/link")); l != "/etc/conf" {
		t.Errorf("etc/link -> %q", l)
	}
	if s := must("gone/deleted"); s.Mode&unix.S_IFMT != unix.S_IFCHR || s.Rdev != 0 || s.Uid != 0 {
		t.Errorf("whiteout: mode %o rdev %d", s.Mode, s.Rdev)
	}
	if _, err := os.Lstat(filepath.Join(layer, "gone/.wh.deleted")); err == nil {
		t.Error(".wh. file made as itself")
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(layer, "opaque"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr: %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(layer, "opaque/.wh..wh..opq")); err == nil {
		t.Error("opaque marker made as a file")
	}
	if n, err := unix.Lgetxattr(filepath.Join(layer, "x"), "user.k", buf); err != nil || string(buf[:n]) != "v" {
		t.Errorf("user xattr: %q %v", buf[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(layer, "x"), "trusted.overlay.redirect", buf); err == nil {
		t.Error("an image's trusted.overlay xattr was kept")
	}
}
