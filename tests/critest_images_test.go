package tests

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/images/imagetest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// critest's images, built here from local parts only and pushed under their
// upstream names (the names in cri-tools v1.37.0's pkg/framework and
// pkg/validate) to a local registry, which the daemon reaches through its
// registry mirrors. The programs are Debian's dynamic busybox (its applets
// hard-linked, as the busybox image has them) and the stand-ins of
// tests/critest/standins.

// critestE2E, critestStaging are the upstream repositories' prefixes.
const (
	critestE2E     = "registry.k8s.io/e2e-test-images/"
	critestStaging = "gcr.io/k8s-staging-cri-tools/"
	// critestPause is the sandboxes' image in TestCritest (ctrfs-cri's
	// default); pause:3.9 is an image critest pulls and removes itself.
	critestPause = "registry.k8s.io/pause:3.10"
)

// debianBusybox is the path of Debian's dynamic busybox (package busybox,
// not busybox-static: its shell runs each command as a process of its own,
// as critest's MaskedPaths spec needs), fetched once with apt-get download
// into the user's cache directory.
func debianBusybox(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(testCacheDir(), "busybox-deb")
	bin := filepath.Join(dir, "busybox")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	tmp := tb.TempDir()
	for _, c := range [][]string{{"apt-get", "download", "busybox"}, {"sh", "-c", "dpkg-deb -x busybox_*.deb x"}} {
		cmd := exec.Command(c[0], c[1:]...)
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			imagetest.SkipOrFail(tb, fmt.Sprintf("Debian's busybox package (for critest's images): %s: %v\n%s", strings.Join(c, " "), err, out))
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := exec.Command("cp", filepath.Join(tmp, "x", "bin", "busybox"), bin+".tmp").Run(); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		tb.Fatal(err)
	}
	return bin
}

// testCacheDir is where the tests keep what they fetch or build once
// (crictl, critest, Debian's busybox): outside the repository.
func testCacheDir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	return filepath.Join(cache, "ctrfs-test")
}

// buildStandins builds tests/critest/standins into a temp dir.
func buildStandins(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	cmd := exec.Command("go", "build", "-ldflags=-s -w", "-o", dir+"/", "./tests/critest/standins/...")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("building the stand-ins: %v\n%s", err, out)
	}
	return dir
}

// exeEntry is an executable of the image, read from src.
func exeEntry(tb testing.TB, name, src string, mode int64) imagetest.Entry {
	return imagetest.Entry{Hdr: tar.Header{Name: name, Mode: mode}, Body: readFile(tb, src)}
}

// sharedLibs are the files the dynamic program at path loads (ldd's
// answer), as the image must hold them at the same paths.
func sharedLibs(tb testing.TB, path string) []string {
	tb.Helper()
	out, err := exec.Command("ldd", path).Output()
	if err != nil {
		tb.Fatalf("ldd %s: %v", path, err)
	}
	var libs []string
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			libs = append(libs, f[2])
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			libs = append(libs, f[0])
		}
	}
	return libs
}

const critestPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`

const critestGroup = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
www-data:x:33:
nogroup:x:65534:
`

// critestBase is the busybox image: Debian's busybox with every applet
// hard-linked in /bin, the libraries it loads, the pgrep and ipcs
// stand-ins, a passwd and group as busybox's image has them. Its Cmd is sh.
func critestBase(tb testing.TB, standins string) v1.Image {
	tb.Helper()
	bb := debianBusybox(tb)
	list, err := exec.Command(bb, "--list").Output()
	if err != nil {
		tb.Fatalf("%s --list: %v", bb, err)
	}
	es := []imagetest.Entry{
		imagetest.Dir("bin"), imagetest.Dir("etc"), imagetest.Dir("usr"), imagetest.Dir("usr/bin"),
		imagetest.Dir("usr/sbin"), imagetest.Dir("usr/local"), imagetest.Dir("usr/local/bin"),
		imagetest.Dir("root"), imagetest.Dir("home"), imagetest.Dir("var"), imagetest.Dir("var/run"),
		imagetest.Dir("var/www"), imagetest.Dir("proc"), imagetest.Dir("sys"), imagetest.Dir("dev"),
		{Hdr: tar.Header{Name: "tmp", Typeflag: tar.TypeDir, Mode: 0o1777}},
		exeEntry(tb, "bin/busybox", bb, 0o755),
		imagetest.File("etc/passwd", critestPasswd),
		imagetest.File("etc/group", critestGroup),
		exeEntry(tb, "usr/bin/pgrep", filepath.Join(standins, "pgrep"), 0o755),
		exeEntry(tb, "usr/bin/ipcs", filepath.Join(standins, "ipcs"), 0o755),
	}
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" && !strings.ContainsAny(a, "/[") {
			es = append(es, imagetest.Entry{Hdr: tar.Header{Name: "bin/" + a, Typeflag: tar.TypeLink, Linkname: "bin/busybox"}})
		}
	}
	for _, a := range []string{"[", "[["} {
		es = append(es, imagetest.Entry{Hdr: tar.Header{Name: "bin/" + a, Typeflag: tar.TypeLink, Linkname: "bin/busybox"}})
	}
	dirs := map[string]bool{"bin": true, "etc": true, "usr": true}
	for _, lib := range sharedLibs(tb, bb) {
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			tb.Fatal(err)
		}
		rel := strings.TrimPrefix(lib, "/")
		// The parents first, each once.
		var parents []string
		for p := filepath.Dir(rel); p != "."; p = filepath.Dir(p) {
			parents = append([]string{p}, parents...)
		}
		for _, p := range parents {
			if !dirs[p] {
				dirs[p] = true
				es = append(es, imagetest.Dir(p))
			}
		}
		es = append(es, exeEntry(tb, rel, real, 0o755))
	}
	return critestImage(tb, empty.Image, v1.Config{
		Cmd: []string{"sh"},
		Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
	}, es...)
}

// critestImage is base with a layer of entries (none: no layer) and cfg as
// its config.
func critestImage(tb testing.TB, base v1.Image, cfg v1.Config, entries ...imagetest.Entry) v1.Image {
	tb.Helper()
	img := base
	if len(entries) > 0 {
		l, err := imagetest.Layer(entries...)
		if err != nil {
			tb.Fatal(err)
		}
		if img, err = mutate.AppendLayers(base, l); err != nil {
			tb.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// critestImages builds every image critest v1.37.0 pulls (but the
// digest-pinned test-image-digest, whose content cannot be rebuilt) and
// the sandboxes' pause image, by upstream reference.
func critestImages(tb testing.TB) map[string]v1.Image {
	tb.Helper()
	s := buildStandins(tb)
	base := critestBase(tb, s)
	bcfg, err := base.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	with := func(f func(c *v1.Config)) v1.Config {
		c := *bcfg.Config.DeepCopy()
		f(&c)
		return c
	}
	// webserver is base plus the web server stand-in at path, run with args.
	webserver := func(path string, args ...string) v1.Image {
		return critestImage(tb, base, with(func(c *v1.Config) {
			c.Cmd = nil
			c.Entrypoint = append([]string{"/" + path}, args...)
			c.StopSignal = "SIGQUIT"
			c.ExposedPorts = map[string]struct{}{"80/tcp": {}}
		}), exeEntry(tb, path, filepath.Join(s, "webserver"), 0o755))
	}
	nginxArgs := func(port string) []string {
		return []string{"-port", port, "-pid-file", "/var/run/nginx.pid", "-title", "nginx: master process nginx -g daemon off;"}
	}
	// file is base plus an empty file named name, as cri-tools' image-test
	// Dockerfile adds one.
	file := func(name string) v1.Image {
		return critestImage(tb, base, bcfg.Config, imagetest.File(name, ""))
	}
	user := func(u string) v1.Image {
		return critestImage(tb, base, with(func(c *v1.Config) { c.User = u }))
	}
	pause := func(version string) v1.Image {
		return critestImage(tb, empty.Image, v1.Config{
			Entrypoint: []string{"/pause"},
			Labels:     map[string]string{"org.opencontainers.image.version": version},
		}, exeEntry(tb, "pause", filepath.Join(s, "pause"), 0o755))
	}
	pause39 := pause("3.9")
	tags := file("same-image")
	m := map[string]v1.Image{
		e2eImage("busybox:1.29-2"): base,
		e2eImage("nginx:1.14-2"):   webserver("usr/sbin/nginx", nginxArgs("80")...),
		e2eImage("httpd:2.4.39-4"): webserver("usr/local/apache2/bin/httpd", "-port", "80"),
		e2eImage("nonewprivs:1.3"): critestImage(tb, base, with(func(c *v1.Config) {
			c.Cmd = nil
			c.Entrypoint = []string{"/usr/local/bin/nnp"}
		}), imagetest.Entry{Hdr: tar.Header{Name: "usr/local/bin/nnp", Mode: 0o4755}, Body: readFile(tb, filepath.Join(s, "nonewprivs"))}),
		critestStaging + "hostnet-nginx-" + goruntime.GOARCH + ":latest": webserver("usr/sbin/nginx", nginxArgs("12003")...),
		"registry.k8s.io/pause:3.9":                                      pause39,
		"k8s.gcr.io/pause:3.9":                                           pause39,
		critestPause:                                                     pause("3.10"),
		critestStaging + "test-image-user-uid:latest":                    user("1002"),
		critestStaging + "test-image-user-username:latest":               user("www-data"),
		critestStaging + "test-image-user-uid-group:latest":              user("1003:1004"),
		critestStaging + "test-image-user-username-group:latest":         user("www-data:1004"),
		critestStaging + "test-image-predefined-group:latest": critestImage(tb, base, with(func(c *v1.Config) { c.User = "1000" }),
			imagetest.File("etc/passwd", critestPasswd+"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n"),
			imagetest.File("etc/group", critestGroup+"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n")),
		critestStaging + "test-image-tags:1":   tags,
		critestStaging + "test-image-tags:2":   tags,
		critestStaging + "test-image-tags:3":   tags,
		critestStaging + "test-image-tag:test": file("test"),
		critestStaging + "test-image-tag:all":  file("all"),
	}
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest"} {
		m[critestStaging+n+":latest"] = file(n)
	}
	return m
}

func e2eImage(nameTag string) string { return critestE2E + nameTag }

// pushCritestImages pushes the images to reg, each under its upstream
// repository path (host dropped), where the daemon's mirrors look.
func pushCritestImages(tb testing.TB, reg string, imgs map[string]v1.Image) {
	tb.Helper()
	for ref, img := range imgs {
		_, path, _ := strings.Cut(ref, "/")
		if err := imagetest.Push(reg+"/"+path, img); err != nil {
			tb.Fatalf("push %s: %v", ref, err)
		}
	}
}
