package tests

import (
	"context"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrfs/ctrfs/images/imagetest"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/crypto/bcrypt"
)

// authRegistry starts a registry that wants basic auth for user:pass (an
// htpasswd with a bcrypt entry, as the registry requires) and returns its
// host:port. Plain HTTP: the registry and go-containerregistry both send
// basic auth over it, and the daemon speaks it only to --insecure-registry
// hosts.
func authRegistry(t *testing.T, user, pass string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(h)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return imagetest.StartRegistryWith(t, imagetest.RegistryOptions{Htpasswd: htpasswd})
}

// dockerConfig is a docker-style config.json holding user:pass for reg.
func dockerConfig(reg, user, pass string) string {
	return `{"auths":{"` + reg + `":{"auth":"` + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)) + `"}}}`
}

// replaceFile puts data at path by a rename, as an editor or a secret
// update would.
func replaceFile(t *testing.T, path, data string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// wantNoImages requires an empty store: no image listed, no blob kept.
func (d *daemon) wantNoImages(when string) {
	d.tb.Helper()
	if got := d.readDir("images"); len(got) != 2 {
		d.tb.Errorf("%s: ls images: %q", when, got)
	}
	if blobs, _ := os.ReadDir(filepath.Join(d.dir, "images", "blobs", "sha256")); len(blobs) != 0 {
		d.tb.Errorf("%s: %d blobs left in the store", when, len(blobs))
	}
}

// TestImagesPullAuth: an image pushed with credentials to a registry that
// wants them is refused to a daemon without --registry-auth (EIO, saying
// unauthorized and that no auth file was given), pulled and run by a daemon
// whose --registry-auth names a docker config.json with the credentials,
// and refused again (saying the credentials were refused) once the file,
// re-read at each pull, holds a wrong password. Nothing is left in the store
// by a refused pull.
func TestImagesPullAuth(t *testing.T) {
	const user, pass = "ctrfs", "s3cret:with colon"
	reg := authRegistry(t, user, pass)
	img := testImage(t, "behind auth")
	ref, ref2 := reg+"/private/bb:v1", reg+"/private/bb:v2"
	if err := imagetest.Push(ref, img); err == nil {
		t.Fatal("the registry took an anonymous push: it does not check credentials")
	}
	creds := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	for _, r := range []string{ref, ref2} {
		if err := imagetest.Push(r, img, creds); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("no auth file", func(t *testing.T) {
		d := startDaemon(t, "--insecure-registry", reg).on(t)
		d.wantCtlError("pull "+ref+"\n", syscall.EIO, "unauthorized (no registry auth file given)", "images")
		d.wantNoImages("after a refused pull")
	})

	cfg := filepath.Join(t.TempDir(), "config.json")
	replaceFile(t, cfg, dockerConfig(reg, user, pass))
	d := startDaemon(t, "--insecure-registry", reg, "--registry-auth", cfg)
	if res := d.mustCtl("pull "+ref+"\n", "images"); res != "ok: pull "+ref+"\n" {
		t.Errorf("pull result %q", res)
	}
	id := newID("img-auth")
	if out := d.runImageOutput(id, ref); out != "behind auth\n" {
		t.Errorf("%s's stdout %q, want the image's Cmd's", id, out)
	}
	d.mustCtl("delete " + id + "\n")

	// Another registry's credentials only: as good as none.
	replaceFile(t, cfg, dockerConfig("127.0.0.1:1", user, pass))
	d.wantCtlError("pull "+ref2+"\n", syscall.EIO, "unauthorized (no credentials for "+reg+" in registry auth file "+cfg+")", "images")
	replaceFile(t, cfg, dockerConfig(reg, user, "wrong"))
	d.wantCtlError("pull "+ref2+"\n", syscall.EIO, "unauthorized (credentials for "+reg+" from registry auth file "+cfg+" refused)", "images")
	if res, _ := d.ctl("pull "+ref2+"\n", "images"); strings.Contains(res, "wrong") || strings.Contains(res, base64.StdEncoding.EncodeToString([]byte(user+":wrong"))) {
		t.Errorf("the pull's error shows the password: %q", res)
	}
	if got := d.readDir("images"); len(got) != 3 {
		t.Errorf("ls images after refused pulls: %q (want ctl, list and the first image)", got)
	}
	d.mustCtl("remove "+ref+"\n", "images")
	d.wantNoImages("after remove")
}

// TestImagesAuthFileHostile: the auth file is read under the hostile-file
// rules. At daemon start a symlink, a FIFO, a huge file, a directory,
// a missing file and a file that is not JSON each stop the daemon with a
// message naming the file and the fault, mounting nothing; at a pull (the
// file changed since) the same faults are EINVAL (EFBIG for the size) on
// the ctl's fd, the FIFO without a hang, and no request is made.
func TestImagesAuthFileHostile(t *testing.T) {
	requireIntegration(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if err := os.WriteFile(good, []byte(dockerConfig("127.0.0.1:1", "u", "p")), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.json")
	fifo := filepath.Join(dir, "fifo.json")
	huge := filepath.Join(dir, "huge.json")
	notJSON := filepath.Join(dir, "not.json")
	badAuth := filepath.Join(dir, "badauth.json")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Sparse: larger than the 4 MiB JSON limit at no cost.
	if f, err := os.Create(huge); err != nil {
		t.Fatal(err)
	} else {
		f.Truncate(1 << 30)
		f.Close()
	}
	os.WriteFile(notJSON, []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o600)
	os.WriteFile(badAuth, []byte(`{"auths":{"r.io":{"auth":"bm9jb2xvbg=="}}}`), 0o600) // "nocolon"
	cases := []struct {
		path  string
		errno syscall.Errno
		want  string
	}{
		{link, syscall.EINVAL, link + ": is a symlink"},
		{fifo, syscall.EINVAL, "a FIFO"},
		{huge, syscall.EFBIG, "too large"},
		{dir, syscall.EINVAL, "a directory"},
		{filepath.Join(dir, "missing.json"), syscall.EINVAL, "no such file"},
		{notJSON, syscall.EINVAL, notJSON + ": not JSON (at byte 1)"},
		{badAuth, syscall.EINVAL, "not base64 of user:password"},
	}
	for _, c := range cases {
		mnt := t.TempDir()
		args := []string{"mount", "--state-dir", t.TempDir(), "--image-dir", t.TempDir(), "--registry-auth", c.path, mnt}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		cmd := exec.CommandContext(ctx, ctrfsBin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if isMounted(mnt) {
			exec.Command("fusermount3", "-u", mnt).Run()
			exec.Command("umount", "-l", mnt).Run()
			t.Errorf("ctrfs --registry-auth %s mounted", c.path)
		}
		if err == nil || timedOut || !strings.Contains(string(out), "registry auth file "+c.path) || !strings.Contains(string(out), c.want) {
			t.Errorf("ctrfs --registry-auth %s: %v, %q; want a failure at start saying %q", c.path, err, out, c.want)
		}
	}

	// At a pull: the daemon started with a good file, which is then
	// replaced (renamed over) by each hostile one.
	cfg := filepath.Join(dir, "config.json")
	replaceFile(t, cfg, dockerConfig("127.0.0.1:1", "u", "p"))
	d := startDaemon(t, "--registry-auth", cfg)
	for _, c := range cases {
		if c.path == dir || strings.HasSuffix(c.path, "missing.json") {
			continue // a rename cannot put a directory over a file; missing is below
		}
		if err := os.Rename(c.path, cfg); err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(c.want, c.path, cfg)
		d.wantCtlError("pull 127.0.0.1:1/x/y:v1\n", c.errno, "registry auth file "+cfg, "images")
		d.wantCtlError("pull 127.0.0.1:1/x/y:v1\n", c.errno, want, "images")
	}
	os.Remove(cfg)
	d.wantCtlError("pull 127.0.0.1:1/x/y:v1\n", syscall.EINVAL, "registry auth file "+cfg+": no such file", "images")
	d.wantNoImages("after refused pulls")
}
