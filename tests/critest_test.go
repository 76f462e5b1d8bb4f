package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/images/imagetest"
)

// TestCritest runs critest, the CRI validation suite of cri-tools v1.37.0,
// against ctrfs-cri: the real daemon (its registry mirrors sending
// registry.k8s.io, k8s.gcr.io and gcr.io to a local registry that holds
// critest's images as stand-ins, critest_images_test.go), runc, a CNI
// bridge with portmap. It fails if any spec fails, listing each with its
// message. `make critest` runs it alone, verbosely.

const critestVersion = "v1.37.0"

// critestSkips are the specs that cannot apply on this kind of host, each
// with why; docs/cri.md lists them too. A skip is a regular expression on
// the spec's full text.
var critestSkips = []struct{ re, why string }{
	{`public image with digest should be pulled and removed`, "the image is pinned by the digest of the upstream image, whose content cannot be rebuilt offline"},
}

// critestSelfSkips are the specs critest skips on its own (it asks the
// host or the runtime first), each with why; any other spec skipped is a
// regression (a feature Status stopped announcing, say) and fails the test.
// docs/cri.md lists them too.
var critestSelfSkips = []struct{ re, why string }{
	{`^\[k8s\.io\] AppArmor `, "AppArmor is not enabled in this kernel"},
	{`^\[k8s\.io\] NRI `, "NRI is containerd's plugin interface: ctrfs-cri has none (critest runs them with -nri-socket only)"},
	{` benchmark `, "critest's benchmarks run with -benchmark only"},
	{`^\[k8s\.io\] Image Volume `, "image volumes are Unimplemented"},
	{`^\[k8s\.io\] PodSandbox runtime should support metrics operations `, "ListMetricDescriptors and ListPodSandboxMetrics are Unimplemented"},
	{`^\[k8s\.io\] Security Context UserNamespaces `, "user-namespace pods are not announced"},
}

var (
	critestOnce sync.Once
	critestPath string
	critestErr  error
)

// critestBin is critest v1.37.0 (the skips and docs/cri.md's counts are
// that version's), built once into the user's cache directory: `go test
// -c ./cmd/critest` in a writable copy of the cri-tools module from the Go
// module proxy.
func critestBin(tb testing.TB) string {
	tb.Helper()
	critestOnce.Do(func() {
		dir := filepath.Join(testCacheDir(), "critest-"+critestVersion)
		critestPath = filepath.Join(dir, "critest")
		if _, err := os.Stat(critestPath); err == nil {
			return
		}
		critestErr = buildCritest(dir, critestPath)
	})
	if critestErr != nil {
		imagetest.SkipOrFail(tb, critestErr.Error())
	}
	return critestPath
}

func buildCritest(dir, bin string) error {
	out, err := exec.Command("go", "mod", "download", "-json", "sigs.k8s.io/cri-tools@"+critestVersion).Output()
	if err != nil {
		return fmt.Errorf("go mod download of cri-tools %s failed: %v", critestVersion, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return fmt.Errorf("go mod download -json: %v: %s", err, out)
	}
	// The module cache is read-only, and go test -c wants a module of its
	// own to build in.
	src, err := os.MkdirTemp("", "ctrfs-critest-src-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(src)
	if out, err := exec.Command("cp", "-r", mod.Dir+"/.", src).CombinedOutput(); err != nil {
		return fmt.Errorf("copying %s: %v\n%s", mod.Dir, err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		return fmt.Errorf("chmod: %v\n%s", err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command("go", "test", "-c", "-o", bin+".tmp", "./cmd/critest")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go test -c ./cmd/critest (cri-tools %s): %v\n%s", critestVersion, err, out)
	}
	return os.Rename(bin+".tmp", bin)
}

// critestNetwork is a CNI config of its own for critest: a bridge that is
// the pods' gateway (critest reaches the pods' web servers from the host by
// their IPs) and portmap (its host ports). No masquerade.
func critestNetwork(tb testing.TB) string {
	tb.Helper()
	confDir, prefix := cniNetwork(tb)
	p := filepath.Join(confDir, "10-test.conflist")
	var conf map[string]any
	if err := json.Unmarshal([]byte(readFile(tb, p)), &conf); err != nil {
		tb.Fatal(err)
	}
	plugins := conf["plugins"].([]any)
	plugins[0].(map[string]any)["isGateway"] = true
	if _, err := os.Stat("/usr/lib/cni/portmap"); err != nil {
		imagetest.SkipOrFail(tb, "needs the CNI plugin portmap in /usr/lib/cni (apt-get install containernetworking-plugins)")
	}
	conf["plugins"] = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("CNI: %s (pods in %s0/24)", data, prefix)
	return confDir
}

// ginkgoSpec is what TestCritest reads of a spec in ginkgo's JSON report.
type ginkgoSpec struct {
	ContainerHierarchyTexts []string
	LeafNodeText            string
	LeafNodeType            string
	State                   string
	RunTime                 time.Duration
	Failure                 struct {
		Message  string
		Location struct {
			FileName   string
			LineNumber int
		}
	}
}

func (s ginkgoSpec) name() string {
	return strings.Join(append(append([]string{}, s.ContainerHierarchyTexts...), s.LeafNodeText), " ")
}

func TestCritest(t *testing.T) {
	requireIntegration(t)
	hostOnly(t, "critest and its stand-in images are built with the Go toolchain and apt-get, which the guest has not")
	bin := critestBin(t)
	criTools(t)
	confDir := critestNetwork(t)
	reg := imagetest.StartRegistry(t)
	start := time.Now()
	pushCritestImages(t, reg, critestImages(t))
	t.Logf("stand-in images built and pushed in %v", time.Since(start).Round(time.Millisecond))
	args := []string{"--insecure-registry", reg}
	for _, h := range []string{"registry.k8s.io", "k8s.gcr.io", "gcr.io"} {
		args = append(args, "--registry-mirror", h+"=http://"+reg)
	}
	d := startDaemon(t, args...)
	c := startCRI(t, d, "--pause-image", critestPause, "--cni-conf-dir", confDir)

	skips := make([]string, len(critestSkips))
	for i, s := range critestSkips {
		skips[i] = s.re
	}
	dir := t.TempDir()
	report := filepath.Join(dir, "critest.json")
	ep := "unix://" + c.sock
	cmd := exec.Command(bin, "-runtime-endpoint", ep, "-image-endpoint", ep,
		"-ginkgo.no-color", "-ginkgo.v", "-ginkgo.json-report", report,
		"-ginkgo.skip", strings.Join(skips, "|"))
	cmd.Dir = dir // nothing of critest's lands in the repository
	logf, err := os.Create(filepath.Join(dir, "critest.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if testing.Verbose() {
		// Streamed, each line prefixed: critest is a Go test binary, and
		// its own "--- FAIL: TestCRISuite" must not read as one of ours.
		w := io.MultiWriter(logf, &linePrefixer{w: os.Stdout, prefix: "critest| "})
		cmd.Stdout, cmd.Stderr = w, w
	}
	start = time.Now()
	runErr := cmd.Run()
	took := time.Since(start).Round(time.Second)

	var suites []struct{ SpecReports []ginkgoSpec }
	b, err := os.ReadFile(report)
	if err == nil {
		err = json.Unmarshal(b, &suites)
	}
	if err != nil {
		t.Fatalf("no report from critest (%v), which ended: %v; the end of its output:\n%s", err, runErr, critestTail(readFile(t, logf.Name()), 60))
	}
	counts := map[string]int{}
	var failed, skipped []string
	var specs []ginkgoSpec
	for _, s := range suites {
		for _, spec := range s.SpecReports {
			if spec.LeafNodeType != "It" {
				if spec.State != "passed" {
					failed = append(failed, fmt.Sprintf("[%s] %s: %s", spec.LeafNodeType, spec.State, spec.Failure.Message))
				}
				continue
			}
			counts[spec.State]++
			if spec.State == "skipped" {
				skipped = append(skipped, fmt.Sprintf("%s: %s", spec.name(), critestFirstLine(spec.Failure.Message)))
				if !critestSkipExpected(spec.name()) {
					failed = append(failed, fmt.Sprintf("%s: skipped, which no entry of critestSkips or critestSelfSkips allows: %s",
						spec.name(), critestFirstLine(spec.Failure.Message)))
				}
			}
			specs = append(specs, spec)
			if spec.State != "passed" && spec.State != "skipped" && spec.State != "pending" {
				failed = append(failed, fmt.Sprintf("%s (%s, %s:%d):\n    %s", spec.name(), spec.State,
					filepath.Base(spec.Failure.Location.FileName), spec.Failure.Location.LineNumber,
					strings.ReplaceAll(critestHead(spec.Failure.Message, 12), "\n", "\n    ")))
			}
		}
	}
	total := 0
	var states []string
	for st, n := range counts {
		total += n
		states = append(states, fmt.Sprintf("%s %d", st, n))
	}
	sort.Strings(states)
	t.Logf("critest %s: %d specs in %v: %s", critestVersion, total, took, strings.Join(states, ", "))
	for _, s := range critestSkips {
		t.Logf("skipped on purpose: /%s/: %s", s.re, s.why)
	}
	sort.Strings(skipped)
	t.Logf("skipped specs (by critest's own checks, or on purpose):\n%s", strings.Join(skipped, "\n"))
	sort.Slice(specs, func(i, j int) bool { return specs[i].RunTime > specs[j].RunTime })
	for _, s := range specs[:min(len(specs), 8)] {
		t.Logf("slow: %v %s", s.RunTime.Round(100*time.Millisecond), s.name())
	}
	if len(failed) > 0 {
		t.Errorf("%d critest specs failed (critest: %v):\n%s", len(failed), runErr, strings.Join(failed, "\n"))
	} else if runErr != nil {
		t.Errorf("critest: %v, yet no spec failed in its report", runErr)
	}
	if counts["passed"] == 0 {
		t.Errorf("no critest spec passed")
	}
}

func critestFirstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// critestHead is the first n lines of s (gomega's messages dump whole structs).
func critestHead(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	if len(l) > n {
		l = append(l[:n], "...")
	}
	return strings.Join(l, "\n")
}

// critestTail is the last n lines of s.
func critestTail(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// critestSkipExpected says whether a skip of the spec is allowed.
func critestSkipExpected(name string) bool {
	for _, l := range [][]struct{ re, why string }{critestSkips, critestSelfSkips} {
		for _, s := range l {
			if regexp.MustCompile(s.re).MatchString(name) {
				return true
			}
		}
	}
	return false
}

// linePrefixer writes each line to w with prefix before it.
type linePrefixer struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *linePrefixer) Write(b []byte) (int, error) {
	var out []byte
	for _, c := range b {
		if !p.midLine {
			out = append(out, p.prefix...)
			p.midLine = true
		}
		out = append(out, c)
		if c == '\n' {
			p.midLine = false
		}
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
