package shim

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runc "github.com/containerd/go-runc"
	"github.com/ctrfs/ctrfs/internal/atomicfile"
	"github.com/ctrfs/ctrfs/shim/proto"
)

// criuConfig returns the context to run the runtime's restore with: with
// rst.CgroupRoot, one whose environment names a CRIU configuration file
// (CRIU_CONFIG_FILE, which CRIU reads in the runtime's RPC mode too) that
// says `cgroup-root`. runc before 1.2 gives CRIU no cgroup root on cgroup
// v2, and CRIU would put the processes, and the root of their cgroup
// namespace, back in the group they were checkpointed from; a setting the
// runtime does give CRIU wins over the file. A file the daemon's own
// environment names is kept, first.
func criuConfig(ctx context.Context, dir string, rst *proto.Restore) (context.Context, error) {
	if rst == nil || rst.CgroupRoot == "" {
		return ctx, nil
	}
	if strings.ContainsAny(rst.CgroupRoot, "\n\x00") || !filepath.IsAbs(rst.CgroupRoot) {
		return ctx, fmt.Errorf("shim: bad cgroup root %q", rst.CgroupRoot)
	}
	var conf []byte
	if own := os.Getenv("CRIU_CONFIG_FILE"); own != "" {
		b, err := os.ReadFile(own)
		if err != nil && !os.IsNotExist(err) {
			return ctx, fmt.Errorf("shim: CRIU_CONFIG_FILE: %v", err)
		}
		conf = append(b, '\n')
	}
	conf = append(conf, "cgroup-root "+rst.CgroupRoot+"\n"...)
	path := filepath.Join(dir, proto.CRIUConfig)
	if err := atomicfile.WriteFile(path, conf, 0o600); err != nil {
		return ctx, fmt.Errorf("shim: %v", err)
	}
	return runc.WithExtraEnv(ctx, "CRIU_CONFIG_FILE="+path), nil
}
