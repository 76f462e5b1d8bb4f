package images

import (
	"context"
	"crypto/rand"
	"errors"
	"github.com/ctrfs/ctrfs/images/imagetest"
	"net"
	"os"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func startRegistry(t testing.TB) string { return imagetest.StartRegistry(t) }

func push(t testing.TB, ref string, img v1.Image) {
	t.Helper()
	if err := imagetest.Push(ref, img); err != nil {
		t.Fatal(err)
	}
}

func TestPullFromRegistry(t *testing.T) {
	needRoot(t)
	reg := startRegistry(t)
	img := testImage(t, "pulled")
	push(t, reg+"/test/bb:v1", img)

	// Plain HTTP is refused unless the registry is named insecure, even
	// for loopback addresses.
	strict := openStore(t, Options{})
	if _, err := strict.Pull(context.Background(), reg+"/test/bb:v1", PullOptions{}); !errors.Is(err, ErrRegistry) {
		t.Fatalf("pull over plain HTTP without --insecure-registry: %v", err)
	}

	s := openStore(t, Options{Insecure: []string{reg}})
	var calls int
	var last, total int64
	im, err := s.Pull(context.Background(), reg+"/test/bb:v1", PullOptions{Progress: func(d, tt int64) { calls++; last, total = d, tt }})
	if err != nil {
		t.Fatal(err)
	}
	checkTestImage(t, s, im, reg+"/test/bb:v1")
	if im.Digest != digestOf(t, img) {
		t.Errorf("digest %s, want %s", im.Digest, digestOf(t, img))
	}
	if calls == 0 || last != total || total != im.Size {
		t.Errorf("progress: %d calls, last %d of %d, image size %d", calls, last, total, im.Size)
	}
	// A second pull finds everything there.
	if _, err := s.Pull(context.Background(), reg+"/test/bb:v1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestPullMultiArchIndex(t *testing.T) {
	needRoot(t)
	reg := startRegistry(t)
	amd := testImage(t, "amd64")
	arm := withArch(t, testImage(t, "arm64"), "arm64")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	r, _ := name.ParseReference(reg+"/test/multi:v1", name.Insecure)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, Options{Insecure: []string{reg}, Platform: "linux/amd64"})
	im, err := s.Pull(context.Background(), reg+"/test/multi:v1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if im.Digest != digestOf(t, amd) {
		t.Fatalf("picked %s, want amd64's %s (arm64 is %s)", im.Digest, digestOf(t, amd), digestOf(t, arm))
	}
}

// TestPullThroughMirror: registry.k8s.io is served by the local registry
// as its mirror (a dead mirror first, to show the fall-through), and the
// image keeps its upstream name.
func TestPullThroughMirror(t *testing.T) {
	needRoot(t)
	reg := startRegistry(t)
	push(t, reg+"/e2e-test-images/busybox:1.29-2", testImage(t, "mirror"))
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	s := openStore(t, Options{Mirrors: map[string][]string{
		"registry.k8s.io": {"http://" + deadAddr, "http://" + reg},
	}})
	const ref = "registry.k8s.io/e2e-test-images/busybox:1.29-2"
	im, err := s.Pull(context.Background(), ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkTestImage(t, s, im, ref)
	if l := s.List(); len(l) != 1 || l[0].Ref != ref {
		t.Fatalf("List %+v, want only %s", l, ref)
	}
}

// BenchmarkPull100MB pulls and unpacks an image of one 100 MiB layer of
// random (incompressible) data from the local registry into a fresh store.
func BenchmarkPull100MB(b *testing.B) {
	needRoot(b)
	reg := startRegistry(b)
	data := make([]byte, 100<<20)
	rand.Read(data)
	l, err := tarball.LayerFromOpener(func() (ioReadCloser, error) {
		return nopCloser{bytesReaderOf(tarOf(b, file("random.bin", string(data))))}, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		b.Fatal(err)
	}
	push(b, reg+"/bench/random:100mb", img)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		s := openStore(b, Options{Insecure: []string{reg}})
		b.StartTimer()
		if _, err := s.Pull(context.Background(), reg+"/bench/random:100mb", PullOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(s.Root())
		b.StartTimer()
	}
}
