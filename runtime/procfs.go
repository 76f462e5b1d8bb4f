package runtime

import (
	"github.com/ctrfs/ctrfs/internal/procfs"
)

// alive reports whether pid is still the process that started at start,
// and not a zombie. An unknown start time (0) is never alive: the daemon
// must not signal a pid it cannot tell from a reused one.
func alive(pid int, start uint64) bool {
	return start != 0 && procfs.Alive(pid, start)
}
