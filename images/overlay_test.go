package images

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestOverlayRootfs mounts the two layers of the test image: the whiteout
// hides gone.txt, the opaque dir hides opq/lower.txt, writes go to the
// container's upper dir, and removal leaves the layers as they were.
func TestOverlayRootfs(t *testing.T) {
	needRoot(t)
	s := openStore(t, Options{})
	p := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("ov:1")
	if err := tarball.WriteToFile(p, tag, testImage(t, "overlay")); err != nil {
		t.Fatal(err)
	}
	im, err := s.Import(context.Background(), "ov:1", p)
	if err != nil {
		t.Fatal(err)
	}
	ctr := filepath.Join(t.TempDir(), "ctr1")
	rootfs, err := PrepareRootfs(ctr, im)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Unmount(rootfs) })
	if again, err := PrepareRootfs(ctr, im); err != nil || again != rootfs {
		t.Fatalf("second prepare: %q %v", again, err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "gone.txt")); !os.IsNotExist(err) {
		t.Errorf("gone.txt visible: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(rootfs, "opq/lower.txt")); !os.IsNotExist(err) {
		t.Errorf("opq/lower.txt visible through the opaque dir: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "opq/upper.txt")); err != nil || string(b) != "upper\n" {
		t.Errorf("opq/upper.txt: %q %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "hello.txt")); err != nil || string(b) != "overlay\n" {
		t.Errorf("hello.txt: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin/busybox")); err != nil {
		t.Error(err)
	}
	os.WriteFile(filepath.Join(rootfs, "new.txt"), []byte("x"), 0o644)
	if _, err := os.Stat(filepath.Join(ctr, "upper/new.txt")); err != nil {
		t.Errorf("write did not go to upper: %v", err)
	}
	if err := RemoveRootfs(ctr); err != nil {
		t.Fatal(err)
	}
	if err := RemoveRootfs(ctr); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ctr, "upper")); !os.IsNotExist(err) {
		t.Errorf("upper left: %v", err)
	}
	if _, err := os.Stat(filepath.Join(im.Layers[0].Dir, "opq/lower.txt")); err != nil {
		t.Errorf("lower layer changed: %v", err)
	}
}
