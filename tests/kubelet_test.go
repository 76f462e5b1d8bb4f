package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A real kubelet (k8s.io/kubernetes KUBELET_VERSION, built from the Go
// module proxy by tests/kubelet/build.sh into the user's cache directory)
// runs standalone on ctrfs-cri: static pods from a manifest directory, no
// API server. This is the Kubernetes node, minus the control plane.

const kubeletNode = "ctrfs-kubelet-test"

var (
	kubeletOnce sync.Once
	kubeletBin  string
	kubeletErr  error
)

// kubeletTool finds or builds the kubelet: CTRFS_TEST_BIN_DIR/kubelet when
// there is one, else tests/kubelet/build.sh's cached binary (a cold build
// takes minutes). A failed build skips the test, or fails it under
// CTRFS_REQUIRE_INTEGRATION=1.
func kubeletTool(tb testing.TB) string {
	tb.Helper()
	kubeletOnce.Do(func() {
		if pre := os.Getenv("CTRFS_TEST_BIN_DIR"); pre != "" {
			if p := filepath.Join(pre, "kubelet"); fileExists(p) {
				kubeletBin = p
				return
			}
		}
		if os.Getenv("CTRFS_TEST_IN_GUEST") == "1" {
			kubeletErr = fmt.Errorf("no kubelet in CTRFS_TEST_BIN_DIR, and the guest has no Go to build one")
			return
		}
		out, err := exec.Command("kubelet/build.sh").Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			kubeletErr = fmt.Errorf("tests/kubelet/build.sh: %v\n%s", err, lastLines(stderr, 30))
			return
		}
		kubeletBin = lastLine(string(out))
	})
	if kubeletErr != nil {
		if os.Getenv("CTRFS_REQUIRE_INTEGRATION") != "1" {
			tb.Skipf("no kubelet: %v", kubeletErr)
		}
		tb.Fatalf("no kubelet (CTRFS_REQUIRE_INTEGRATION=1): %v", kubeletErr)
	}
	return kubeletBin
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kubeletHostState is what the kubelet changes on the host whatever its
// flags say: three sysctls it sets (kernel.panic, kernel.panic_on_oops,
// vm.overcommit_memory) and two directories it makes at fixed paths. The
// test puts them back.
var kubeletSysctls = []string{"/proc/sys/kernel/panic", "/proc/sys/kernel/panic_on_oops", "/proc/sys/vm/overcommit_memory"}
var kubeletHostDirs = []string{"/var/lib/kubelet", "/var/log/containers"}

// preserveKubeletHost records those and puts them back at the end of tb;
// podLogsDir is where the kubelet's /var/log/containers links point.
func preserveKubeletHost(tb testing.TB, podLogsDir string) {
	tb.Helper()
	saved := map[string][]byte{}
	for _, p := range kubeletSysctls {
		if b, err := os.ReadFile(p); err == nil {
			saved[p] = b
		}
	}
	existed := map[string]bool{}
	for _, d := range kubeletHostDirs {
		existed[d] = fileExists(d)
	}
	tb.Cleanup(func() {
		for p, b := range saved {
			if err := os.WriteFile(p, b, 0o644); err != nil {
				tb.Errorf("restoring %s: %v", p, err)
			}
		}
		for _, d := range kubeletHostDirs {
			if !existed[d] {
				os.RemoveAll(d)
				continue
			}
			// An existing directory keeps what was there: only the
			// links into this test's logs go.
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				p := filepath.Join(d, e.Name())
				if to, err := os.Readlink(p); err == nil && strings.HasPrefix(to, podLogsDir) {
					os.Remove(p)
				}
			}
		}
	})
}

// kubelet is a running kubelet.
type kubelet struct {
	tb       testing.TB
	cmd      *exec.Cmd
	dir      string // its root dir, cert dir, config and log are here
	manifest string // staticPodPath
	podLogs  string // podLogsDir
	log      string
}

// startKubelet runs a standalone kubelet on the CRI server c: static pods
// from a directory of its own, short sync periods, and nothing made on the
// host that the flags can avoid (no QoS cgroups, no iptables chains, no
// server port, logs and state in a temp dir).
func startKubelet(tb testing.TB, c *criServer) *kubelet {
	tb.Helper()
	bin := kubeletTool(tb)
	dir := tb.TempDir()
	k := &kubelet{tb: tb, dir: dir, manifest: filepath.Join(dir, "manifests"),
		podLogs: filepath.Join(dir, "pods"), log: filepath.Join(dir, "kubelet.log")}
	for _, d := range []string{k.manifest, k.podLogs, filepath.Join(dir, "root"), filepath.Join(dir, "certs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	preserveKubeletHost(tb, k.podLogs)
	ep := "unix://" + c.sock
	config := map[string]any{
		"apiVersion":               "kubelet.config.k8s.io/v1beta1",
		"kind":                     "KubeletConfiguration",
		"staticPodPath":            k.manifest,
		"fileCheckFrequency":       "1s",
		"syncFrequency":            "2s",
		"containerRuntimeEndpoint": ep,
		"imageServiceEndpoint":     ep,
		"podLogsDir":               k.podLogs,
		"cgroupDriver":             "cgroupfs",
		"cgroupsPerQOS":            false,
		"enforceNodeAllocatable":   []string{},
		"failCgroupV1":             false, // this host may be cgroup v1
		"failSwapOn":               false,
		"oomScoreAdj":              0, // this host refuses a negative one
		"makeIPTablesUtilChains":   false,
		"enableServer":             false,
		"readOnlyPort":             0,
		"healthzPort":              0,
		"authentication":           map[string]any{"anonymous": map[string]any{"enabled": true}, "webhook": map[string]any{"enabled": false}},
		"authorization":            map[string]any{"mode": "AlwaysAllow"},
		// A busy test machine must not evict the pods.
		"evictionHard": map[string]string{"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
	}
	cfg := writeJSON(tb, dir, "config.json", config)
	logf, err := os.Create(k.log)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	k.cmd = exec.Command(bin, "--config", cfg, "--root-dir", filepath.Join(dir, "root"),
		"--cert-dir", filepath.Join(dir, "certs"), "--hostname-override", kubeletNode, "--v", "2")
	k.cmd.Stdout, k.cmd.Stderr = logf, logf
	if err := k.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(k.stop)
	return k
}

// stop ends the kubelet by its pid (TERM, then KILL) and unmounts whatever
// it left under its root dir. The pods it ran stay: the CRI server's
// cleanup removes them.
func (k *kubelet) stop() {
	if k.cmd == nil {
		return
	}
	k.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { k.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		k.cmd.Process.Kill()
		<-done
	}
	k.cmd = nil
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		var under []string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], k.dir+"/") {
				under = append(under, f[4])
			}
		}
		for i := len(under) - 1; i >= 0; i-- {
			syscall.Unmount(under[i], syscall.MNT_DETACH)
		}
	}
}

// fail fails the test with what the kubelet and ctrfs-cri logged.
func (k *kubelet) fail(c *criServer, format string, args ...any) {
	k.tb.Helper()
	kl, _ := os.ReadFile(k.log)
	cl, _ := os.ReadFile(c.log)
	k.tb.Fatalf("%s\nkubelet log (tail):\n%s\nctrfs-cri log (tail):\n%s", fmt.Sprintf(format, args...),
		lastLines(string(kl), 60), lastLines(string(cl), 40))
}

// waitKubelet polls cond every half second for up to limit: the kubelet
// acts on its own periods (the container garbage collection runs once a
// minute), longer than the harness's waits.
func (k *kubelet) waitFor(c *criServer, limit time.Duration, what string, cond func() (bool, string)) {
	k.tb.Helper()
	deadline := time.Now().Add(limit * timeoutScale())
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			k.fail(c, "waited %v for %s; last seen: %s", limit*timeoutScale(), what, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// writePod writes a static pod manifest (JSON is YAML) into the kubelet's
// manifest directory, through a rename so that it never reads half a file.
func (k *kubelet) writePod(name string, pod map[string]any) {
	k.tb.Helper()
	tmp := writeJSON(k.tb, k.dir, name+".json.tmp", pod)
	if err := os.Rename(tmp, filepath.Join(k.manifest, name+".json")); err != nil {
		k.tb.Fatal(err)
	}
}

// criPod and criCtr are what `crictl pods -o json` and `crictl ps -o json`
// say of one pod or container.
type criPod struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Metadata struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"metadata"`
}

type criCtr struct {
	ID       string `json:"id"`
	PodID    string `json:"podSandboxId"`
	State    string `json:"state"`
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// podsNamed lists the sandboxes of the pod name, all states.
func (c *criServer) podsNamed(name string) []criPod {
	c.tb.Helper()
	var out struct {
		Items []criPod `json:"items"`
	}
	if err := json.Unmarshal([]byte(c.run("pods", "--name", "^"+name+"$", "-o", "json")), &out); err != nil {
		c.tb.Fatal(err)
	}
	return out.Items
}

// containersOf lists the containers of a sandbox, all states.
func (c *criServer) containersOf(podID string) []criCtr {
	c.tb.Helper()
	var out struct {
		Containers []criCtr `json:"containers"`
	}
	if err := json.Unmarshal([]byte(c.run("ps", "-a", "--pod", podID, "-o", "json")), &out); err != nil {
		c.tb.Fatal(err)
	}
	return out.Containers
}

// runningPod waits until the pod name has a ready sandbox of a uid not in
// old with a running container, and returns them.
func (k *kubelet) runningPod(c *criServer, name string, old ...string) (criPod, criCtr) {
	k.tb.Helper()
	var pod criPod
	var ctr criCtr
	k.waitFor(c, 3*time.Minute, "pod "+name+" to run", func() (bool, string) {
		pods := c.podsNamed(name)
		for _, p := range pods {
			if p.State != "SANDBOX_READY" || containsString(old, p.Metadata.UID) {
				continue
			}
			for _, ct := range c.containersOf(p.ID) {
				if ct.State == "CONTAINER_RUNNING" {
					pod, ctr = p, ct
					return true, ""
				}
			}
		}
		return false, fmt.Sprintf("%+v", pods)
	})
	return pod, ctr
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// staticPod is a static pod manifest of one busybox container that prints
// its name and GEN, then waits for TERM.
func staticPod(name, image, gen string, hostNetwork bool) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": name, "namespace": "default"},
		"spec": map[string]any{
			"hostNetwork":                   hostNetwork,
			"terminationGracePeriodSeconds": 2,
			"containers": []any{map[string]any{
				"name": "main", "image": image, "imagePullPolicy": "IfNotPresent",
				"command": []string{"/bin/sh", "-c", `echo "hello from $POD gen $GEN"; trap "exit 0" TERM; while :; do sleep 1; done`},
				"env":     []any{map[string]string{"name": "POD", "value": name}, map[string]string{"name": "GEN", "value": gen}},
			}},
		},
	}
}

// TestKubelet: a real kubelet, standalone, on ctrfs-cri: two static pods
// (one on the CNI pod network, one with hostNetwork) run, each step seen in
// crictl and in the mounted tree; the containers' lines reach the CRI log
// files under the kubelet's podLogsDir; a changed manifest replaces the pod
// and its container; a removed manifest removes the pod, until nothing of
// it is left in the tree.
func TestKubelet(t *testing.T) {
	requireIntegration(t)
	hostOnly(t, "the kubelet is built with Go on the host; the guests have none")
	kubeletTool(t)
	confDir, prefix := cniNetwork(t)
	_, bbRef, d, c := criSetup(t, "--cni-conf-dir", confDir)
	k := startKubelet(t, c)
	inTree := func(ids ...string) (bool, string) {
		have := d.containers()
		for _, id := range ids {
			if !containsString(have, id) {
				return false, fmt.Sprintf("%s not in ls %s: %q", id, d.mnt, have)
			}
		}
		return true, ""
	}
	// Each step's tree, in -v output: the pods as `ls` of the mount shows them.
	showTree := func(step string) {
		t.Helper()
		var lines []string
		for _, id := range d.containers() {
			st, _ := d.tryRead(id, "state")
			labels, _ := d.tryRead(id, "labels")
			_, kind, _ := strings.Cut(labels, "io.ctrfs.cri.kind=")
			kind, _, _ = strings.Cut(kind, "\n")
			lines = append(lines, id[:12]+" "+kind+" "+strings.TrimSpace(st))
		}
		t.Logf("%s: ls %s (id, kind, state):\n%s", step, d.mnt, strings.Join(lines, "\n"))
	}
	gone := func(ids ...string) (bool, string) {
		have := d.containers()
		for _, id := range ids {
			if containsString(have, id) {
				return false, fmt.Sprintf("%s still in ls %s: %q", id, d.mnt, have)
			}
		}
		return true, ""
	}

	// 1. Both pods run: their sandboxes and containers are containers of
	// the tree, running.
	web, hostweb := "web-"+kubeletNode, "hostweb-"+kubeletNode
	k.writePod("web", staticPod("web", bbRef, "1", false))
	k.writePod("hostweb", staticPod("hostweb", bbRef, "1", true))
	webPod, webCtr := k.runningPod(c, web)
	hostPod, hostCtr := k.runningPod(c, hostweb)
	if ok, why := inTree(webPod.ID, webCtr.ID, hostPod.ID, hostCtr.ID); !ok {
		k.fail(c, "%s", why)
	}
	for _, id := range []string{webPod.ID, webCtr.ID, hostPod.ID, hostCtr.ID} {
		if st := d.readTrim(id, "state"); st != "running" {
			t.Errorf("%s/state: %q", id, st)
		}
	}
	// The web pod is on the CNI network; the host one shares the host's.
	if ip := c.podIP(webPod.ID); !strings.HasPrefix(ip, prefix) {
		t.Errorf("web pod ip %q, want one of %s0/24", ip, prefix)
	}
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	webNet, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", d.initPid(webCtr.ID)))
	hostwebNet, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", d.initPid(hostCtr.ID)))
	if hostwebNet != hostNet || webNet == hostNet || webNet == "" {
		t.Errorf("net namespaces: host %q, web %q, hostweb %q", hostNet, webNet, hostwebNet)
	}

	showTree("both pods run")

	// 2. The containers' lines are in the CRI log files the kubelet named,
	// under its podLogsDir.
	logOf := func(ctrID, want string) {
		t.Helper()
		var st struct {
			Status struct {
				LogPath string `json:"logPath"`
			} `json:"status"`
		}
		if err := json.Unmarshal([]byte(c.run("inspect", "-o", "json", ctrID)), &st); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(st.Status.LogPath, k.podLogs+"/") {
			t.Errorf("log path %q is not under the kubelet's %s", st.Status.LogPath, k.podLogs)
		}
		k.waitFor(c, time.Minute, "the line "+want+" in "+st.Status.LogPath, func() (bool, string) {
			b, _ := os.ReadFile(st.Status.LogPath)
			return strings.Contains(string(b), " stdout F "+want+"\n"), string(b)
		})
	}
	logOf(webCtr.ID, "hello from web gen 1")
	logOf(hostCtr.ID, "hello from hostweb gen 1")

	// 3. A changed manifest is a new pod (a static pod's uid is its
	// manifest's hash): the kubelet stops the old one and runs the new.
	k.writePod("web", staticPod("web", bbRef, "2", false))
	webPod2, webCtr2 := k.runningPod(c, web, webPod.Metadata.UID)
	if ok, why := inTree(webPod2.ID, webCtr2.ID); !ok {
		k.fail(c, "%s", why)
	}
	logOf(webCtr2.ID, "hello from web gen 2")
	k.waitFor(c, time.Minute, "the old web container to stop", func() (bool, string) {
		st, err := d.tryRead(webCtr.ID, "state")
		return err != nil || strings.TrimSpace(st) == "stopped", st
	})

	showTree("web replaced")

	// 4. A removed manifest removes the pod: the kubelet kills it, then its
	// garbage collection (once a minute) removes the sandboxes and
	// containers of every generation from the tree.
	if err := os.Remove(filepath.Join(k.manifest, "web.json")); err != nil {
		t.Fatal(err)
	}
	k.waitFor(c, 3*time.Minute, "the web pods to leave the tree", func() (bool, string) {
		return gone(webPod.ID, webCtr.ID, webPod2.ID, webCtr2.ID)
	})
	if pods := c.podsNamed(web); len(pods) != 0 {
		t.Errorf("crictl pods --name %s after the removal: %+v", web, pods)
	}
	// The host-network pod was left alone all along.
	if ok, why := inTree(hostPod.ID, hostCtr.ID); !ok {
		t.Error(why)
	}
	if st := d.readTrim(hostCtr.ID, "state"); st != "running" {
		t.Errorf("hostweb container: %q", st)
	}
	showTree("web removed")
	logCRICalls(t, c)
}

// logCRICalls logs how often the kubelet called each CRI method, from
// ctrfs-cri's --debug log.
func logCRICalls(t *testing.T, c *criServer) {
	b, err := os.ReadFile(c.log)
	if err != nil {
		return
	}
	n := map[string]int{}
	for _, line := range strings.Split(string(b), "\n") {
		if _, m, ok := strings.Cut(line, "msg=request method=/runtime.v1."); ok {
			n[m]++
		}
	}
	var out []string
	for m, k := range n {
		out = append(out, fmt.Sprintf("%s %d", m, k))
	}
	sort.Strings(out)
	t.Logf("CRI calls: %s", strings.Join(out, ", "))
}
