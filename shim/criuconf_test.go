package shim

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/ctrfs/ctrfs/shim/proto"
)

func TestCRIUConfig(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	if got, err := criuConfig(ctx, dir, &proto.Restore{Path: "/x"}); err != nil || got != ctx {
		t.Errorf("no cgroup root: %v, %v; want the context unchanged", got, err)
	}
	own := filepath.Join(dir, "own.conf")
	if err := os.WriteFile(own, []byte("tcp-established"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CRIU_CONFIG_FILE", own)
	if _, err := criuConfig(ctx, dir, &proto.Restore{CgroupRoot: "/r2"}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, proto.CRIUConfig))
	if err != nil || string(b) != "tcp-established\ncgroup-root /r2\n" {
		t.Errorf("%s = %q, %v", proto.CRIUConfig, b, err)
	}
	for _, bad := range []string{"r2", "/r2\nlog-file x", "/r\x002"} {
		if _, err := criuConfig(ctx, dir, &proto.Restore{CgroupRoot: bad}); err == nil {
			t.Errorf("cgroup root %q accepted", bad)
		}
	}
}
