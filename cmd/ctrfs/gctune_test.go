package main

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestMemoryLimitFor(t *testing.T) {
	for _, c := range []struct {
		live uint64
		want int64
	}{
		{0, minMemoryLimit},
		{8 << 20, minMemoryLimit},
		{40 << 20, 100 << 20},
		{1 << 30, 5 << 29},
	} {
		if got := memoryLimitFor(c.live); got != c.want {
			t.Errorf("memoryLimitFor(%d) = %d, want %d", c.live, got, c.want)
		}
	}
}

// TestMemoryLimitFollowsLiveHeap keeps 64 MiB live: after a collection the
// limit must have moved above the floor, to 2.5× the live heap.
func TestMemoryLimitFollowsLiveHeap(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	oldPercent := debug.SetGCPercent(100)
	oldLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetGCPercent(oldPercent); debug.SetMemoryLimit(oldLimit) })
	tuneGC()
	live := make([]byte, 64<<20)
	for i := range live {
		live[i] = 1
	}
	deadline := time.Now().Add(10 * time.Second)
	for debug.SetMemoryLimit(-1) < 150<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("memory limit %d after collections with 64 MiB live; want >= 150 MiB", debug.SetMemoryLimit(-1))
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(live)
}
