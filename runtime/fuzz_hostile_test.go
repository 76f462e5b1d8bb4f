package runtime

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzBundleConfig fuzzes bundle loading: config.json's bytes through the
// bounded reader and the parser, then the exec spec built from it. Nothing
// may panic; an accepted bundle has a process and a root.
func FuzzBundleConfig(f *testing.F) {
	for _, s := range []string{
		`{"ociVersion":"1.0.2","process":{"args":["sh"],"cwd":"/","env":["PATH=/bin"]},"root":{"path":"rootfs"}}`,
		`{"process":{"args":["sh"],"cwd":"/","terminal":true,"user":{"uid":0,"gid":0}},"root":{"path":"/r"},"linux":{"resources":{"pids":{"limit":10}}}}`,
		`{"process":null,"root":{"path":"r"}}`, `{"root":{}}`, `[]`, `{`, "{\"process\":{\"args\":[\"\xff\"]},\"root\":{\"path\":\"r\"}}",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, raw []byte) {
		if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		got, spec, _, err := readBundle(context.Background(), dir)
		if err != nil {
			if KindOf(err) != KindInvalid {
				t.Fatalf("error of unexpected kind: %v", err)
			}
			return
		}
		if string(got) != string(raw) || spec.Process == nil || spec.Root == nil || spec.Root.Path == "" {
			t.Fatalf("accepted a bundle without process or root, or changed its bytes")
		}
		base, err := processSpecOf(got)
		if err != nil {
			return
		}
		buildExecSpec(base, &ExecRequest{Name: "x", Args: []string{"true"}})
		buildExecSpec(base, &ExecRequest{Name: "x", Spec: []byte(`{"args":["id"],"cwd":"/"}`)})
	})
}
