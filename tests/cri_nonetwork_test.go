package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCRINoNetwork: without any CNI config, NetworkReady is false and
// says why, and a pod still runs, in a network namespace of its own with
// loopback only and no address (docs/cri.md: the choice, against
// containerd's refusal). A config that is there but broken (a plugin
// missing) fails RunPodSandbox and leaves nothing.
func TestCRINoNetwork(t *testing.T) {
	hostOnly(t, guestSlowCRI)
	_, bbRef, d, c := criSetup(t)
	dir := t.TempDir()
	if cond := c.networkCondition(); cond.Status || cond.Reason != "NetworkPluginNotReady" || !strings.Contains(cond.Message, "no CNI network config") {
		t.Errorf("NetworkReady: %+v", cond)
	}
	c.run("pull", bbRef)
	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata": map[string]any{"name": "nonet", "namespace": "default", "uid": "uid-nonet"},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	ctr := writeJSON(t, dir, "ctr.json", map[string]any{
		"metadata": map[string]any{"name": "main"}, "image": map[string]any{"image": bbRef},
		"command": []string{"/bin/sh", "-c", "trap 'exit 0' INT TERM; while :; do sleep 0.2; done"},
	})
	podID := lastLine(c.run("runp", pod))
	ctrID := lastLine(c.run("create", podID, ctr, pod))
	c.run("start", ctrID)
	d.waitState(ctrID, "running")
	if links := c.run("exec", "-s", ctrID, "sh", "-c", "ls /sys/class/net"); strings.Fields(links)[0] != "lo" || len(strings.Fields(links)) != 1 {
		t.Errorf("the pod's interfaces: %q, want lo alone", links)
	}
	if ip := c.run("inspectp", "-o", "go-template", "--template", "{{.status.network.ip}}", podID); strings.TrimSpace(ip) != "" {
		t.Errorf("the pod's ip: %q, want none", ip)
	}
	c.run("stopp", podID)
	c.run("rmp", podID)

	// A config naming a plugin that is not there: no pod.
	conf := filepath.Join(c.state, "..", "cni")
	if err := os.MkdirAll(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	writeJSON(t, conf, "10-broken.conflist", map[string]any{
		"cniVersion": "1.0.0", "name": "broken", "plugins": []any{map[string]any{"type": "no-such-plugin"}},
	})
	before := len(d.containers())
	if _, err := c.try("runp", pod); err == nil || !strings.Contains(err.Error(), "no-such-plugin") {
		t.Errorf("runp with a broken network config: %v", err)
	}
	if after := len(d.containers()); after != before {
		t.Errorf("%d containers after a refused runp, %d before", after, before)
	}
	ents, _ := os.ReadDir(filepath.Join(c.state, "pods"))
	if len(ents) != 0 {
		t.Errorf("pod directories left: %v", ents)
	}
}

// criCondition is a condition of `crictl info`.
type criCondition struct {
	Type    string `json:"type"`
	Status  bool   `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// networkCondition is the NetworkReady condition of `crictl info`.
func (c *criServer) networkCondition() criCondition {
	c.tb.Helper()
	var info struct {
		Status struct {
			Conditions []criCondition `json:"conditions"`
		} `json:"status"`
	}
	out := c.run("info")
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		c.tb.Fatal(err)
	}
	for _, cond := range info.Status.Conditions {
		if cond.Type == "NetworkReady" {
			return cond
		}
	}
	c.tb.Fatalf("crictl info: no NetworkReady condition:\n%s", out)
	return criCondition{}
}
