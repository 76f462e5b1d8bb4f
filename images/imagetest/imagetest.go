// Package imagetest builds test images from the host's static busybox and
// serves them from Debian's docker-registry, for the image store's tests,
// the end-to-end tests and `make run`'s demo image (tests/mkimage).
package imagetest

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// BusyboxPath is the static busybox test images run (busybox-static).
const BusyboxPath = "/bin/busybox"

// RegistryBin is Debian's docker-registry (the CNCF distribution registry).
const RegistryBin = "/usr/bin/docker-registry"

// SkipOrFail skips the test, or fails it when CTRFS_REQUIRE_INTEGRATION=1.
func SkipOrFail(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s (CTRFS_REQUIRE_INTEGRATION=1)", why)
	}
	t.Skip(why)
}

// Entry is one tar entry of a layer; a regular file's content is Body.
type Entry struct {
	Hdr  tar.Header
	Body string
}

func File(name, body string) Entry { return Entry{Hdr: tar.Header{Name: name}, Body: body} }
func Dir(name string) Entry        { return Entry{Hdr: tar.Header{Name: name, Typeflag: tar.TypeDir}} }
func Symlink(name, to string) Entry {
	return Entry{Hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: to}}
}

// Tar makes an uncompressed tar of the entries (mode 0644, directories 0755,
// unless given).
func Tar(entries ...Entry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Hdr
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, err
		}
		if _, err := io.WriteString(tw, e.Body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Layer is a layer of the entries.
func Layer(entries ...Entry) (v1.Layer, error) {
	b, err := Tar(entries...)
	if err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
}

// Image is a two-layer busybox image (linux/amd64): the lower layer has the
// shell, a passwd and group, gone.txt and opq/lower.txt; the upper one
// deletes gone.txt (a whiteout), makes opq opaque with opq/upper.txt, and
// adds hello.txt, whose content is marker (so images differ by it). Its Cmd
// is `cat /hello.txt`, its WorkingDir /opq.
func Image(busybox []byte, marker string) (v1.Image, error) {
	l1, err := Layer(
		Dir("bin"),
		Entry{Hdr: tar.Header{Name: "bin/busybox", Mode: 0o755}, Body: string(busybox)},
		Symlink("bin/sh", "busybox"),
		Symlink("bin/cat", "busybox"),
		Symlink("bin/ls", "busybox"),
		Symlink("bin/id", "busybox"),
		Symlink("bin/sleep", "busybox"),
		Symlink("bin/httpd", "busybox"),
		Dir("etc"),
		File("etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"),
		File("etc/group", "root:x:0:\napp:x:1001:\nextra:x:2000:app\n"),
		File("gone.txt", "deleted in the upper layer\n"),
		Dir("opq"),
		File("opq/lower.txt", "hidden by the opaque dir\n"),
	)
	if err != nil {
		return nil, err
	}
	l2, err := Layer(
		File(".wh.gone.txt", ""),
		Dir("opq"),
		File("opq/.wh..wh..opq", ""),
		File("opq/upper.txt", "upper\n"),
		File("hello.txt", marker+"\n"),
	)
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
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
	return mutate.ConfigFile(img, cf)
}

// WithArch is img with another architecture in its config.
func WithArch(img v1.Image, arch string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture = arch
	return mutate.ConfigFile(img, cf)
}

// StartRegistry starts Debian's docker-registry on a free loopback port with
// its storage in a temp dir, and returns its host:port. It is stopped and
// its storage removed in Cleanup.
func StartRegistry(t testing.TB) string {
	t.Helper()
	return StartRegistryWith(t, RegistryOptions{})
}

// RegistryOptions are a registry's optional settings.
type RegistryOptions struct {
	// Htpasswd, if set, is an htpasswd file (bcrypt entries): every request
	// then needs basic auth.
	Htpasswd string
	// CertFile and KeyFile, if set, are PEM files: the registry serves TLS.
	CertFile, KeyFile string
	// Client is what the start-up probe uses (http.DefaultClient if nil);
	// with TLS, one that trusts the certificate.
	Client *http.Client
}

// StartRegistryWith is StartRegistry with options.
func StartRegistryWith(t testing.TB, o RegistryOptions) string {
	t.Helper()
	if _, err := os.Stat(RegistryBin); err != nil {
		SkipOrFail(t, "needs "+RegistryBin+" (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), addr)
	scheme := "http"
	if o.CertFile != "" {
		yml += fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n", o.CertFile, o.KeyFile)
		scheme = "https"
	}
	if o.Htpasswd != "" {
		yml += fmt.Sprintf("auth:\n  htpasswd:\n    realm: ctrfs-test\n    path: %s\n", o.Htpasswd)
	}
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RegistryBin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	client := o.Client
	if client == nil {
		client = http.DefaultClient
	}
	// A generous bound: it only matters when the registry never starts,
	// and a guest under emulation on a loaded machine took over 10 s.
	deadline := time.Now().Add(90 * time.Second)
	for {
		// Any answer will do (401 with auth).
		resp, err := client.Get(scheme + "://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Fatalf("registry did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Push pushes img to ref, over plain HTTP (a registry of StartRegistry),
// with opts (remote.WithAuth for a registry with Htpasswd).
func Push(ref string, img v1.Image, opts ...remote.Option) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img, opts...)
}

// PushIndex pushes an index to ref, over plain HTTP.
func PushIndex(ref string, idx v1.ImageIndex) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.WriteIndex(r, idx)
}
