package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
)

// defaultGCPercent is webtier's GOGC when the environment sets none. A proxy's
// live heap is small (per-connection buffers) and its garbage per request
// large, so at Go's default of 100 the collector ran ~25 times a second
// under load; 200 cut the CPU per request by ~15% in the side-by-side
// benchmark for ~4 MiB more RSS under load, and did not change the memory of
// an idle connection (that memory is live, not garbage). GOGC in the
// environment still wins, as does GOMEMLIMIT.
const defaultGCPercent = 200

func init() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// releaseIdleMemory returns the heap's free pages to the system when the
// process goes quiet (runProcs calls it after 0.3 s and 11 s of a quiet
// spell). Go's scavenger would keep them up to the heap goal, which at
// GOGC=200 is three times the live heap, and the goal of the last
// collection under load stays until the next one (two minutes later if
// nothing allocates): with 19,000 idle keep-alive connections that left
// 2.2 KiB of RSS per connection for about 1.1 KiB in use. The cost is two
// collections and the page faults of the next burst, twice per quiet
// spell (19 ms and, under other load, up to 150 ms of one thread's time at
// 19,000 connections).
func releaseIdleMemory(log *zap.Logger) {
	start := time.Now()
	// The first collection moves what sync.Pools hold (request and
	// response buffers, 24 KiB per worker of the last burst) to their
	// victim caches; the second, FreeOSMemory's, frees them.
	runtime.GC()
	debug.FreeOSMemory()
	if ce := log.Check(zap.DebugLevel, "released free memory while quiet"); ce != nil {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		ce.Write(zap.Duration("took", time.Since(start)), zap.Uint64("heap_live_bytes", ms.HeapAlloc),
			zap.Uint64("heap_released_bytes", ms.HeapReleased))
	}
}
