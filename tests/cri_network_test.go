package tests

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// cniNetwork writes a CNI conf dir of its own: a bridge of a unique name on
// a private subnet, no gateway and no masquerade (so neither sysctls nor
// iptables are touched), host-local addresses kept in the test's
// directory. The bridge is removed at the end.
func cniNetwork(tb testing.TB) (confDir, subnetPrefix string) {
	tb.Helper()
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			if os.Getenv("CTRFS_REQUIRE_INTEGRATION") == "1" {
				tb.Fatalf("needs the CNI plugin %s in /usr/lib/cni (apt-get install containernetworking-plugins)", p)
			}
			tb.Skipf("needs the CNI plugin %s in /usr/lib/cni (apt-get install containernetworking-plugins)", p)
		}
	}
	var b [2]byte
	rand.Read(b[:])
	bridge := fmt.Sprintf("ctrfs%02x%02x", b[0], b[1])
	subnetPrefix = fmt.Sprintf("10.%d.%d.", 200+int(b[0])%50, b[1])
	dir := tb.TempDir()
	confDir = filepath.Join(dir, "net.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		tb.Fatal(err)
	}
	conf := map[string]any{
		"cniVersion": "1.0.0", "name": "ctrfs-test",
		"plugins": []any{map[string]any{
			"type": "bridge", "bridge": bridge, "isGateway": false, "ipMasq": false,
			"ipam": map[string]any{"type": "host-local", "dataDir": filepath.Join(dir, "ipam"),
				"ranges": [][]map[string]string{{{"subnet": subnetPrefix + "0/24"}}}},
		}},
	}
	data, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(confDir, "10-test.conflist"), data, 0o644); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	return confDir, subnetPrefix
}

// podIP is the pod's address on the CNI network, as `crictl inspectp`
// shows it ("" without one).
func (c *criServer) podIP(podID string) string {
	c.tb.Helper()
	var st struct {
		Status struct {
			Network struct {
				IP string `json:"ip"`
			} `json:"network"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(c.run("inspectp", "-o", "json", podID)), &st); err != nil {
		c.tb.Fatal(err)
	}
	return st.Status.Network.IP
}

// TestCRINetwork: with a CNI config, NetworkReady is true, each pod gets an
// address of the network through the CNI ADD on its sandbox's namespace
// (PodSandboxStatus shows it), two pods reach each other by it, and
// stopping the pods (CNI DEL) removes their interfaces.
func TestCRINetwork(t *testing.T) {
	hostOnly(t, guestSlowCRI)
	requireIntegration(t)
	confDir, prefix := cniNetwork(t)
	_, bbRef, d, c := criSetup(t, "--cni-conf-dir", confDir)
	dir := t.TempDir()
	if cond := c.networkCondition(); !cond.Status {
		t.Errorf("NetworkReady not true: %+v", cond)
	}
	c.run("pull", bbRef)
	pod := func(name string) (podID, ctrID string) {
		t.Helper()
		p := writeJSON(t, dir, name+".json", map[string]any{
			"metadata": map[string]any{"name": name, "namespace": "default", "uid": "uid-" + name},
			"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
		})
		podID = lastLine(c.run("runp", p))
		if ip := c.podIP(podID); !strings.HasPrefix(ip, prefix) {
			t.Fatalf("pod %s: ip %q, want one of %s0/24", name, ip, prefix)
		}
		ctr := writeJSON(t, dir, name+"-ctr.json", map[string]any{
			"metadata": map[string]any{"name": "main"},
			"image":    map[string]any{"image": bbRef},
			"command":  []string{"/bin/sh", "-c", `while :; do echo "hi from ` + name + `" | nc -l -p 8080; done`},
		})
		id := lastLine(c.run("create", podID, ctr, p))
		c.run("start", id)
		d.waitState(id, "running")
		return podID, id
	}
	podA, ctrA := pod("a")
	podB, ctrB := pod("b")
	ipA, ipB := c.podIP(podA), c.podIP(podB)
	if ipA == ipB {
		t.Fatalf("both pods got %s", ipA)
	}
	waitFor(t, "pod b to reach pod a", func() (bool, string) {
		out, err := c.try("exec", "-s", ctrB, "sh", "-c", "nc -w 2 "+ipA+" 8080")
		return strings.Contains(out, "hi from a"), fmt.Sprintf("%q %v", out, err)
	})
	waitFor(t, "pod a to reach pod b", func() (bool, string) {
		out, err := c.try("exec", "-s", ctrA, "sh", "-c", "nc -w 2 "+ipB+" 8080")
		return strings.Contains(out, "hi from b"), fmt.Sprintf("%q %v", out, err)
	})
	if out, _ := c.try("exec", "-s", ctrA, "sh", "-c", "ip -o addr show eth0"); !strings.Contains(out, ipA+"/24") {
		t.Errorf("eth0 of pod a:\n%s", out)
	}
	c.run("stopp", podA)
	c.run("stopp", podB)
	c.run("stopp", podA) // a second stop: the DEL is not run again
	if _, err := os.Stat(filepath.Join(c.state, "pods", podA, "network.json")); !os.IsNotExist(err) {
		t.Errorf("network record after stop: %v", err)
	}
	c.run("rmp", podA)
	c.run("rmp", podB)
}
