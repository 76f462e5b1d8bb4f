package tests

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ctrfs/ctrfs/images/imagetest"
)

// authProxyRegistry is a registry that wants user:pass (HTTP Basic): a proxy in
// front of a plain one. It returns the proxy's host:port and the plain
// registry's, to push to.
func authProxyRegistry(t *testing.T) (authed, plain string) {
	t.Helper()
	plain = imagetest.StartRegistry(t)
	target, _ := url.Parse("http://" + plain)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "s3cret" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), plain
}

// TestPullAuthFile: `pull REF --auth-file PATH` on images/ctl pulls with
// that file's credentials (not the daemon's); a file readable by others,
// a symlink or a relative path is refused with EINVAL, a missing one with
// ENOENT; without credentials the registry refuses (EIO). Then the CRI's
// PullImage with credentials (crictl pull --creds) goes through it.
func TestPullAuthFile(t *testing.T) {
	requireIntegration(t)
	authed, plain := authProxyRegistry(t)
	if err := imagetest.Push(plain+"/test/secret:1", testImage(t, "secret")); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--insecure-registry", authed)
	ref := authed + "/test/secret:1"
	dir := t.TempDir()
	good := filepath.Join(dir, "auth.json")
	if err := os.WriteFile(good, []byte(`{"auths":{"`+authed+`":{"username":"user","password":"s3cret"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.json")
	os.WriteFile(open, []byte(`{}`), 0o644)
	link := filepath.Join(dir, "link.json")
	os.Symlink(good, link)

	d.ctlErr("pull "+ref+"\n", syscall.EIO, []string{"401"}, "images")
	d.ctlErr("pull "+ref+" --auth-file "+open+"\n", syscall.EINVAL, []string{"0600"}, "images")
	d.ctlErr("pull "+ref+" --auth-file "+link+"\n", syscall.EINVAL, []string{"regular file"}, "images")
	d.ctlErr("pull "+ref+" --auth-file auth.json\n", syscall.EINVAL, []string{"absolute"}, "images")
	d.ctlErr("pull "+ref+" --auth-file "+filepath.Join(dir, "none.json")+"\n", syscall.ENOENT, nil, "images")
	if got := d.read("images", "list"); strings.Contains(got, "secret") {
		t.Errorf("images/list after refused pulls:\n%s", got)
	}
	d.mustCtl("pull "+ref+" --auth-file "+good+"\n", "images")
	if got := d.read("images", "list"); !strings.Contains(got, "test/secret") {
		t.Errorf("images/list after the pull:\n%s", got)
	}
	d.mustCtl("remove "+ref+"\n", "images")

	// The CRI: PullImage's auth becomes a file of its own, removed after.
	criTools(t)
	c := startCRI(t, d)
	if _, err := c.try("pull", ref); err == nil {
		t.Errorf("crictl pull without credentials succeeded")
	}
	c.run("pull", "--creds", "user:s3cret", ref)
	if out := c.run("images"); !strings.Contains(out, authed+"/test/secret") {
		t.Errorf("crictl images:\n%s", out)
	}
	if left, _ := filepath.Glob(filepath.Join(c.state, "tmp", "*")); len(left) != 0 {
		t.Errorf("credentials left in the state dir: %q", left)
	}
	c.run("rmi", ref)
}
