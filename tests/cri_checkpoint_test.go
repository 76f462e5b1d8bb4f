package tests

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCRICheckpoint: `crictl checkpoint --export ARCHIVE` (CheckpointContainer)
// through the tree's `checkpoint NAME --dir DIR`. Where CRIU works (the
// QEMU guests) the archive holds CRIU's images under checkpoint/, spec.dump
// and config.dump, and the container runs on. Where `criu check` fails
// (this kind of host: vDSO) the call fails with CRIU's reason, the
// container runs on, and nothing is left: no archive, no temporary file,
// no checkpoint directory.
func TestCRICheckpoint(t *testing.T) {
	requireIntegration(t)
	why := criuCheck(t)
	_, bbRef, d, c := criSetup(t)
	dir := t.TempDir()
	c.run("pull", bbRef)
	pod := writeJSON(t, dir, "pod.json", map[string]any{
		"metadata": map[string]any{"name": "cppod", "namespace": "default", "uid": "uid-cp"},
		"linux":    map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{}}},
	})
	ctr := writeJSON(t, dir, "ctr.json", map[string]any{
		"metadata": map[string]any{"name": "main"},
		"image":    map[string]any{"image": bbRef},
		"command":  []string{"/bin/sh", "-c", "trap 'exit 0' INT TERM; while :; do sleep 0.2; done"},
		// Its own pid namespace (the kubelet's default): CRIU dumps a
		// process tree from its namespace's init.
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"pid": 1}}},
	})
	podID := lastLine(c.run("runp", pod))
	ctrID := lastLine(c.run("create", podID, ctr, pod))
	c.run("start", ctrID)
	d.waitState(ctrID, "running")
	pid := d.initPid(ctrID)

	outDir := filepath.Join(dir, "out")
	if err := os.Mkdir(outDir, 0o755); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(outDir, "main.tar")
	out, err := c.try("checkpoint", "--export", archive, ctrID)
	if why == "" {
		if err != nil {
			t.Fatalf("crictl checkpoint: %v\n%s", err, out)
		}
		names := tarNames(t, archive)
		for _, want := range []string{"checkpoint/inventory.img", "checkpoint/dump.log", "checkpoint/config.json", "spec.dump", "config.dump"} {
			if !names[want] {
				t.Errorf("%s not in the archive: %v", want, names)
			}
		}
	} else {
		t.Logf("CRIU cannot checkpoint here (%s): the failure path is tested", why)
		want := "criu check fails on this host"
		if why == "criu is not installed" {
			want = why
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("crictl checkpoint: %v, want an error saying %q\n%s", err, want, out)
		}
		if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
			t.Errorf("left in the archive's directory: %v", ents)
		}
	}
	// Either way: the container runs on, with the same init, and nothing
	// of the order is left in the server's directory or the bundle.
	if st := d.readTrim(ctrID, "state"); st != "running" || d.initPid(ctrID) != pid {
		t.Errorf("after the checkpoint: state %s, pid %d (was %d)", st, d.initPid(ctrID), pid)
	}
	if ents, _ := os.ReadDir(filepath.Join(c.state, "tmp")); len(ents) != 0 {
		t.Errorf("left in the server's tmp: %v", ents)
	}
	if got := d.readDir(ctrID, "checkpoints"); len(got) != 0 {
		t.Errorf("checkpoints of the container: %q", got)
	}
	// Bad requests: a relative location; a stopped container.
	if _, err := c.try("checkpoint", "--export", "rel.tar", ctrID); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("checkpoint to a relative path: %v", err)
	}
	c.run("stop", "--timeout", "10", ctrID)
	if _, err := c.try("checkpoint", "--export", archive+"2", ctrID); err == nil || !strings.Contains(err.Error(), "FailedPrecondition") {
		t.Errorf("checkpoint of a stopped container: %v", err)
	}
	c.run("rmp", "-f", podID)
}

// tarNames lists the entries of a tar archive.
func tarNames(tb testing.TB, path string) map[string]bool {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	names := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		names[h.Name] = true
		if h.Name == "spec.dump" || h.Name == "config.dump" {
			var v map[string]any
			if err := json.NewDecoder(tr).Decode(&v); err != nil {
				tb.Errorf("%s: %v", h.Name, err)
			}
		}
	}
}
