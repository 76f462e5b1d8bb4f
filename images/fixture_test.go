package images

import (
	"bytes"
	"github.com/ctrfs/ctrfs/images/imagetest"
	"os"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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

// testImage is imagetest's two-layer busybox image (a whiteout, an opaque
// dir), with marker in hello.txt.
func testImage(t testing.TB, marker string) v1.Image {
	t.Helper()
	img, err := imagetest.Image(busyboxBytes(t), marker)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withArch is img with another architecture in its config.
func withArch(t testing.TB, img v1.Image, arch string) v1.Image {
	t.Helper()
	img, err := imagetest.WithArch(img, arch)
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
