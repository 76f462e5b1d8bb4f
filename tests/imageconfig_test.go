package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCreateImageConfig: `create|run ID --image REF --config PATH` runs the
// image's layers with the caller's whole OCI spec, root.path alone set by
// ctrfs; bad input is refused with its errno and leaves nothing.
func TestCreateImageConfig(t *testing.T) {
	d := startDaemon(t)
	img := testImage(t, "config")
	d.mustCtl("import test/cfg:v1 "+dockerSave(t, img, "test/cfg:v1")+"\n", "images")
	dir := t.TempDir()
	spec := map[string]any{
		"ociVersion": "1.0.2",
		"root":       map[string]any{"path": "/somewhere/else", "readonly": true},
		"process": map[string]any{
			"args": []string{"/bin/sh", "-c", "hostname; cat /hello.txt; touch /x 2>/dev/null || echo read-only"},
			"env":  []string{"PATH=/bin"}, "cwd": "/", "user": map[string]any{"uid": 0, "gid": 0},
		},
		"hostname":    "from-caller",
		"annotations": map[string]string{"who": "caller"},
		"mounts": []map[string]any{
			{"destination": "/proc", "type": "proc", "source": "proc"},
		},
		"linux": map[string]any{"namespaces": []map[string]string{{"type": "pid"}, {"type": "mount"}, {"type": "uts"}}},
	}
	cfg := writeJSON(t, dir, "config.json", spec)
	d.mustCtl("run cfg1 --image test/cfg:v1 --config " + cfg + "\n")
	d.waitState("cfg1", "stopped")
	if out := d.read("cfg1", "processes", "init", "stdout"); out != "from-caller\nconfig\nread-only\n" {
		t.Errorf("output %q", out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(d.read("cfg1", "config.json")), &got); err != nil {
		t.Fatal(err)
	}
	root, _ := got["root"].(map[string]any)
	if root["path"] != "rootfs" || root["readonly"] != true || got["hostname"] != "from-caller" || got["annotations"].(map[string]any)["who"] != "caller" {
		t.Errorf("config.json: root %v, hostname %v, annotations %v", root, got["hostname"], got["annotations"])
	}
	// The caller's file is copied: changing it later changes nothing.
	os.WriteFile(cfg, []byte("{}"), 0o644)
	if !strings.Contains(d.read("cfg1", "config.json"), "from-caller") {
		t.Error("config.json follows the caller's file")
	}
	d.mustCtl("delete cfg1\n")

	noArgs := writeJSON(t, dir, "noargs.json", map[string]any{"ociVersion": "1.0.2", "process": map[string]any{"cwd": "/"}})
	notJSON := filepath.Join(dir, "bad.json")
	os.WriteFile(notJSON, []byte("[1,2"), 0o644)
	os.Symlink(noArgs, filepath.Join(dir, "link.json"))
	good := writeJSON(t, dir, "good.json", spec)
	for _, c := range []struct {
		cmd   string
		errno syscall.Errno
		want  string
	}{
		{"create c1 --image test/cfg:v1 --config " + filepath.Join(dir, "nosuch.json"), syscall.ENOENT, "no such file"},
		{"create c1 --image test/cfg:v1 --config rel.json", syscall.EINVAL, "absolute"},
		{"create c1 --image test/cfg:v1 --config " + noArgs + " --env A=b", syscall.EINVAL, "--config"},
		{"create c1 --image test/cfg:v1 --config " + noArgs + " -- sh", syscall.EINVAL, "--config"},
		{"create c1 /some/bundle --config " + noArgs, syscall.EINVAL, "--image only"},
		{"create c1 --image test/cfg:v1 --config " + noArgs, syscall.EINVAL, "process.args"},
		{"create c1 --image test/cfg:v1 --config " + notJSON, syscall.EINVAL, "not a JSON object"},
		{"create c1 --image test/cfg:v1 --config " + filepath.Join(dir, "link.json"), syscall.EINVAL, "--config"},
		{"create c1 --image test/cfg:v1 --config", syscall.EINVAL, "--config"},
		// --user is looked up in the image's /etc/passwd (it has none).
		{"create c1 --image test/cfg:v1 --config " + good + " --user ghost", syscall.EINVAL, "ghost"},
	} {
		d.wantCtlError(c.cmd+"\n", c.errno, c.want)
	}
	d.checkNoContainers(t)
}
