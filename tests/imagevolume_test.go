package tests

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrfs/ctrfs/images/imagetest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// volumeImage is testImage with a layer of symlinks: in → etc stays in the
// image, abs → /etc and up → ../../../../etc lead out of it.
func volumeImage(t *testing.T) v1.Image {
	t.Helper()
	l, err := imagetest.Layer(imagetest.Symlink("in", "etc"), imagetest.Symlink("abs", "/etc"),
		imagetest.Symlink("up", "../../../../../../etc"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(testImage(t, "volume"), l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// volumeDaemon is a daemon with test/base:v1 (testImage) and test/vol:v1
// (volumeImage) in its store.
func volumeDaemon(t *testing.T) *daemon {
	t.Helper()
	d := startDaemon(t)
	d.mustCtl("import test/base:v1 "+dockerSave(t, testImage(t, "base"), "test/base:v1")+"\n", "images")
	d.mustCtl("import test/vol:v1 "+dockerSave(t, volumeImage(t), "test/vol:v1")+"\n", "images")
	return d
}

// deleteHolding: container id holds test/vol:v1 (its remove is EBUSY)
// until it is deleted, which leaves no mount.
func deleteHolding(t *testing.T, d *daemon, id string) {
	t.Helper()
	d.wantCtlError("remove test/vol:v1\n", syscall.EBUSY, "in use", "images")
	d.mustCtl("delete " + id + "\n")
	if got := mountsUnder(d.state); len(got) != 0 {
		t.Errorf("mounts left after delete: %q", got)
	}
	d.mustCtl("remove test/vol:v1\n", "images")
}

// TestImageMount: `run ID --image REF --image-mount IMG:/PATH[:SUB]` mounts
// an image, or a path inside it, read-only and executable in the container;
// the container holds the image; delete unmounts it all.
func TestImageMount(t *testing.T) {
	d := volumeDaemon(t)
	id := newID("imgmnt")
	d.mustCtl("run " + id + " --image test/base:v1 --image-mount test/vol:v1:/vol --image-mount test/vol:v1:/etc2:etc" +
		" --image-mount test/vol:v1:/in:in --image-mount test/vol:v1:/hello:hello.txt --image-mount test/vol:v1:/dot:./opq/" +
		" -- sh -c 'cat /hello.txt /vol/hello.txt /hello; ls /etc2/passwd /in/group /dot; touch /vol/x 2>/dev/null || echo ro; /vol/bin/busybox echo exec-ok'\n")
	d.waitState(id, "stopped")
	if out, want := d.read(id, "processes", "init", "stdout"), "base\nvolume\nvolume\n/etc2/passwd\n/in/group\n\n/dot:\nupper.txt\nro\nexec-ok\n"; out != want {
		t.Errorf("stdout %q, want %q\n%s", out, want, d.read(id, "processes", "init", "stderr"))
	}
	vols := filepath.Join(d.state, id, "bundle", "volumes")
	if got := mountsUnder(vols); len(got) != 5 {
		t.Errorf("volumes mounted: %q, want 5", got)
	}
	if cfg := d.read(id, "config.json"); !strings.Contains(cfg, `"destination": "/etc2"`) || !strings.Contains(cfg, "volumes/1/root/etc") {
		t.Errorf("config.json lacks the image mount:\n%s", cfg)
	}
	deleteHolding(t, d, id)
}

// TestImageMountRestart: the image volumes of a container survive kill -9
// of the daemon and the loss of their mounts (a reboot): the restarted
// daemon mounts them again, and delete unmounts them.
func TestImageMountRestart(t *testing.T) {
	d := volumeDaemon(t)
	id := newID("imgmnt-rs")
	d.mustCtl("create " + id + " --image test/base:v1 --image-mount test/vol:v1:/vol:etc -- cat /vol/group\n")
	root := filepath.Join(d.state, id, "bundle", "volumes", "0", "root")
	d.kill()
	if err := unix.Unmount(root, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	d.restart()
	if !isMounted(root) {
		t.Fatalf("%s not mounted again after the restart", root)
	}
	d.mustCtl("start\n", id)
	d.waitState(id, "stopped")
	if out := d.read(id, "processes", "init", "stdout"); !strings.HasPrefix(out, "root:x:0:") {
		t.Errorf("stdout %q", out)
	}
	deleteHolding(t, d, id)
}

// TestImageMountBadInput: the errno and the text on the same fd, and
// nothing left: no container, no state directory, no mount.
func TestImageMountBadInput(t *testing.T) {
	d := volumeDaemon(t)
	base := "create b1 --image test/base:v1 --image-mount "
	for _, c := range []struct {
		cmd   string
		errno syscall.Errno
		want  string
	}{
		{base + "nosuch/img:v1:/v", syscall.ENOENT, "not in the store"},
		{base + "test/vol:v1:rel", syscall.EINVAL, "REF:/PATH"},
		{base + "test/vol:v1:/", syscall.EINVAL, "root"},
		{base + "test/vol:v1:/v:", syscall.EINVAL, "empty sub-path"},
		{base + "test/vol:v1:/v:../etc", syscall.EINVAL, `".."`},
		{base + "test/vol:v1:/v:etc/../..", syscall.EINVAL, `".."`},
		{base + "test/vol:v1:/v:/etc", syscall.EINVAL, "relative"},
		{base + "test/vol:v1:/v:abs", syscall.EINVAL, "leads out of the image"},
		{base + "test/vol:v1:/v:abs/passwd", syscall.EINVAL, "leads out of the image"},
		{base + "test/vol:v1:/v:up", syscall.EINVAL, "leads out of the image"},
		{base + "test/vol:v1:/v:nosuch", syscall.ENOENT, "not in the image"},
		{base + "test/vol:v1:/v:hello.txt/x", syscall.ENOENT, "not in the image"},
		{base + "test/vol:v1:/v --image-mount test/vol:v1:/v/", syscall.EINVAL, "twice"},
		{"create b1 /some/bundle --image-mount test/vol:v1:/v", syscall.EINVAL, "--image only"},
		{"create b1 --image test/base:v1 --image-mount", syscall.EINVAL, "--image-mount"},
	} {
		d.wantCtlError(c.cmd+"\n", c.errno, c.want)
	}
	d.checkNoContainers(t)
	if got := mountsUnder(d.state); len(got) != 0 {
		t.Errorf("mounts left: %q", got)
	}
	// No hold is left either: the image can go.
	d.mustCtl("remove test/vol:v1\n", "images")
}
