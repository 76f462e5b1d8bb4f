package images

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

func openStore(t testing.TB, opts Options) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "images"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkTestImage checks an ingested testImage: its layers unpacked with the
// whiteout and the opaque dir as overlayfs wants them, its ref listed.
func checkTestImage(t testing.TB, s *Store, im *Image, ref string) {
	t.Helper()
	if len(im.Layers) != 2 {
		t.Fatalf("%d layers", len(im.Layers))
	}
	for _, l := range im.Layers {
		if _, err := os.Stat(l.Dir); err != nil {
			t.Fatalf("layer %s: %v", l.ChainID, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(im.Layers[1].Dir, "gone.txt"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Fatalf("whiteout of gone.txt: %v mode %o", err, st.Mode)
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(im.Layers[1].Dir, "opq"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque opq: %q %v", buf[:n], err)
	}
	if b, err := os.ReadFile(filepath.Join(im.Layers[0].Dir, "bin/busybox")); err != nil || len(b) < 100000 {
		t.Fatalf("busybox in layer 0: %d bytes, %v", len(b), err)
	}
	found := false
	for _, e := range s.List() {
		if e.Ref == ref && e.Digest == im.Digest {
			found = true
		}
	}
	if !found {
		t.Fatalf("List has no %s -> %s: %+v", ref, im.Digest, s.List())
	}
	m, err := s.Manifest(im.Digest)
	if err != nil || sha256Digest(m) != im.Digest {
		t.Fatalf("manifest: %v", err)
	}
}

func TestImportDockerSave(t *testing.T) {
	needRoot(t)
	img := testImage(t, "docker-save")
	p := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("example.com/test/bb:save")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Options{})
	im, err := s.Import(context.Background(), "example.com/test/bb:save", p)
	if err != nil {
		t.Fatal(err)
	}
	checkTestImage(t, s, im, "example.com/test/bb:save")
	if im.Digest != digestOf(t, img) {
		t.Errorf("digest %s, want the image's %s", im.Digest, digestOf(t, img))
	}
}

func writeLayout(t testing.TB, dir string, imgs ...v1.Image) {
	t.Helper()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		cf, _ := img.ConfigFile()
		if err := lp.AppendImage(img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: cf.Architecture})); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImportOCILayoutAndArchive(t *testing.T) {
	needRoot(t)
	img := testImage(t, "layout")
	arm := withArch(t, testImage(t, "layout-arm64"), "arm64")
	dir := filepath.Join(t.TempDir(), "layout")
	writeLayout(t, dir, arm, img)
	s := openStore(t, Options{Platform: "linux/amd64"})
	im, err := s.Import(context.Background(), "layout:dir", dir)
	if err != nil {
		t.Fatal(err)
	}
	checkTestImage(t, s, im, "docker.io/library/layout:dir")
	if im.Digest != digestOf(t, img) {
		t.Errorf("picked %s, want the amd64 image %s", im.Digest, digestOf(t, img))
	}

	archive := filepath.Join(t.TempDir(), "oci.tar")
	tarDir(t, dir, archive)
	im2, err := s.Import(context.Background(), "layout:archive", archive)
	if err != nil {
		t.Fatal(err)
	}
	if im2.Digest != im.Digest {
		t.Errorf("archive gave %s, dir %s", im2.Digest, im.Digest)
	}
	if got := s.Images(); len(got) != 1 {
		t.Errorf("images %v, want one shared", got)
	}
}

// tarDir writes dir's files as a tar at out.
func tarDir(t testing.TB, dir, out string) {
	t.Helper()
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, _ := tar.FileInfoHeader(fi, "")
		hdr.Name = rel
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			tw.Write(b)
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestImportRefusesHostileArchives(t *testing.T) {
	needRoot(t)
	s := openStore(t, Options{})
	tmp := t.TempDir()
	ctx := context.Background()

	link := filepath.Join(tmp, "link.tar")
	os.Symlink("/etc/passwd", link)
	if _, err := s.Import(ctx, "x:1", link); !errors.Is(err, ErrUnsafe) {
		t.Errorf("symlinked archive: %v", err)
	}

	escape := filepath.Join(tmp, "escape.tar")
	os.WriteFile(escape, tarOf(t, file("oci-layout", "{}"), file("../evil", "x")), 0o644)
	if _, err := s.Import(ctx, "x:1", escape); !errors.Is(err, ErrUnsafe) {
		t.Errorf("archive with ../: %v", err)
	}

	huge := filepath.Join(tmp, "huge.tar")
	os.WriteFile(huge, tarOf(t, file("manifest.json", strings.Repeat(" ", 5<<20))), 0o644)
	if _, err := s.Import(ctx, "x:1", huge); !errors.Is(err, ErrTooBig) {
		t.Errorf("huge manifest.json: %v", err)
	}

	// A layout whose blob is a symlink to a host file.
	dir := filepath.Join(tmp, "layout")
	writeLayout(t, dir, testImage(t, "symlinked"))
	blobs, _ := filepath.Glob(filepath.Join(dir, "blobs/sha256/*"))
	os.Remove(blobs[0])
	os.Symlink("/etc/shadow", blobs[0])
	if _, err := s.Import(ctx, "x:1", dir); !errors.Is(err, ErrUnsafe) {
		t.Errorf("layout with a symlinked blob: %v", err)
	}

	// An image whose layer escapes: refused, and nothing of it stays.
	bad, err := mutate.AppendLayers(empty.Image, layerOf(t, file("ok", "fine")), layerOf(t, file("../../evil", "x")))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tmp, "bad.tar")
	tag, _ := name.NewTag("bad:1")
	if err := tarball.WriteToFile(p, tag, bad); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Import(ctx, "bad:1", p); !errors.Is(err, ErrUnsafe) || !strings.Contains(err.Error(), `"../../evil"`) {
		t.Errorf("escaping layer: %v", err)
	}
	assertEmpty(t, s)
}

// assertEmpty checks the store holds nothing: no refs, blobs, layers or tmp.
func assertEmpty(t testing.TB, s *Store) {
	t.Helper()
	for _, d := range []string{"blobs/sha256", "layers/sha256", "tmp"} {
		ents, _ := os.ReadDir(s.path(d))
		if len(ents) != 0 {
			t.Errorf("%s not empty: %v", d, ents)
		}
	}
	if l := s.List(); len(l) != 0 {
		t.Errorf("List: %+v", l)
	}
}

// TestSharedLayersHoldsAndCollection: two images sharing a layer, imported
// concurrently, unpack it once; tag, holds, Busy, and collection.
func TestSharedLayersHoldsAndCollection(t *testing.T) {
	needRoot(t)
	s := openStore(t, Options{})
	ctx := context.Background()
	var paths []string
	for _, m := range []string{"one", "two"} {
		p := filepath.Join(t.TempDir(), m+".tar")
		tag, _ := name.NewTag("img:" + m)
		if err := tarball.WriteToFile(p, tag, testImage(t, m)); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var wg sync.WaitGroup
	ims := make([]*Image, 2)
	errs := make([]error, 2)
	for i, m := range []string{"one", "two"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ims[i], errs[i] = s.Import(ctx, "img:"+m, paths[i])
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if ims[0].Layers[0].ChainID != ims[1].Layers[0].ChainID || ims[0].Layers[1].ChainID == ims[1].Layers[1].ChainID {
		t.Fatal("layers not shared as expected")
	}
	if ents, _ := os.ReadDir(s.path("layers/sha256")); len(ents) != 3 {
		t.Fatalf("%d unpacked layers, want 3", len(ents))
	}

	one := ims[0].Digest
	if err := s.Tag("img:one", "other/name:v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire("img:one", "ctr1"); err != nil {
		t.Fatal(err)
	}
	// One of two refs may go; the last one of a held image may not.
	if err := s.Remove("other/name:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("img:one"); !errors.Is(err, ErrBusy) {
		t.Fatalf("remove of a held image: %v", err)
	}
	if err := s.Remove(one); !errors.Is(err, ErrBusy) {
		t.Fatalf("remove by digest of a held image: %v", err)
	}
	// Retagging away its last ref keeps a held image.
	if err := s.Tag("img:two", "img:one"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(one); err != nil {
		t.Fatalf("held image collected: %v", err)
	}
	// Holds survive a reopen.
	s2, err := Open(s.Root(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h := s2.Holds(); len(h["ctr1"]) != 1 || h["ctr1"][0] != one {
		t.Fatalf("holds after reopen: %v", h)
	}
	if err := s2.Release(one, "ctr1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Get(one); !errors.Is(err, ErrNotFound) {
		t.Fatalf("released unnamed image: %v", err)
	}
	if ents, _ := os.ReadDir(s2.path("layers/sha256")); len(ents) != 2 {
		t.Fatalf("%d layers after collection, want 2", len(ents))
	}
	if err := s2.Remove("img:two"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Remove("img:one"); err != nil {
		t.Fatal(err)
	}
	if err := s2.Remove("img:one"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove twice: %v", err)
	}
	assertEmpty(t, s2)
}

func TestOpenCleansLeftovers(t *testing.T) {
	root := filepath.Join(t.TempDir(), "images")
	if _, err := Open(root, Options{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "tmp/blob-123"), []byte("half"), 0o600)
	os.MkdirAll(filepath.Join(root, "tmp/layer-1/usr"), 0o700)
	os.MkdirAll(filepath.Join(root, "layers/sha256", strings.Repeat("a", 64), "etc"), 0o700)
	os.WriteFile(filepath.Join(root, "blobs/sha256", strings.Repeat("b", 64)), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(root, ".tmp-index.json-1"), []byte("{"), 0o600)
	s, err := Open(root, Options{})
	if err != nil {
		t.Fatal(err)
	}
	assertEmpty(t, s)
	if m, _ := filepath.Glob(filepath.Join(root, ".tmp-*")); len(m) != 0 {
		t.Errorf("temp index left: %v", m)
	}
}

func TestParseRef(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                        "docker.io/library/busybox:latest",
		"busybox:1.36":                   "docker.io/library/busybox:1.36",
		"docker.io/library/busybox:1.36": "docker.io/library/busybox:1.36",
		"index.docker.io/user/app":       "docker.io/user/app:latest",
		"registry.k8s.io/pause:3.9":      "registry.k8s.io/pause:3.9",
		"127.0.0.1:5000/a/b:c":           "127.0.0.1:5000/a/b:c",
		"busybox@sha256:" + hex64("0"):   "docker.io/library/busybox@sha256:" + hex64("0"),
	} {
		r, err := ParseRef(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRef(%q) = %q, %v; want %q", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "Upper/Case", "a b", "x:y:z:w", "busybox@sha256:12"} {
		if _, err := ParseRef(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRef(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func hex64(c string) string { return strings.Repeat(c, 64) }

func TestAuthFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "config.json")
	os.WriteFile(p, []byte(`{"auths":{"127.0.0.1:5000":{"auth":"dXNlcjpwYXNz"},"https://index.docker.io/v1/":{"username":"hub","password":"pw"}}}`), 0o600)
	af, err := readAuthFile(context.Background(), p, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	k := fileKeychain{file: af}
	for reg, want := range map[string]string{"127.0.0.1:5000": "user:pass", "index.docker.io": "hub:pw", "other.io": ":"} {
		r, _ := name.NewRegistry(reg)
		a, err := k.Resolve(r)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := a.Authorization()
		if got := c.Username + ":" + c.Password; got != want {
			t.Errorf("%s: %q, want %q", reg, got, want)
		}
	}
}

var _ = io.EOF
