package images

import (
	"archive/tar"
	"bytes"
	"os"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// busyboxBytes is the host's static busybox, the one program test images
// run; tests that need it skip (or fail under CTRFS_REQUIRE_INTEGRATION=1)
// without it.
func busyboxBytes(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("/bin/busybox")
	if err != nil {
		skipOrFail(t, "needs /bin/busybox (apt-get install busybox-static): "+err.Error())
	}
	return b
}

func layerOf(t testing.TB, entries ...entry) v1.Layer {
	t.Helper()
	b := tarOf(t, entries...)
	l, err := tarball.LayerFromOpener(func() (ioReadCloser, error) { return nopCloser{bytes.NewReader(b)}, nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage is a two-layer busybox image: the lower layer has the shell, a
// passwd, gone.txt and opq/lower.txt; the upper one deletes gone.txt
// (whiteout), makes opq opaque with opq/upper.txt, and adds hello.txt
// (whose content is the marker, so images differ by it).
func testImage(t testing.TB, marker string) v1.Image {
	t.Helper()
	bb := busyboxBytes(t)
	l1 := layerOf(t,
		dir("bin"),
		entry{hdr: tar.Header{Name: "bin/busybox", Mode: 0o755}, body: string(bb)},
		symlink("bin/sh", "busybox"),
		symlink("bin/cat", "busybox"),
		symlink("bin/ls", "busybox"),
		symlink("bin/id", "busybox"),
		dir("etc"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"),
		file("etc/group", "root:x:0:\napp:x:1001:\nextra:x:2000:app\n"),
		file("gone.txt", "deleted in the upper layer\n"),
		dir("opq"),
		file("opq/lower.txt", "hidden by the opaque dir\n"),
	)
	l2 := layerOf(t,
		file(".wh.gone.txt", ""),
		dir("opq"),
		file("opq/.wh..wh..opq", ""),
		file("opq/upper.txt", "upper\n"),
		file("hello.txt", marker+"\n"),
	)
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = v1.Time{Time: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	cf.Config = v1.Config{
		Cmd:        []string{"/bin/cat", "/hello.txt"},
		Env:        []string{"PATH=/bin", "FOO=bar"},
		WorkingDir: "/opq",
		Labels:     map[string]string{"org.example.test": "yes"},
		StopSignal: "SIGINT",
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withArch is img with another architecture in its config.
func withArch(t testing.TB, img v1.Image, arch string) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}
