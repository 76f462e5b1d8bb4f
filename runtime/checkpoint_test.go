package runtime

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ctrfs/ctrfs/internal/criulog"
	"github.com/sirupsen/logrus"
)

func TestCheckpointRequestCheck(t *testing.T) {
	for _, ok := range []CheckpointRequest{
		{Name: "cp1"}, {Name: "a.b_c-1", Dir: "/srv/cp", Exit: true, TCP: true, EmptyNS: []string{"network"}},
	} {
		if err := ok.Check(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
	for _, c := range []struct {
		req CheckpointRequest
		msg string
	}{
		{CheckpointRequest{Name: ""}, "invalid checkpoint name"},
		{CheckpointRequest{Name: "-x"}, "invalid checkpoint name"},
		{CheckpointRequest{Name: ".."}, "invalid checkpoint name"},
		{CheckpointRequest{Name: "a/b"}, "invalid checkpoint name"},
		{CheckpointRequest{Name: strings.Repeat("x", 129)}, "invalid checkpoint name"},
		{CheckpointRequest{Name: "cp", Dir: "rel/dir"}, "absolute"},
		{CheckpointRequest{Name: "cp", EmptyNS: []string{"ipc"}}, "network"},
	} {
		err := c.req.Check()
		if err == nil || KindOf(err) != KindInvalid || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want EINVAL containing %q", c.req, err, c.msg)
		}
	}
}

func TestCreateRequestCheckpointCheck(t *testing.T) {
	ok := CreateRequest{ID: "web", Bundle: "/b", Checkpoint: "cp1", CheckpointDir: "/srv/cp"}
	if err := ok.Check(); err != nil {
		t.Errorf("%+v: %v", ok, err)
	}
	for _, bad := range []CreateRequest{
		{ID: "web", Bundle: "/b", Checkpoint: "../x"},
		{ID: "web", Bundle: "/b", Checkpoint: "cp", CheckpointDir: "rel"},
		{ID: "web", Bundle: "/b", CheckpointDir: "/srv/cp"},
	} {
		if err := bad.Check(); KindOf(err) != KindInvalid {
			t.Errorf("%+v: %v, want EINVAL", bad, err)
		}
	}
}

// TestCriuErrorLines reads the dump.log of a real failed checkpoint (criu
// 3.17 on Linux 6.18, which it does not support).
func TestCriuErrorLines(t *testing.T) {
	got := criulog.FileErrors(filepath.Join("testdata", "criu-dump-vdso.log"))
	want := "vdso: Unexpected rt vDSO area bounds; vdso: Failed to fill self vdso symtable; " +
		"kerndat_vdso_fill_symtable failed when initializing kerndat."
	if got != want {
		t.Errorf("FileErrors = %q\nwant %q", got, want)
	}
	if got := criulog.FileErrors(filepath.Join("testdata", "nosuch.log")); got != "" {
		t.Errorf("FileErrors of a missing log = %q", got)
	}
	if got := criulog.Errors([]byte("Error (criu/a.c:1): one\nWarn (x): no\n(00.1) Error (b.c:2): two\n")); got != "one; two" {
		t.Errorf("criuErrorLines = %q", got)
	}
	if got := runcLogFile.ReplaceAllString("criu failed: type DUMP errno 0\nlog file: /x/.cp.tmp-1/dump.log", ""); got != "criu failed: type DUMP errno 0" {
		t.Errorf("without the log file: %q", got)
	}
}

// TestCheckpointFiles lists, reads and deletes checkpoints in a bundle's
// checkpoints/ directory, without a runtime.
func TestCheckpointFiles(t *testing.T) {
	bundle := t.TempDir()
	quiet := logrus.New()
	quiet.Out = io.Discard
	c := &Container{id: "web", rec: containerRecord{Bundle: bundle}, log: quiet}
	if names, err := c.Checkpoints(); err != nil || names != nil {
		t.Errorf("no checkpoints dir: %v, %v", names, err)
	}
	cps := filepath.Join(bundle, "checkpoints")
	for _, d := range []string{"b", "a", ".a.tmp-1", "noconfig", "-bad"} {
		os.MkdirAll(filepath.Join(cps, d), 0o755)
		if d != "noconfig" {
			os.WriteFile(filepath.Join(cps, d, "config.json"), []byte(`{"name":"`+d+`"}`), 0o644)
		}
	}
	os.WriteFile(filepath.Join(cps, "file"), nil, 0o644)
	names, err := c.Checkpoints()
	if err != nil || !reflect.DeepEqual(names, []string{"a", "b"}) {
		t.Errorf("Checkpoints = %v, %v; want [a b] (not being made, not without config, not a file)", names, err)
	}
	if b, err := c.CheckpointConfig("a"); err != nil || string(b) != `{"name":"a"}` {
		t.Errorf("CheckpointConfig(a) = %s, %v", b, err)
	}
	for name, kind := range map[string]Kind{"nosuch": KindNotFound, "noconfig": KindNotFound, "../b": KindInvalid} {
		if _, err := c.CheckpointConfig(name); KindOf(err) != kind {
			t.Errorf("CheckpointConfig(%q): %v, want kind %d", name, err, kind)
		}
		if err := c.DeleteCheckpoint(name); KindOf(err) != kind {
			t.Errorf("DeleteCheckpoint(%q): %v, want kind %d", name, err, kind)
		}
	}
	if err := c.DeleteCheckpoint("a"); err != nil {
		t.Fatal(err)
	}
	if names, _ := c.Checkpoints(); !reflect.DeepEqual(names, []string{"b"}) {
		t.Errorf("after delete: %v", names)
	}
	ents, _ := os.ReadDir(cps)
	for _, e := range ents {
		if strings.Contains(e.Name(), "deleting") || e.Name() == "a" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

func TestRestoreFrom(t *testing.T) {
	bundle := t.TempDir()
	req := &CreateRequest{ID: "w", Bundle: bundle, Checkpoint: "cp"}
	if _, _, _, err := restoreFrom(context.Background(), req, fileID{}); KindOf(err) != KindNotFound {
		t.Errorf("missing checkpoint: %v, want ENOENT", err)
	}
	dir := filepath.Join(bundle, "checkpoints", "cp")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"name":"cp","tcp":true,"unixSockets":true,"shell":true,"emptyNS":["network"]}`), 0o644)
	r, from, held, err := restoreFrom(context.Background(), req, fileID{})
	if _, lerr := exec.LookPath("criu"); lerr != nil {
		if KindOf(err) != KindRuntime || !strings.Contains(err.Error(), "criu is not installed") {
			t.Errorf("without criu: %v", err)
		}
		return
	}
	defer held.Close()
	// The runtime is given the held directory, not the path a swap could
	// redirect.
	if target, _ := os.Readlink(r.Path); err != nil || from != dir || target != dir || !strings.HasPrefix(r.Path, "/proc/") || !r.TCP || !r.UnixSockets || !r.Shell || !reflect.DeepEqual(r.EmptyNS, []string{"network"}) {
		t.Errorf("restoreFrom = %+v, %v", r, err)
	}
	other := t.TempDir()
	os.MkdirAll(filepath.Join(other, "cp"), 0o755)
	os.WriteFile(filepath.Join(other, "cp", "config.json"), []byte(`{`), 0o644)
	req.CheckpointDir = other
	if _, _, _, err := restoreFrom(context.Background(), req, fileID{}); KindOf(err) != KindInvalid {
		t.Errorf("bad config.json: %v, want EINVAL", err)
	}
}
