package frontend

import (
	"slices"
	"sync"
	"testing"
	"time"
)

func TestDueSecond(t *testing.T) {
	const sec = int64(time.Second)
	tests := []struct {
		name           string
		deadline, base int64
		want           int64
	}{
		{"on a whole second", 100 * sec, 90, 100},
		{"within a second: the next one", 100*sec + 1, 90, 101},
		{"just before a second", 101*sec - 1, 90, 101},
		{"in the past: the next bucket to expire", 50 * sec, 90, 90},
		{"at the horizon", (90 + wheelSlots - 1) * sec, 90, 90 + wheelSlots - 1},
		{"past the horizon: at it", 10_000 * sec, 90, 90 + wheelSlots - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dueSecond(tt.deadline, tt.base); got != tt.want {
				t.Errorf("dueSecond(%d, %d) = %d; want %d", tt.deadline, tt.base, got, tt.want)
			}
		})
	}
}

// The bucket logic: what one expiry returns to be closed, what it files
// again and where, and when it sets the timer for next.
func TestIdleWheelExpire(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) int64 { return t0.Add(d).UnixNano() }
	type conn struct {
		state    int32
		deadline int64 // when filed
		moved    int64 // the deadline at expiry (a later request), 0: unchanged
	}
	tests := []struct {
		name      string
		conns     []conn
		now       time.Duration // after t0
		wantLate  []int         // indexes of conns returned to close
		wantDue   []int64       // each conn's bucket after (0: not in the wheel)
		wantArmed int64         // the second the timer is set for (0: none)
	}{
		{
			name:      "nothing due yet",
			conns:     []conn{{connIdle, at(5 * time.Second), 0}},
			now:       2 * time.Second,
			wantDue:   []int64{1005},
			wantArmed: 1005,
		},
		{
			name:      "idle past its deadline: closed; empty wheel: no timer",
			conns:     []conn{{connIdle, at(5 * time.Second), 0}},
			now:       5 * time.Second,
			wantLate:  []int{0},
			wantDue:   []int64{0},
			wantArmed: 0,
		},
		{
			name:      "a deadline within the second waits for its end",
			conns:     []conn{{connIdle, at(5*time.Second + time.Millisecond), 0}},
			now:       5 * time.Second,
			wantDue:   []int64{1006},
			wantArmed: 1006,
		},
		{
			name: "served a request since: filed at the new deadline, not closed",
			conns: []conn{
				{connIdle, at(5 * time.Second), at(80 * time.Second)},
				{connIdle, at(5 * time.Second), 0},
			},
			now:       6 * time.Second,
			wantLate:  []int{1},
			wantDue:   []int64{1080, 0},
			wantArmed: 1080,
		},
		{
			name: "filed again later than a bucket not yet due: the timer is for the earlier",
			conns: []conn{
				{connIdle, at(1 * time.Second), at(80 * time.Second)},
				{connIdle, at(5 * time.Second), 0},
			},
			now:       1 * time.Second,
			wantDue:   []int64{1080, 1005},
			wantArmed: 1005,
		},
		{
			name:      "serving a request: out of the wheel until it parks",
			conns:     []conn{{connActive, at(5 * time.Second), 0}},
			now:       5 * time.Second,
			wantDue:   []int64{0},
			wantArmed: 0,
		},
		{
			name:      "closed meanwhile: dropped",
			conns:     []conn{{connClosed, at(5 * time.Second), 0}},
			now:       5 * time.Second,
			wantDue:   []int64{0},
			wantArmed: 0,
		},
		{
			name:      "past the horizon: filed at it, then moved on",
			conns:     []conn{{connIdle, at(600 * time.Second), 0}},
			now:       (wheelSlots - 1) * time.Second,
			wantDue:   []int64{1000 + 2*wheelSlots - 1},
			wantArmed: 1000 + 2*wheelSlots - 1,
		},
		{
			name: "several seconds late (a stalled process): every bucket due runs",
			conns: []conn{
				{connIdle, at(1 * time.Second), 0},
				{connIdle, at(3 * time.Second), 0},
				{connIdle, at(9 * time.Second), 0},
			},
			now:       4 * time.Second,
			wantLate:  []int{0, 1},
			wantDue:   []int64{0, 0, 1009},
			wantArmed: 1009,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newIdleWheel(t0, func() {})
			defer w.stop()
			fcs := make([]*fastConn, len(tt.conns))
			for i, c := range tt.conns {
				fc := &fastConn{}
				fc.state.Store(connIdle)
				fc.deadline.Store(c.deadline)
				w.file(fc)
				fc.state.Store(c.state)
				if c.moved != 0 {
					fc.deadline.Store(c.moved)
				}
				fcs[i] = fc
			}
			late := w.expire(t0.Add(tt.now))
			var gotLate []int
			for _, fc := range late {
				gotLate = append(gotLate, slices.Index(fcs, fc))
			}
			slices.Sort(gotLate)
			if !slices.Equal(gotLate, tt.wantLate) {
				t.Errorf("late = %v; want %v", gotLate, tt.wantLate)
			}
			for i, fc := range fcs {
				if got := fc.due.Load(); got != tt.wantDue[i] {
					t.Errorf("conn %d: due %d; want %d", i, got, tt.wantDue[i])
				}
			}
			if w.armed != tt.wantArmed {
				t.Errorf("timer set for %d; want %d", w.armed, tt.wantArmed)
			}
			var filed int
			w.each(func(*fastConn) { filed++ })
			if wantFiled := len(fcs) - count(tt.wantDue, 0); filed != wantFiled || w.n != filed {
				t.Errorf("%d in the wheel (count %d); want %d", filed, w.n, wantFiled)
			}
		})
	}
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

// Filing, removal and expiry from many goroutines at once keep the lists
// whole (run with -race).
func TestIdleWheelConcurrent(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := newIdleWheel(t0, func() {})
	defer w.stop()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				fc := &fastConn{}
				fc.state.Store(connIdle)
				fc.deadline.Store(t0.Add(time.Duration(i%20) * time.Second).UnixNano())
				w.file(fc)
				if i%3 == g%3 {
					fc.state.Store(connClosed)
					w.remove(fc)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range 25 {
			for _, fc := range w.expire(t0.Add(time.Duration(s) * time.Second)) {
				fc.state.Store(connClosed)
			}
		}
	}()
	wg.Wait()
	var filed int
	w.each(func(*fastConn) { filed++ })
	if filed != w.n {
		t.Errorf("lists hold %d; count says %d", filed, w.n)
	}
}

// parked lists the idle connections in the wheel, not the busy or closed
// ones, and a caller may close them (the wheel's lock is not held).
func TestIdleWheelParked(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := newIdleWheel(t0, func() {})
	defer w.stop()
	var fcs []*fastConn
	for i, state := range []int32{connIdle, connActive, connIdle, connClosed} {
		fc := &fastConn{}
		fc.state.Store(connIdle)
		fc.deadline.Store(t0.Add(time.Duration(i+1) * time.Second).UnixNano())
		w.file(fc)
		fc.state.Store(state)
		fcs = append(fcs, fc)
	}
	got := w.parked()
	if len(got) != 2 || !slices.Contains(got, fcs[0]) || !slices.Contains(got, fcs[2]) {
		t.Fatalf("parked() = %v; want connections 0 and 2 of %v", got, fcs)
	}
	for _, fc := range got {
		fc.state.Store(connClosed)
		w.remove(fc) // as fastConn.end does; would deadlock under the lock
	}
	if w.n != 2 {
		t.Errorf("%d left in the wheel; want the 2 not parked", w.n)
	}
}
