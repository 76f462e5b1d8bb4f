// Command mkimage writes a `docker save` tarball of a small image built from
// the host's static busybox (imagetest.Image: two layers, a whiteout, an
// opaque directory), for `make run`'s demo: no network needed.
//
//	go run ./tests/mkimage /var/lib/ctrfs/images-demo/demo.tar demo:latest
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/ctrfs/ctrfs/images/imagetest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mkimage FILE.tar REF")
		os.Exit(2)
	}
	if err := mkimage(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func mkimage(path, ref string) error {
	bb, err := os.ReadFile(imagetest.BusyboxPath)
	if err != nil {
		return fmt.Errorf("%w (apt-get install busybox-static)", err)
	}
	img, err := imagetest.Image(bb, "hello from an image")
	if err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return tarball.WriteToFile(path, tag, img)
}
