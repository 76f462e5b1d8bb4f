package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ctrfs/ctrfs/images/imagetest"
)

// cniPortmapNetwork is cniNetwork with the bridge as the pods' default
// gateway (so the host routes to them, and they answer a client of the
// host's own address), and Debian's portmap plugin chained after it,
// taking the pods' port mappings: iptables DNAT rules from the host's
// ports to the pod's. The bridge plugin turns on net.ipv4.ip_forward for
// a gateway; it is set back at the end.
func cniPortmapNetwork(tb testing.TB) (confDir, subnetPrefix string) {
	tb.Helper()
	for _, need := range []string{"/usr/lib/cni/portmap", "/usr/sbin/iptables"} {
		if _, err := os.Stat(need); err != nil {
			imagetest.SkipOrFail(tb, "needs "+need+" (apt-get install containernetworking-plugins iptables)")
		}
	}
	if fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err == nil {
		tb.Cleanup(func() { os.WriteFile("/proc/sys/net/ipv4/ip_forward", fwd, 0o644) })
	}
	confDir, subnetPrefix = cniNetwork(tb)
	p := filepath.Join(confDir, "10-test.conflist")
	raw, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	var conf map[string]any
	if err := json.Unmarshal(raw, &conf); err != nil {
		tb.Fatal(err)
	}
	plugins := conf["plugins"].([]any)
	plugins[0].(map[string]any)["isDefaultGateway"] = true
	conf["plugins"] = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true})
	raw, _ = json.Marshal(conf)
	if err := os.WriteFile(p, raw, 0o644); err != nil {
		tb.Fatal(err)
	}
	return confDir, subnetPrefix
}

// TestCRIHostPort: a pod's port mapping (host_port → container_port)
// reaches the server in the pod from the host, by 127.0.0.1 and by the
// host's own address; after the pod stops (CNI DEL) the port is gone.
func TestCRIHostPort(t *testing.T) {
	hostOnly(t, guestSlowCRI)
	requireIntegration(t)
	confDir, prefix := cniPortmapNetwork(t)
	_, bbRef, d, c := criSetup(t, "--cni-conf-dir", confDir)
	dir := t.TempDir()
	c.run("pull", bbRef)
	hostPort := 30000 + rand.IntN(2000)
	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata":      map[string]any{"name": "hp", "namespace": "default", "uid": "uid-hp"},
		"port_mappings": []map[string]any{{"protocol": 0, "container_port": 8080, "host_port": hostPort}},
		"linux":         map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	ctr := writeJSON(t, dir, "ctr.json", map[string]any{
		"metadata": map[string]any{"name": "srv"},
		"image":    map[string]any{"image": bbRef},
		"command":  []string{"/bin/sh", "-c", `while :; do echo "hello from the pod" | nc -l -p 8080; done`},
	})
	podID := lastLine(c.run("runp", pod))
	// A failed test too must run the CNI DEL: the harness's cleanup
	// deletes containers through the tree, which leaves the host's
	// iptables rules behind.
	t.Cleanup(func() { c.try("stopp", podID) })
	ctrID := lastLine(c.run("create", podID, ctr, pod))
	c.run("start", ctrID)
	d.waitState(ctrID, "running")
	podIP := c.podIP(podID)
	if !strings.HasPrefix(podIP, prefix) {
		t.Fatalf("pod ip %q, want one of %s0/24", podIP, prefix)
	}
	addrs := []string{"127.0.0.1", podIP + ":8080"}
	if ip := hostAddr(); ip != "" {
		addrs = append(addrs, ip)
	}
	for _, a := range addrs {
		if !strings.Contains(a, ":") {
			a = fmt.Sprintf("%s:%d", a, hostPort)
		}
		waitFor(t, "the pod's server at "+a, func() (bool, string) {
			got, err := dialRead(a)
			return strings.Contains(got, "hello from the pod"), fmt.Sprintf("%q %v", got, err)
		})
	}
	c.run("stopp", podID)
	if out, _ := exec.Command("iptables", "-t", "nat", "-S").CombinedOutput(); strings.Contains(string(out), fmt.Sprintf("--dport %d ", hostPort)) {
		t.Errorf("a DNAT rule of port %d is left after the CNI DEL:\n%s", hostPort, out)
	}
	c.run("rmp", podID)
}

// hostAddr is an IPv4 address of the host's own, not loopback ("" if none).
func hostAddr() string {
	ifs, _ := net.InterfaceAddrs()
	for _, a := range ifs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && n.IP.IsGlobalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// dialRead connects to addr and reads what the server says.
func dialRead(addr string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	b, err := io.ReadAll(conn)
	return string(b), err
}
