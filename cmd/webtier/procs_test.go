package main

import (
	"testing"
	"time"
)

func TestNextProcs(t *testing.T) {
	tests := []struct {
		name       string
		cur, ceil  int
		used, idle float64
		st         procsState // before the tick
		want       int
		wantSt     procsState // after
	}{
		{"idle process stays at one", 1, 8, 0.01, 7.9, procsState{}, 1, procsState{}},
		{"saturated, machine idle: add the idle cores", 1, 8, 0.95, 6.8, procsState{}, 8, procsState{}},
		{"saturated, two idle cores", 2, 8, 1.85, 2.1, procsState{}, 4, procsState{}},
		{"saturated, most of a core idle: one more", 1, 2, 0.95, 0.8, procsState{}, 2, procsState{}},
		{"saturated, under 3/4 core idle: no more Ps", 1, 2, 0.95, 0.6, procsState{}, 1, procsState{}},
		{"busy but not saturated: keep", 1, 8, 0.85, 7.0, procsState{}, 1, procsState{}},
		{"never above the ceiling", 2, 2, 1.9, 1.5, procsState{}, 2, procsState{}},
		{"busy enough, machine has room: keep", 4, 8, 2.5, 3.0, procsState{}, 4, procsState{}},
		{"half idle Ps counted", 4, 8, 1.5, 6.0, procsState{low: 3}, 4, procsState{low: 4}},
		{"half idle Ps for a second: one goes, growth allowed", 4, 8, 1.5, 6.0, procsState{low: procsShrink - 1}, 3, procsState{}},
		{"machine full and Ps not busy: counted", 2, 2, 1.2, 0.05, procsState{}, 2, procsState{low: 1}},
		{"machine full for a second: one goes, growth held", 2, 2, 1.2, 0.05, procsState{low: procsShrink - 1}, 1, procsState{hold: procsHold}},
		{"held: no growth though saturated with an idle core", 1, 2, 0.95, 0.9, procsState{hold: 5}, 1, procsState{hold: 4}},
		{"hold over: growth again", 1, 2, 0.95, 0.9, procsState{hold: 1}, 2, procsState{}},
		{"machine full and Ps busy: keep", 2, 2, 1.8, 0.05, procsState{low: 5}, 2, procsState{}},
		{"a busy tick resets the count", 3, 8, 1.6, 4.0, procsState{low: 7}, 3, procsState{}},
		{"never below one", 1, 8, 0.0, 0.0, procsState{low: procsShrink - 1}, 1, procsState{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			got := nextProcs(tt.cur, tt.ceil, procsSample{used: tt.used, idle: tt.idle}, &st)
			if got != tt.want || st != tt.wantSt {
				t.Errorf("nextProcs(%d, %d, used %.2f, idle %.2f, %+v) = %d, %+v; want %d, %+v",
					tt.cur, tt.ceil, tt.used, tt.idle, tt.st, got, st, tt.want, tt.wantSt)
			}
		})
	}
}

// TestProcsMeter reads the real /proc/stat, getrusage and runtime/metrics:
// a busy loop shows as CPU used by this process, 2 MiB allocated as
// allocated.
func TestProcsMeter(t *testing.T) {
	var m procsMeter
	if !m.read() {
		t.Skip("no /proc/stat here")
	}
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	_ = x
	for range 32 {
		sink = make([]byte, 64<<10)
	}
	s, ok := m.sample()
	if !ok {
		t.Fatal("second sample failed")
	}
	if s.used <= 0 || s.idle < 0 {
		t.Fatalf("sample %+v: want used > 0 and idle >= 0", s)
	}
	if s.allocated < 2<<20 {
		t.Errorf("sample %+v: want at least 2 MiB allocated", s)
	}
}

// sink keeps TestProcsMeter's allocations from being optimized away.
var sink []byte

// An idle process is not woken every 100 ms: quiet, the ticks double up
// to procsIdleTick; load brings them back to procsTick; the first tick
// after procsRelease of quiet releases memory, and the first after
// procsReleaseAgain once more, per quiet spell.
func TestNextTick(t *testing.T) {
	const quiet, busy = 0.01, 0.3
	tests := []struct {
		name        string
		used        float64
		waited      time.Duration
		st          idleState
		want        time.Duration
		wantRelease bool
		wantSt      idleState
	}{
		{"load: short ticks", busy, procsTick, idleState{}, procsTick, false, idleState{}},
		{"quiet: ticks double", quiet, procsTick, idleState{}, 2 * procsTick, false, idleState{quiet: procsTick}},
		{"quiet long enough: release", quiet, 2 * procsTick, idleState{quiet: procsTick}, 4 * procsTick, true, idleState{quiet: 3 * procsTick, released: 1}},
		{"still quiet: no release until procsReleaseAgain", quiet, 4 * procsTick, idleState{quiet: 3 * procsTick, released: 1}, 8 * procsTick, false, idleState{quiet: 7 * procsTick, released: 1}},
		{"quiet for procsReleaseAgain: release again", quiet, procsIdleTick, idleState{quiet: procsReleaseAgain - time.Second, released: 1}, procsIdleTick, true, idleState{quiet: procsReleaseAgain - time.Second + procsIdleTick, released: 2}},
		{"never longer than procsIdleTick, no third release", quiet, procsIdleTick, idleState{quiet: time.Minute, released: 2}, procsIdleTick, false, idleState{quiet: time.Minute + procsIdleTick, released: 2}},
		{"load after a quiet spell: short ticks, release again next spell", busy, procsIdleTick, idleState{quiet: time.Minute, released: 2}, procsTick, false, idleState{}},
		{"procsQuiet itself is load", procsQuiet, procsIdleTick, idleState{quiet: time.Minute, released: 2}, procsTick, false, idleState{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			got, release := nextTick(procsSample{used: tt.used, idle: 1}, tt.waited, &st)
			if got != tt.want || release != tt.wantRelease || st != tt.wantSt {
				t.Errorf("nextTick(used %.2f, waited %v, %+v) = %v, %v, %+v; want %v, %v, %+v",
					tt.used, tt.waited, tt.st, got, release, st, tt.want, tt.wantRelease, tt.wantSt)
			}
		})
	}
}

// A burst too short to show in a long tick's CPU still ends the quiet
// spell when it allocated procsAllocBurst, so that its memory is released
// procsRelease after it; what an idle process allocates per tick does not.
func TestNextTickAllocation(t *testing.T) {
	spell := idleState{quiet: time.Minute, released: 2}
	tests := []struct {
		name        string
		allocated   uint64
		want        time.Duration
		wantRelease bool
		wantSt      idleState
	}{
		{"burst: short ticks, a new spell", procsAllocBurst, procsTick, false, idleState{}},
		{"a few KiB: still quiet", 64 << 10, procsIdleTick, false, idleState{quiet: time.Minute + procsIdleTick, released: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := spell
			got, release := nextTick(procsSample{used: 0.01, idle: 1, allocated: tt.allocated}, procsIdleTick, &st)
			if got != tt.want || release != tt.wantRelease || st != tt.wantSt {
				t.Errorf("nextTick(allocated %d) = %v, %v, %+v; want %v, %v, %+v",
					tt.allocated, got, release, st, tt.want, tt.wantRelease, tt.wantSt)
			}
		})
	}
	// The spell the burst started releases memory procsRelease later.
	st := idleState{}
	var released bool
	for wait := procsTick; !released && st.quiet < procsReleaseAgain; {
		wait, released = nextTick(procsSample{used: 0.01, idle: 1}, wait, &st)
	}
	if !released || st.quiet < procsRelease || st.quiet >= 2*procsRelease {
		t.Errorf("after a burst: released %v at %v of quiet; want a release between %v and %v", released, st.quiet, procsRelease, 2*procsRelease)
	}
}
