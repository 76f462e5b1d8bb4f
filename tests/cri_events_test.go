package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crictlCmd is crictl with the server's endpoints and args, not started.
func (c *criServer) crictlCmd(args ...string) *exec.Cmd {
	ep := "unix://" + c.sock
	return exec.Command(c.crictl, append([]string{"--config", "/dev/null", "--runtime-endpoint", ep, "--image-endpoint", ep}, args...)...)
}

// waitOpen waits until the server holds path open, or with open false
// until it no longer does (a subscriber of the tree's events file has
// opened it: from then on it misses nothing; or has let it go).
func (c *criServer) waitOpen(path string, open bool) {
	c.tb.Helper()
	fds := fmt.Sprintf("/proc/%d/fd", c.cmd.Process.Pid)
	waitFor(c.tb, fmt.Sprintf("ctrfs-cri holding %s open: %v", path, open), func() (bool, string) {
		ents, _ := os.ReadDir(fds)
		for _, e := range ents {
			if l, _ := os.Readlink(filepath.Join(fds, e.Name())); l == path {
				return open, ""
			}
		}
		return !open, fmt.Sprintf("%d fds", len(ents))
	})
}

// criEvent is one event as `crictl events -o json` prints it.
type criEvent struct {
	ContainerID string `json:"containerId"`
	Type        string `json:"containerEventType"`
	CreatedAt   string `json:"createdAt"`
	Pod         *struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Metadata struct {
			UID string `json:"uid"`
		} `json:"metadata"`
	} `json:"podSandboxStatus"`
	Containers []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"containersStatuses"`
}

// TestCRIEvents: `crictl events` (GetContainerEvents) streams a pod's and
// its container's lives from the tree's events file, in order, with the
// pod's status and its containers' statuses; exec's exits are not
// container events.
func TestCRIEvents(t *testing.T) {
	_, bbRef, d, c := criSetup(t)
	dir := t.TempDir()
	c.run("pull", bbRef)

	ev := c.crictlCmd("events", "-o", "json")
	out, err := ev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	ev.Stderr = &stderr
	if err := ev.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ev.Process.Kill(); ev.Wait() })
	events := make(chan criEvent, 64)
	go func() {
		defer close(events)
		dec := json.NewDecoder(out)
		for {
			var e criEvent
			if err := dec.Decode(&e); err != nil {
				if err != io.EOF {
					t.Logf("crictl events: %v", err)
				}
				return
			}
			events <- e
		}
	}()
	c.waitOpen(filepath.Join(d.mnt, "events"), true)

	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata": map[string]any{"name": "evpod", "namespace": "default", "uid": "uid-ev"},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	ctr := writeJSON(t, dir, "ctr.json", map[string]any{
		"metadata": map[string]any{"name": "main"},
		"image":    map[string]any{"image": bbRef},
		"command":  []string{"/bin/sh", "-c", "trap 'exit 0' INT TERM; while :; do sleep 0.2; done"},
	})
	podID := lastLine(c.run("runp", pod))
	ctrID := lastLine(c.run("create", podID, ctr, pod))
	c.run("start", ctrID)
	d.waitState(ctrID, "running")
	c.run("exec", "-s", ctrID, "sh", "-c", "exit 0") // an exec's exit: no event
	c.run("stop", "--timeout", "10", ctrID)
	c.run("rm", ctrID)
	c.run("stopp", podID)
	c.run("rmp", podID)

	want := []struct{ id, typ string }{
		{podID, "CONTAINER_CREATED_EVENT"}, {podID, "CONTAINER_STARTED_EVENT"},
		{ctrID, "CONTAINER_CREATED_EVENT"}, {ctrID, "CONTAINER_STARTED_EVENT"},
		{ctrID, "CONTAINER_STOPPED_EVENT"}, {ctrID, "CONTAINER_DELETED_EVENT"},
		{podID, "CONTAINER_STOPPED_EVENT"}, {podID, "CONTAINER_DELETED_EVENT"},
	}
	for i, w := range want {
		var e criEvent
		var ok bool
		select {
		case e, ok = <-events:
		case <-time.After(opTimeout):
		}
		if !ok {
			t.Fatalf("event %d (%s of %.12s): none came; crictl: %s", i, w.typ, w.id, stderr.String())
		}
		if e.ContainerID != w.id || e.Type != w.typ {
			t.Fatalf("event %d: %s of %.12s, want %s of %.12s", i, e.Type, e.ContainerID, w.typ, w.id)
		}
		if e.Pod == nil || e.Pod.ID != podID || e.Pod.Metadata.UID != "uid-ev" {
			t.Errorf("event %d (%s): pod status %+v", i, w.typ, e.Pod)
		}
		// The container's status as it read at its event.
		var ctrState string
		for _, cs := range e.Containers {
			if cs.ID == ctrID {
				ctrState = cs.State
			}
		}
		switch {
		case w.id == ctrID && w.typ == "CONTAINER_STOPPED_EVENT" && ctrState != "CONTAINER_EXITED",
			w.id == ctrID && w.typ == "CONTAINER_DELETED_EVENT" && ctrState != "",
			w.id == podID && w.typ == "CONTAINER_DELETED_EVENT" && (e.Pod == nil || e.Pod.State != "SANDBOX_NOTREADY"):
			t.Errorf("event %d (%s of %.12s): container state %q, pod %+v", i, w.typ, w.id, ctrState, e.Pod)
		}
	}
	// The client goes: the server's read of the events file ends with it.
	ev.Process.Kill()
	ev.Wait()
	c.waitOpen(filepath.Join(d.mnt, "events"), false)
}
