package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/images/imagetest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI server (cmd/ctrfs-cri) end to end: the real daemon, runc, a real
// registry, and the real crictl (sigs.k8s.io/cri-tools v1.37.0, found in
// $PATH or built once into the user's cache directory from the Go module
// proxy).

const crictlVersion = "v1.37.0"

var (
	criOnce   sync.Once
	criBin    string
	crictlBin string
	criErr    error
)

// criTools builds ctrfs-cri and finds or builds crictl.
func criTools(tb testing.TB) (string, string) {
	tb.Helper()
	criOnce.Do(func() {
		criBin = filepath.Join(binDir, "ctrfs-cri")
		// The guests (tests/vm) have no Go: ctrfs-cri comes prebuilt, as
		// ctrfs does, from CTRFS_TEST_BIN_DIR.
		if pre := os.Getenv("CTRFS_TEST_BIN_DIR"); pre != "" {
			criBin = filepath.Join(pre, "ctrfs-cri")
		} else {
			cmd := exec.Command("go", "build", "-o", criBin, "./cmd/ctrfs-cri")
			cmd.Dir = ".."
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				criErr = fmt.Errorf("go build ./cmd/ctrfs-cri: %v\n%s", err, out)
				return
			}
		}
		if p, err := exec.LookPath("crictl"); err == nil {
			crictlBin = p
			return
		}
		gobin := filepath.Join(testCacheDir(), "crictl-"+crictlVersion)
		crictlBin = filepath.Join(gobin, "crictl")
		if _, err := os.Stat(crictlBin); err == nil {
			return
		}
		cmd := exec.Command("go", "install", "sigs.k8s.io/cri-tools/cmd/crictl@"+crictlVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			crictlBin = ""
			criErr = fmt.Errorf("no crictl in $PATH, and go install of cri-tools %s failed: %v\n%s", crictlVersion, err, out)
		}
	})
	if criErr != nil {
		if crictlBin == "" && os.Getenv("CTRFS_REQUIRE_INTEGRATION") != "1" {
			tb.Skip(criErr)
		}
		tb.Fatal(criErr)
	}
	return criBin, crictlBin
}

// criServer is a running ctrfs-cri on a daemon's mount.
type criServer struct {
	tb     testing.TB
	bin    string
	sock   string
	state  string
	args   []string
	cmd    *exec.Cmd
	log    string
	crictl string
}

func startCRI(tb testing.TB, d *daemon, args ...string) *criServer {
	tb.Helper()
	bin, crictl := criTools(tb)
	c := &criServer{tb: tb, bin: bin, crictl: crictl, sock: filepath.Join(d.dir, "cri.sock"),
		state: filepath.Join(d.dir, "cri-state"), log: filepath.Join(d.dir, "cri.log")}
	c.args = append([]string{"--listen", c.sock, "--mount", d.mnt, "--state-dir", c.state,
		"--image-dir", filepath.Join(d.dir, "images"), "--cni-conf-dir", filepath.Join(d.dir, "cni"), "--debug"}, args...)
	c.start()
	tb.Cleanup(func() {
		c.stop()
		// Whatever a failed test left: the daemon's cleanup expects no
		// container (their image rootfs are mounts).
		for _, id := range d.containers() {
			d.ctl("delete " + id + " --force")
		}
	})
	return c
}

func (c *criServer) start() {
	c.tb.Helper()
	logf, err := os.OpenFile(c.log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer logf.Close()
	c.cmd = exec.Command(c.bin, c.args...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		c.tb.Fatal(err)
	}
	waitFor(c.tb, "the CRI socket", func() (bool, string) {
		_, err := os.Stat(c.sock)
		return err == nil, fmt.Sprint(err)
	})
}

func (c *criServer) stop() {
	if c.cmd == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
	c.cmd = nil
}

// run runs crictl with args and returns its output; a failure fails the test.
func (c *criServer) run(args ...string) string {
	c.tb.Helper()
	out, err := c.try(args...)
	if err != nil {
		log, _ := os.ReadFile(c.log)
		c.tb.Fatalf("crictl %s: %v\n%s\nctrfs-cri log:\n%s", strings.Join(args, " "), err, out, log)
	}
	return out
}

func (c *criServer) try(args ...string) (string, error) {
	cmd := c.crictlCmd(append([]string{"--timeout", "60s"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, stderr.String())
	}
	return string(out), err
}

// lastLine is the last line of crictl's output (its id), past its warnings.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// reopenLog calls ReopenContainerLog (crictl has no command for it).
func (c *criServer) reopenLog(id string) {
	c.tb.Helper()
	conn, err := grpc.NewClient("unix://"+c.sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		c.tb.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if _, err := runtimeapi.NewRuntimeServiceClient(conn).ReopenContainerLog(ctx, &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		c.tb.Fatalf("ReopenContainerLog: %v", err)
	}
}

// writeJSON writes v as JSON to a file of dir and returns its path.
func writeJSON(tb testing.TB, dir, name string, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// pauseImage is the test's pause stand-in: the busybox test image whose
// program sleeps.
func pauseImage(tb testing.TB) v1.Image {
	tb.Helper()
	img := testImage(tb, "pause")
	cf, err := img.ConfigFile()
	if err != nil {
		tb.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Config.Cmd = nil
	cf.Config.Entrypoint = []string{"/bin/sleep", "1000000"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		tb.Fatal(err)
	}
	return img
}

// criSetup starts what a CRI test needs: a registry holding the busybox
// test image and the pause stand-in, a daemon pulling from it, and
// ctrfs-cri (with criArgs) on its mount. It returns the registry, the
// busybox reference, the daemon and the server.
func criSetup(t *testing.T, criArgs ...string) (string, string, *daemon, *criServer) {
	t.Helper()
	requireIntegration(t)
	criTools(t)
	reg := imagetest.StartRegistry(t)
	bbRef, pauseRef := reg+"/test/busybox:1", reg+"/test/pause:1"
	if err := imagetest.Push(bbRef, testImage(t, "cri")); err != nil {
		t.Fatal(err)
	}
	if err := imagetest.Push(pauseRef, pauseImage(t)); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "--insecure-registry", reg)
	c := startCRI(t, d, append([]string{"--pause-image", pauseRef}, criArgs...)...)
	return reg, bbRef, d, c
}

// TestCRICrictl drives a pod's whole life with crictl: pull, runp, create,
// start, ps, exec -s, logs, stats, inspect, a restart of ctrfs-cri keeping
// the pod, stop, rm, stopp, rmp; and checks each step in the tree too.
func TestCRICrictl(t *testing.T) {
	reg, bbRef, d, c := criSetup(t)
	dir := t.TempDir()

	if out := c.run("version"); !strings.Contains(out, "RuntimeName:  ctrfs") || !strings.Contains(out, "RuntimeApiVersion:  v1") {
		t.Errorf("crictl version:\n%s", out)
	}
	if out := c.run("info"); !strings.Contains(out, `"RuntimeReady"`) {
		t.Errorf("crictl info:\n%s", out)
	}
	c.run("pull", bbRef)
	if out := c.run("images"); !strings.Contains(out, reg+"/test/busybox") {
		t.Errorf("crictl images:\n%s", out)
	}
	// A missing image is an empty answer, not an error.
	// (crictl turns the empty answer into its own "no such image").
	if _, err := c.try("inspecti", "-o", "json", reg+"/test/nosuch:1"); err == nil || !strings.Contains(err.Error(), "no such image") {
		t.Errorf("inspecti of a missing image: %v", err)
	}

	logDir := filepath.Join(dir, "logs")
	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "web", "namespace": "default", "uid": "uid-1", "attempt": 1},
		"hostname":      "webpod",
		"log_directory": logDir,
		"labels":        map[string]string{"app": "web", "io.kubernetes.pod.name": "web"},
		"annotations":   map[string]string{"note": "it's \"quoted\"\nand two lines"},
		"dns_config":    map[string]any{"servers": []string{"10.0.0.10"}, "searches": []string{"svc.local"}},
		"linux":         map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	ctr := writeJSON(t, dir, "ctr.json", map[string]any{
		"metadata":    map[string]any{"name": "main", "attempt": 2},
		"image":       map[string]any{"image": bbRef},
		"command":     []string{"/bin/sh", "-c", `echo out-line; echo err-line >&2; printf partial; trap "exit 0" INT TERM; while :; do if [ -f /say ]; then cat /say; rm /say; fi; sleep 0.2; done`},
		"log_path":    "main.log",
		"labels":      map[string]string{"io.kubernetes.container.name": "main"},
		"annotations": map[string]string{"io.kubernetes.container.hash": "abc123"},
		"envs":        []map[string]string{{"key": "GREETING", "value": "hello cri"}},
		"linux": map[string]any{
			"resources":        map[string]any{"oom_score_adj": -997, "memory_limit_in_bytes": 64 << 20},
			"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}, // CONTAINER, as the kubelet asks
		},
	})
	podID := lastLine(c.run("runp", pod))
	if len(podID) != 64 {
		t.Fatalf("runp: id %q", podID)
	}
	// The sandbox is a container of the tree, labelled by the CRI.
	d.waitState(podID, "running")
	if labels := d.read(podID, "labels"); !strings.Contains(labels, "io.ctrfs.cri.kind=sandbox") {
		t.Errorf("sandbox labels:\n%s", labels)
	}
	ctrID := lastLine(c.run("create", podID, ctr, pod))
	d.waitState(ctrID, "created")
	c.run("start", ctrID)
	d.waitState(ctrID, "running")
	if out := c.run("ps"); !strings.Contains(out, ctrID[:13]) || !strings.Contains(out, "Running") || !strings.Contains(out, "main") {
		t.Errorf("crictl ps:\n%s", out)
	}
	if out := c.run("pods"); !strings.Contains(out, podID[:13]) || !strings.Contains(out, "Ready") || !strings.Contains(out, "web") {
		t.Errorf("crictl pods:\n%s", out)
	}
	// exec -s: the container's environment, the pod's hostname and DNS,
	// the pod's namespaces (net, uts, ipc are the sandbox's).
	if out := c.run("exec", "-s", ctrID, "sh", "-c", "echo $GREETING; hostname; cat /etc/resolv.conf"); !strings.Contains(out, "hello cri\nwebpod\n") || !strings.Contains(out, "nameserver 10.0.0.10") || !strings.Contains(out, "search svc.local") {
		t.Errorf("crictl exec -s:\n%s", out)
	}
	sbPid, ctrPid := d.initPid(podID), d.initPid(ctrID)
	for _, ns := range []string{"net", "uts", "ipc"} {
		a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", sbPid, ns))
		b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", ctrPid, ns))
		if a == "" || a != b {
			t.Errorf("%s namespace: sandbox %q, container %q", ns, a, b)
		}
	}
	// An exec's exit code comes back; the exec leaves nothing in the tree.
	if out, err := c.try("exec", "-s", ctrID, "sh", "-c", "exit 3"); err == nil {
		t.Errorf("exec of exit 3 succeeded:\n%s", out)
	}
	if got := d.readDir(ctrID, "processes"); len(got) != 1 {
		t.Errorf("processes after the execs: %q", got)
	}
	// The CRI log, in the CRI format.
	logPath := filepath.Join(logDir, "main.log")
	waitFor(t, "the CRI log", func() (bool, string) {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " stdout F out-line\n") && strings.Contains(string(b), " stderr F err-line\n"), string(b)
	})
	if out := c.run("logs", ctrID); !strings.Contains(out, "out-line") {
		t.Errorf("crictl logs:\n%s", out)
	}
	// Rotation: the kubelet renames the file, then asks for a reopen.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	c.run("exec", "-s", ctrID, "sh", "-c", "echo after-rotate > /say")
	waitFor(t, "a line in the rotated file", func() (bool, string) {
		b, _ := os.ReadFile(logPath + ".1")
		return strings.Contains(string(b), " stdout F partialafter-rotate\n"), string(b)
	})
	c.reopenLog(ctrID)
	c.run("exec", "-s", ctrID, "sh", "-c", "echo after-reopen > /say")
	waitFor(t, "a line in the reopened file", func() (bool, string) {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), " stdout F after-reopen\n") && !strings.Contains(string(b), "after-rotate"), string(b)
	})

	if out := c.run("stats", "-o", "json", ctrID); !strings.Contains(out, `"usageCoreNanoSeconds"`) || !strings.Contains(out, `"workingSetBytes"`) {
		t.Errorf("crictl stats:\n%s", out)
	}
	var insp struct {
		Status struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			LogPath     string            `json:"logPath"`
			Metadata    struct {
				Attempt int `json:"attempt"`
			} `json:"metadata"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.run("inspect", "-o", "json", ctrID)), &insp); err != nil {
		t.Fatal(err)
	}
	if insp.Status.Annotations["io.kubernetes.container.hash"] != "abc123" || insp.Status.Labels["io.kubernetes.container.name"] != "main" ||
		insp.Status.LogPath != logPath || insp.Status.Metadata.Attempt != 2 {
		t.Errorf("crictl inspect: %+v", insp.Status)
	}
	var inspp struct {
		Status struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.run("inspectp", "-o", "json", podID)), &inspp); err != nil {
		t.Fatal(err)
	}
	if got := inspp.Status.Annotations["note"]; got != "it's \"quoted\"\nand two lines" {
		t.Errorf("pod annotation came back as %q", got)
	}
	// The oom_score_adj asked (-997) is clamped to 0: this host refuses
	// lowering it.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/oom_score_adj", ctrPid)); err != nil || strings.TrimSpace(string(b)) != "0" {
		t.Errorf("oom_score_adj %q %v", b, err)
	}

	// A restart of ctrfs-cri keeps the pod and its container.
	c.stop()
	c.start()
	if out := c.run("ps"); !strings.Contains(out, ctrID[:13]) || !strings.Contains(out, "Running") {
		t.Errorf("crictl ps after a restart:\n%s", out)
	}
	if out := c.run("pods"); !strings.Contains(out, podID[:13]) {
		t.Errorf("crictl pods after a restart:\n%s", out)
	}

	// The image says StopSignal SIGINT: the trap makes that a clean exit.
	c.run("stop", "--timeout", "10", ctrID)
	d.waitState(ctrID, "stopped")
	var st struct {
		Status struct {
			State    string `json:"state"`
			ExitCode int    `json:"exitCode"`
			Reason   string `json:"reason"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.run("inspect", "-o", "json", ctrID)), &st); err != nil {
		t.Fatal(err)
	}
	if st.Status.State != "CONTAINER_EXITED" || st.Status.ExitCode != 0 || st.Status.Reason != "Completed" {
		t.Errorf("status after stop: %+v", st.Status)
	}
	c.run("rm", ctrID)
	if _, err := os.Stat(d.path(ctrID)); !os.IsNotExist(err) {
		t.Errorf("container still in the tree after rm: %v", err)
	}
	if out, err := c.try("inspect", ctrID); err == nil {
		t.Errorf("inspect after rm succeeded:\n%s", out)
	}
	c.run("stopp", podID)
	d.waitState(podID, "stopped")
	c.run("stopp", podID) // a stopped sandbox stops again fine
	c.run("rmp", podID)
	if got := d.containers(); len(got) != 0 {
		t.Errorf("containers left: %q", got)
	}
	c.run("rmi", bbRef)
}
