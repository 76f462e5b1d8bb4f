package runtime

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkMemoryLimit refuses, on cgroup v2, a memory limit below what the
// container uses now (memory.current). There the kernel takes any
// memory.max, reclaims what it can and OOM-kills the container for the
// rest, where v1 refuses the limit (EBUSY from memory.limit_in_bytes, which
// runc reports): so a typo never kills a container on either. EBUSY as the
// v1 kernel answers: the value is fine, the container's present usage is
// in the way. v1 is left to the kernel, which first reclaims page cache.
func (c *Container) checkMemoryLimit(res *specs.LinuxResources) error {
	if res.Memory == nil || res.Memory.Limit == nil || *res.Memory.Limit < 0 {
		return nil
	}
	cg := c.cgroups()
	if !cg.v2 || cg.memory == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(cg.memory, "memory.current"))
	if err != nil {
		return nil // no memory controller here: runc says what it says
	}
	usage, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || *res.Memory.Limit >= usage {
		return nil
	}
	return Errorf(KindBusy, "update: memory limit %d is below the container's current memory usage of %d bytes (memory.current); "+
		"on cgroup v2 the kernel would OOM-kill the container rather than refuse, so ctrfs refuses: give at least %d, or free memory in the container first",
		*res.Memory.Limit, usage, usage)
}
