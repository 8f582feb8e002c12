package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Go runs goroutines on GOMAXPROCS "Ps", by default one per CPU. A proxy
// spends most of each request waiting on sockets, so at anything below full
// load an extra P mostly goes idle: its thread parks, and the next goroutine
// made ready (a socket became readable) wakes it again. Each park and wake is
// a futex call and a context switch. Measured on the benchmark's 2-core
// machine (wrk -c50 at about 20k requests/s, proxy, backend and load on the
// same cores): 0.55-0.65 context switches per request with 2 Ps against
// 0.01-0.1 with 1, and 6.0 against 4.5 CPU-s per 100k requests; p99 10 ms
// against 5.5 ms. HAProxy's and nginx's idle threads cost nothing, because
// each owns its connections and sleeps in epoll_wait; Go hands goroutines
// between threads.
//
// So webtier runs with as many Ps as its load keeps busy: it starts with one,
// adds Ps while those it has are saturated and the machine has an idle core
// to run more on, and gives one back after a second in which it could do
// with fewer.
// The ceiling is Go's default (the CPUs the process may use, cgroup quota
// included). GOMAXPROCS in the environment fixes the number instead (the
// ticks and the release below still run). Go's own
// container-aware default (Go 1.25 and later) does not replace it: it
// follows the CPU limit, not the load, so on a 2-core limit it keeps 2 Ps
// at 5% load. (Setting GOMAXPROCS turns off Go's updates of that default,
// so the ceiling is the limit at start: a quota changed later takes a
// restart.)
//
// An idle process is not woken to measure nothing: once it is quiet, the
// ticks space out, doubling up to procsIdleTick (a 100 ms tick
// cost an idle webtier 4 ms of CPU per second, more than nginx or HAProxy
// spend on 19,000 idle connections). Load seen at a long tick brings the
// 100 ms ticks back, so growth from idle waits at most procsIdleTick more.
// (A process quiet with two Ps spaces its ticks too: an idle P costs
// nothing, and one goes after procsShrink of the longer ticks.)
// The same quiet moment returns the heap's free pages to the system
// (releaseIdleMemory).
const (
	procsTick     = 100 * time.Millisecond
	procsGrowBusy = 0.9  // grow when the Ps are this busy (cores used ÷ Ps)...
	procsGrowIdle = 0.75 // ...and the machine has this much of a core idle for another
	procsShrink   = 10   // ticks in a row with too many Ps before one goes
	procsHold     = 50   // ticks without growth after the machine was found full

	// procsIdleTick is the longest wait between ticks while quiet: a
	// tick costs about 30 µs, and a burst after a quiet spell is seen
	// (and its memory released) at most this much later.
	procsIdleTick = time.Second
	procsQuiet    = 0.05 // cores used below which the process is quiet
	// Memory is released after this much quiet, and once more after
	// procsReleaseAgain, when the worker goroutines of the last burst have
	// exited (after 10 s without work: proxy's workerIdle) and their
	// stacks are free.
	procsRelease      = 300 * time.Millisecond
	procsReleaseAgain = 11 * time.Second
	// A tick in which the process allocated this much is not quiet,
	// whatever its CPU: a burst too short to show in the CPU of a long
	// tick (2,000 connections opened and served one request in 0.2 s)
	// leaves its garbage and its collection's heap goal behind, and
	// starts a new quiet spell, whose releases return them. An idle
	// process allocates a few KiB per tick.
	procsAllocBurst = 1 << 20
)

// procsSample is what one tick measured, in cores (CPU-seconds per second),
// and the bytes the process allocated meanwhile.
type procsSample struct {
	used      float64 // by this process: user + system time
	idle      float64 // left idle on the machine
	allocated uint64  // heap bytes allocated since the previous tick
}

// procsState is what nextProcs keeps between ticks.
type procsState struct {
	low  int // ticks in a row that had too many Ps
	hold int // ticks left before growing again
}

// idleState is what nextTick keeps between ticks.
type idleState struct {
	quiet    time.Duration // how long the process has been quiet
	released int           // times memory was released in this quiet spell
}

// nextTick returns the wait before the next tick, given what this one
// measured and how long it waited; and whether this is the
// tick of a quiet spell that should release memory (the first after
// procsRelease of quiet, and the first after procsReleaseAgain). A tick
// that used procsQuiet of a core or allocated procsAllocBurst ends the
// spell.
func nextTick(s procsSample, waited time.Duration, st *idleState) (wait time.Duration, release bool) {
	if s.used >= procsQuiet || s.allocated >= procsAllocBurst {
		*st = idleState{}
		return procsTick, false
	}
	st.quiet += waited
	if st.released == 0 && st.quiet >= procsRelease || st.released == 1 && st.quiet >= procsReleaseAgain {
		st.released++
		release = true
	}
	return min(2*waited, procsIdleTick), release
}

// nextProcs decides the number of Ps after a tick.
func nextProcs(cur, ceiling int, s procsSample, st *procsState) int {
	if st.hold > 0 {
		st.hold--
	}
	if cur < ceiling && st.hold == 0 && s.used >= procsGrowBusy*float64(cur) && s.idle >= procsGrowIdle {
		st.low = 0
		add := max(1, int(s.idle+0.5)) // the idle cores, rounded
		return min(ceiling, cur+add)
	}
	// Too many: at most half of them busy, or the machine is full (its
	// idle CPU under a quarter core) while ours are not all busy: an extra
	// P can then only run on a core another process needs, and costs
	// thread wake-ups without adding throughput.
	halfIdle := s.used < 0.5*float64(cur)
	full := s.idle < 0.25 && s.used < float64(cur)-0.5
	if cur == 1 || !halfIdle && !full {
		st.low = 0
		return cur
	}
	if st.low++; st.low < procsShrink {
		return cur
	}
	st.low = 0
	if full {
		// Growing again at once would find the core idle that the
		// shrink just freed, and flap.
		st.hold = procsHold
	}
	return cur - 1
}

// runProcs adjusts GOMAXPROCS until ctx ends, and releases memory when
// the process goes quiet. It leaves GOMAXPROCS alone when the environment
// sets it or on one CPU, and does nothing where it cannot read the
// machine's idle time.
func runProcs(ctx context.Context, log *zap.Logger) {
	_, fixed := os.LookupEnv("GOMAXPROCS")
	ceiling := runtime.GOMAXPROCS(0)
	adjust := !fixed && ceiling > 1
	var m procsMeter
	if !m.read() {
		log.Info("GOMAXPROCS stays at Go's default: cannot read /proc/stat", zap.Int("gomaxprocs", ceiling))
		return
	}
	cur := 1 // the Ps, when adjusting
	if adjust {
		runtime.GOMAXPROCS(cur)
		log.Debug("GOMAXPROCS follows load", zap.Int("now", cur), zap.Int("ceiling", ceiling))
	}
	wait := procsTick
	t := time.NewTimer(wait)
	defer t.Stop()
	var st procsState
	var idle idleState
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s, ok := m.sample()
		if ok {
			if n := nextProcs(cur, ceiling, s, &st); adjust && n != cur {
				runtime.GOMAXPROCS(n)
				log.Debug("GOMAXPROCS changed", zap.Int("from", cur), zap.Int("to", n),
					zap.Float64("cores_used", s.used), zap.Float64("cores_idle", s.idle))
				cur = n
			}
			var release bool
			if wait, release = nextTick(s, wait, &idle); release {
				releaseIdleMemory(log)
				m.read() // the release's own CPU is not load
			}
		}
		t.Reset(wait)
	}
}

// procsMeter turns the process's CPU time (getrusage) and the machine's
// idle time (/proc/stat) into cores per second between two reads.
type procsMeter struct {
	at       time.Time
	cpu      time.Duration // this process, user + system
	idle     uint64        // machine, clock ticks
	allocs   uint64        // heap bytes allocated since the start
	buf      []byte
	tickRate float64          // clock ticks per second (USER_HZ)
	metric   []metrics.Sample // /gc/heap/allocs:bytes, read without a stop of the world
}

func (m *procsMeter) read() bool {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return false
	}
	idle, ok := m.machineIdle()
	if !ok {
		return false
	}
	if m.metric == nil {
		m.metric = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	}
	metrics.Read(m.metric)
	if m.metric[0].Value.Kind() == metrics.KindUint64 {
		m.allocs = m.metric[0].Value.Uint64()
	}
	m.at = time.Now()
	m.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	m.idle = idle
	if m.tickRate == 0 {
		m.tickRate = 100 // USER_HZ on every Linux architecture Go supports
	}
	return true
}

func (m *procsMeter) sample() (procsSample, bool) {
	at, cpu, idle, allocs := m.at, m.cpu, m.idle, m.allocs
	if !m.read() {
		return procsSample{}, false
	}
	wall := m.at.Sub(at).Seconds()
	if wall <= 0 || m.idle < idle {
		return procsSample{}, false
	}
	return procsSample{
		used:      (m.cpu - cpu).Seconds() / wall,
		idle:      float64(m.idle-idle) / m.tickRate / wall,
		allocated: m.allocs - allocs,
	}, true
}

// machineIdle reads the idle and iowait ticks of all CPUs from the first
// line of /proc/stat ("cpu user nice system idle iowait ...").
func (m *procsMeter) machineIdle() (uint64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if m.buf == nil {
		m.buf = make([]byte, 256)
	}
	n, _ := f.Read(m.buf)
	line, _, _ := bytes.Cut(m.buf[:n], []byte{'\n'})
	fields := bytes.Fields(line)
	if len(fields) < 6 || string(fields[0]) != "cpu" {
		return 0, false
	}
	var sum uint64
	for _, f := range fields[4:6] {
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, true
}
