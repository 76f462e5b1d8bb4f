package shim

import (
	"os/exec"
	"sync"
	"testing"
)

// benchReaper is the one reaper of the benchmark binary: a second one
// would reap the first one's children.
var benchReaper = sync.OnceValue(NewReaper)

// BenchmarkReaperWait: start `true` and wait for it through the reaper, as
// every runtime call does (go-runc's ProcessMonitor): what the wait adds
// to a call of the runtime.
func BenchmarkReaperWait(b *testing.B) {
	r := benchReaper()
	for i := 0; i < b.N; i++ {
		c := exec.Command("true")
		ec, err := r.Start(c)
		if err != nil {
			b.Fatal(err)
		}
		if st, err := r.Wait(c, ec); err != nil || st != 0 {
			b.Fatalf("wait: %d, %v", st, err)
		}
	}
}
