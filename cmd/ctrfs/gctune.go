package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// The daemon's collector. Most of its garbage is I/O buffers (a FUSE read
// of a stream is 128 KiB, twice: ours and the FUSE library's copy), and
// collecting at every doubling of a small heap cost a third of the stream
// throughput: so GOGC=400. Alone, that lets the heap grow to 5× its live
// data (124 MB with 1,000 containers), so a soft memory limit follows the
// live heap: never under minMemoryLimit, and never under limitOverLive×
// the live heap, so a large live heap can never make the collector run
// without pause (what a fixed limit would do). The floor: at 24 MiB the
// stream throughput was within 3% of 48 MiB's and the daemon's RSS with
// 1,000 containers 41 MB instead of 61; at 16 MiB a re-read of a
// finished log lost 20%.
const (
	gcPercent      = 400
	minMemoryLimit = 24 << 20
	limitOverLive  = 5 // in halves: 2.5×
)

// memoryLimitFor is the soft limit for a live heap of live bytes.
func memoryLimitFor(live uint64) int64 {
	return max(int64(minMemoryLimit), int64(live)*limitOverLive/2)
}

// tuneGC sets GOGC and the memory limit, unless the environment sets
// either, and moves the limit after every collection.
func tuneGC() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(minMemoryLimit)
	armGCHook()
}

// armGCHook runs followLiveHeap after the next collection: a cleanup runs
// once its object is found unreachable, which only a collection does. The
// object is 64 bytes: one under 16 without pointers would share a block of
// the tiny allocator, and wait for its neighbours to go too.
func armGCHook() {
	runtime.AddCleanup(new([64]byte), func(struct{}) {
		followLiveHeap()
		armGCHook()
	}, struct{}{})
}

var liveHeapSample = []metrics.Sample{{Name: "/gc/heap/live:bytes"}}

func followLiveHeap() {
	metrics.Read(liveHeapSample)
	if liveHeapSample[0].Value.Kind() == metrics.KindUint64 {
		debug.SetMemoryLimit(memoryLimitFor(liveHeapSample[0].Value.Uint64()))
	}
}
