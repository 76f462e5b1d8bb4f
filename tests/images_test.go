package tests

import (
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrfs/ctrfs/images/imagetest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"
)

// testImage is imagetest's two-layer busybox image for this host's
// architecture: /hello.txt holds marker, gone.txt is whited out, /opq is
// opaque (only upper.txt), Cmd `cat /hello.txt`, WorkingDir /opq, FOO=bar.
func testImage(tb testing.TB, marker string) v1.Image {
	tb.Helper()
	bb, err := os.ReadFile(imagetest.BusyboxPath)
	if err != nil {
		imagetest.SkipOrFail(tb, "needs /bin/busybox (apt-get install busybox-static)")
	}
	img, err := imagetest.Image(bb, marker)
	if err == nil {
		img, err = imagetest.WithArch(img, goruntime.GOARCH)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

func imageDigest(tb testing.TB, img v1.Image) string {
	tb.Helper()
	dg, err := img.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return dg.String()
}

// dockerSave writes img as a `docker save` tarball tagged ref.
func dockerSave(tb testing.TB, img v1.Image, ref string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "image.tar")
	tag, err := name.NewTag(ref)
	if err != nil {
		tb.Fatal(err)
	}
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		tb.Fatal(err)
	}
	return p
}

// runImage runs a container from an image and returns its init's stdout
// once it has stopped.
func (d *daemon) runImageOutput(id, opts string) string {
	d.tb.Helper()
	d.mustCtl("run " + id + " --image " + opts + "\n")
	d.waitState(id, "stopped")
	return d.read(id, "processes", "init", "stdout")
}

// wantCtlError writes cmd to the ctl at elem and requires errno, with a
// result on the same fd that says "error:" and holds want.
func (d *daemon) wantCtlError(cmd string, errno syscall.Errno, want string, elem ...string) {
	d.tb.Helper()
	res, err := d.ctl(cmd, elem...)
	if !errors.Is(err, errno) {
		d.tb.Errorf("%q: error %v, want %s; result %q", cmd, err, errnoNames[errno], res)
		return
	}
	if !strings.HasPrefix(res, "error: ") || !strings.Contains(res, want) || !strings.Contains(res, "("+errnoNames[errno]+")") {
		d.tb.Errorf("%q: result %q, want an error holding %q (%s)", cmd, res, want, errnoNames[errno])
	}
}

// TestImagesPullRunRemove: an image built here (two layers, a whiteout, an
// opaque dir) is pushed to a real registry, pulled through images/ctl with
// pull events on the events stream, listed, shown as files, run with and
// without options (whiteout and opaque semantics inside the container),
// refused removal while used, and removed after the containers are gone.
func TestImagesPullRunRemove(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	img := testImage(t, "pulled")
	ref := reg + "/test/bb:v1"
	if err := imagetest.Push(ref, img); err != nil {
		t.Fatal(err)
	}
	digest := imageDigest(t, img)
	d := startDaemon(t, "--insecure-registry", reg)
	if got := d.readDir(); !strings.Contains(strings.Join(got, " "), "ctl events images ps version") {
		t.Errorf("ls of the root: %q", got)
	}
	es := d.openEvents("events")
	if res := d.mustCtl("pull "+ref+"\n", "images"); res != "ok: pull "+ref+"\n" {
		t.Errorf("pull result %q", res)
	}
	for {
		e := es.until("", "pull")[0]
		if e.Ref != ref || e.Bytes == nil || e.Total == nil || *e.Total <= 0 {
			t.Fatalf("pull event %+v", e)
		}
		if *e.Bytes == *e.Total {
			break
		}
	}

	list := lines(d.read("images", "list"))
	if len(list) != 2 || !strings.HasPrefix(list[0], "DIGEST ") || !strings.HasSuffix(list[0], "REFERENCE") {
		t.Fatalf("images/list:\n%s", strings.Join(list, "\n"))
	}
	cols := strings.Fields(list[1])
	if len(cols) != 4 || cols[0] != digest || cols[2] != "2026-11-29T12:00:00Z" || cols[3] != ref {
		t.Errorf("images/list line %q", list[1])
	}
	if at := strings.Index(list[0], "REFERENCE"); strings.Index(list[1], ref) != at {
		t.Errorf("images/list: reference at column %d, header's at %d", strings.Index(list[1], ref), at)
	}
	if got := d.readDir("images"); len(got) != 3 || got[2] != digest {
		t.Errorf("ls images: %q", got)
	}
	man, _ := img.RawManifest()
	cfg, _ := img.RawConfigFile()
	if got := d.read("images", digest, "manifest.json"); got != string(man) {
		t.Errorf("manifest.json differs from the pushed manifest:\n%s", got)
	}
	if got := d.read("images", digest, "config.json"); got != string(cfg) {
		t.Errorf("config.json differs from the pushed config")
	}
	if got := d.readTrim("images", digest, "refs"); got != ref {
		t.Errorf("refs %q", got)
	}
	if got := lines(d.read("images", digest, "layers")); len(got) != 2 {
		t.Errorf("layers: %q", got)
	}
	if got := d.readTrim("images", digest, "size"); got != cols[1] {
		t.Errorf("size %q, list says %s", got, cols[1])
	}

	plain, opts := newID("img-plain"), newID("img-opts")
	if out := d.runImageOutput(plain, ref); out != "pulled\n" {
		t.Errorf("%s's stdout %q, want the image's Cmd's", plain, out)
	}
	out := d.runImageOutput(opts, ref+` --env X=1 --workdir /bin -- sh -c 'echo $X $FOO; pwd; ls /opq; ls /gone.txt 2>&1; echo new > /made'`)
	if out != "1 bar\n/bin\nupper.txt\nls: /gone.txt: No such file or directory\n" {
		t.Errorf("%s's stdout %q", opts, out)
	}
	if got := d.readTrim(opts, "bundle"); got != filepath.Join(d.state, opts, "bundle") {
		t.Errorf("%s/bundle %q", opts, got)
	}
	rootfs := filepath.Join(d.state, opts, "bundle", "rootfs")
	if !isMounted(rootfs) {
		t.Errorf("%s is not mounted", rootfs)
	}

	d.wantCtlError("remove "+ref+"\n", syscall.EBUSY, "in use", "images")
	if got := d.readDir("images"); len(got) != 3 {
		t.Errorf("ls images after a refused remove: %q", got)
	}
	d.mustCtl("delete " + plain + "\ndelete " + opts + "\n")
	if isMounted(rootfs) {
		t.Errorf("%s still mounted after delete", rootfs)
	}
	if _, err := os.Stat(filepath.Join(d.state, opts)); !os.IsNotExist(err) {
		t.Errorf("state dir of %s after delete: %v", opts, err)
	}
	d.mustCtl("remove "+ref+"\n", "images")
	if got := d.readDir("images"); len(got) != 2 {
		t.Errorf("ls images after remove: %q", got)
	}
	if got := lines(d.read("images", "list")); len(got) != 1 {
		t.Errorf("images/list after remove: %q", got)
	}
	if layers, _ := os.ReadDir(filepath.Join(d.dir, "images", "layers", "sha256")); len(layers) != 0 {
		t.Errorf("%d layers left in the store", len(layers))
	}
}

// TestImagesImportAndIndex: a docker-save tarball, an OCI layout and a
// multi-arch index (the host's platform picked), each run; tag.
func TestImagesImportAndIndex(t *testing.T) {
	reg := imagetest.StartRegistry(t)
	d := startDaemon(t, "--insecure-registry", reg)

	saved := testImage(t, "from docker save")
	d.mustCtl("import saved:v1 "+dockerSave(t, saved, "saved:v1")+"\n", "images")

	lay := testImage(t, "from an OCI layout")
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err == nil {
		err = p.AppendImage(lay, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v2"}))
	}
	if err != nil {
		t.Fatal(err)
	}
	d.mustCtl("import example.com/laid/out:v2 "+dir+"\n", "images")

	host := testImage(t, "host arch")
	other, err := imagetest.WithArch(testImage(t, "other arch"), "s390x")
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: host, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}}},
	)
	if err := imagetest.PushIndex(reg+"/test/multi:v1", idx); err != nil {
		t.Fatal(err)
	}
	d.mustCtl("pull "+reg+"/test/multi:v1\n", "images")
	d.mustCtl("tag saved:v1 saved:again\n", "images")

	list := d.read("images", "list")
	for _, want := range []string{
		imageDigest(t, saved) + " ", "docker.io/library/saved:v1\n", "docker.io/library/saved:again\n",
		imageDigest(t, lay) + " ", "example.com/laid/out:v2\n",
		imageDigest(t, host) + " ", reg + "/test/multi:v1\n",
	} {
		if !strings.Contains(list, want) {
			t.Errorf("images/list lacks %q:\n%s", want, list)
		}
	}
	if strings.Contains(list, imageDigest(t, other)) {
		t.Errorf("the other architecture's image was stored:\n%s", list)
	}
	for ref, want := range map[string]string{
		"saved:again": "from docker save\n", "example.com/laid/out:v2": "from an OCI layout\n",
		reg + "/test/multi:v1": "host arch\n", imageDigest(t, saved): "from docker save\n",
	} {
		id := newID("img-imp")
		if out := d.runImageOutput(id, ref); out != want {
			t.Errorf("run --image %s: stdout %q, want %q", ref, out, want)
		}
		d.mustCtl("delete " + id + "\n")
	}
}

// TestImagesRestart: a container run from an image survives kill -9 of the
// daemon and the loss of its rootfs mount: the restarted daemon mounts it
// again over the same upper directory (the container's writes kept) and
// still holds the image.
func TestImagesRestart(t *testing.T) {
	d := startDaemon(t)
	img := testImage(t, "restart")
	d.mustCtl("import keep:v1 "+dockerSave(t, img, "keep:v1")+"\n", "images")
	id := newID("img-restart")
	d.mustCtl("run " + id + " --image keep:v1 -- sh -c 'echo kept > /opq/new.txt; exec sleep 1000'\n")
	rootfs := filepath.Join(d.state, id, "bundle", "rootfs")
	waitFor(t, "the container's write", func() (bool, string) {
		b, _ := os.ReadFile(filepath.Join(d.state, id, "bundle", "upper", "opq", "new.txt"))
		return string(b) == "kept\n", string(b)
	})
	d.kill()
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	d.restart()
	if got := d.readTrim(id, "state"); got != "running" {
		t.Fatalf("%s after the restart: %s", id, got)
	}
	if !isMounted(rootfs) {
		t.Fatalf("%s not mounted again after the restart", rootfs)
	}
	if b, err := os.ReadFile(filepath.Join(rootfs, "opq", "new.txt")); string(b) != "kept\n" {
		t.Errorf("the container's write after the restart: %q, %v", b, err)
	}
	d.wantCtlError("remove keep:v1\n", syscall.EBUSY, "in use", "images")
	d.forceDelete(id)
	if isMounted(rootfs) {
		t.Errorf("%s still mounted after delete", rootfs)
	}
	d.mustCtl("remove keep:v1\n", "images")
}

// TestImagesBadInput: the errno and the text on the same fd, and nothing
// left behind: no container, no state directory, no mount, no hold.
func TestImagesBadInput(t *testing.T) {
	d := startDaemon(t)
	img := testImage(t, "bad")
	d.mustCtl("import ok:v1 "+dockerSave(t, img, "ok:v1")+"\n", "images")
	hostile := filepath.Join(t.TempDir(), "hostile.tar")
	b, err := imagetest.Tar(imagetest.File("../evil", "x"))
	if err == nil {
		err = os.WriteFile(hostile, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		cmd   string
		errno syscall.Errno
		want  string
	}{
		{"pull", syscall.EINVAL, "usage: pull REF"},
		{"pull Bad/Ref", syscall.EINVAL, "bad image reference"},
		{"pull 127.0.0.1:1/no/such:v1", syscall.EIO, "127.0.0.1:1"},
		{"import x:v1 relative.tar", syscall.EINVAL, "must be absolute"},
		{"import x:v1 /no/such/file.tar", syscall.ENOENT, "/no/such/file.tar"},
		{"import x:v1 " + hostile, syscall.EINVAL, "evil"},
		{"tag no:such x:v1", syscall.ENOENT, "no:such"},
		{"remove no:such", syscall.ENOENT, "no:such"},
		{"frob x", syscall.EINVAL, "unknown verb"},
	} {
		d.wantCtlError(c.cmd+"\n", c.errno, c.want, "images")
	}
	for _, c := range []struct {
		cmd   string
		errno syscall.Errno
		want  string
	}{
		{"run images /bin", syscall.EINVAL, "reserved"},
		{"run x --image no:such", syscall.ENOENT, "no:such"},
		{"run x --image ok:v1 --workdir rel", syscall.EINVAL, "--workdir"},
		{"run x --image ok:v1 --env NOEQUALS", syscall.EINVAL, "--env"},
		{"run x --image ok:v1 --user nosuchuser", syscall.EINVAL, "nosuchuser"},
		{"run x --image ok:v1 -- /no/such/program", syscall.EIO, "/no/such/program"},
		{"run x /bin -- ls", syscall.EINVAL, "--image only"},
		{"run x --image", syscall.EINVAL, "needs a value"},
	} {
		d.wantCtlError(c.cmd+"\n", c.errno, c.want)
	}
	d.checkNoContainers(t)
	if isMountedUnder(d.state) {
		t.Errorf("a mount left under %s", d.state)
	}
	// No hold left: the image can go.
	d.mustCtl("remove ok:v1\n", "images")
}
