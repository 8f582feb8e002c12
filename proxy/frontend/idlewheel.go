package frontend

import (
	"sync"
	"time"
)

// idleWheel holds the fast path's parked connections for their timeouts
// (idle_timeout, and read_header_timeout for a connection whose first
// request has not come): a timing wheel of one-second buckets, each a list
// of the connections whose deadline falls in that second. A timer fires
// only for a second that has a bucket in it, so an idle server with one
// connection wakes once per timeout, not once a second; and a bucket's
// turn touches only its own connections, not every parked one (a walk over
// all of them once a second, under the lock that accept and close take,
// cost 2.3 ms per second at 100k connections).
//
// A connection is filed when it is first parked, and stays filed while it
// serves further requests: a request moves its deadline (fastConn.deadline,
// an atomic store per request, as before) but not its bucket. When the
// bucket comes due, a connection whose deadline has moved on is filed
// again at its new deadline, so a busy connection costs the wheel one
// visit per timeout (75 s by default), and a request none. A connection
// that is serving a request when its bucket comes is taken out, and filed
// again when it parks (fastConn.park). Deadlines past the wheel's horizon
// are filed at the horizon and move on from there.
//
// Filing and removal take the wheel's own lock for a list operation each:
// once per connection (its first park, its close), never per request.
type idleWheel struct {
	mu    sync.Mutex
	slots [wheelSlots]*fastConn // list heads, by due second modulo wheelSlots
	base  int64                 // the earliest second not yet expired
	n     int                   // connections filed
	armed int64                 // the second the timer is set for; 0: none
	timer *time.Timer
	done  bool   // stopped: the timer is not set again
	fire  func() // runs when the timer fires (expire and close the late)
}

// wheelSlots is the wheel's horizon in seconds: a deadline within it is
// filed in its own second, one past it at the horizon. It covers the
// default idle_timeout (75 s) and read_header_timeout.
const wheelSlots = 128

// newIdleWheel makes a wheel whose timer calls fire; fire is expected to
// call expire. now is the current time.
func newIdleWheel(now time.Time, fire func()) *idleWheel {
	return &idleWheel{base: now.Unix(), fire: fire}
}

// dueSecond is the wheel second a deadline (UnixNano) is filed in: the
// first whole second at or after it, no earlier than base and no later
// than the horizon.
func dueSecond(deadline, base int64) int64 {
	s := deadline / int64(time.Second)
	if deadline%int64(time.Second) > 0 {
		s++
	}
	return min(max(s, base), base+wheelSlots-1)
}

// file puts fc in the bucket of its deadline, moving it if it is filed
// elsewhere. fc must not be closed.
func (w *idleWheel) file(fc *fastConn) {
	w.mu.Lock()
	w.fileLocked(fc, true)
	w.mu.Unlock()
}

// fileLocked files fc; with arm, it sets the timer for its bucket if that
// comes before the one the timer is set for.
func (w *idleWheel) fileLocked(fc *fastConn, arm bool) {
	if fc.state.Load() == connClosed {
		return // its end has run or runs now: nothing would take it out
	}
	sec := dueSecond(fc.deadline.Load(), w.base)
	if fc.due.Load() == sec {
		return
	}
	w.unlinkLocked(fc)
	slot := &w.slots[sec%wheelSlots]
	fc.wnext = *slot
	if fc.wnext != nil {
		fc.wnext.wprev = fc
	}
	*slot = fc
	fc.due.Store(sec)
	w.n++
	if arm && (w.armed == 0 || sec < w.armed) {
		w.arm(sec)
	}
}

// remove takes fc out of the wheel (when it closes).
func (w *idleWheel) remove(fc *fastConn) {
	if fc.due.Load() == 0 {
		return
	}
	w.mu.Lock()
	w.unlinkLocked(fc)
	w.mu.Unlock()
}

func (w *idleWheel) unlinkLocked(fc *fastConn) {
	sec := fc.due.Load()
	if sec == 0 {
		return
	}
	if fc.wprev != nil {
		fc.wprev.wnext = fc.wnext
	} else {
		w.slots[sec%wheelSlots] = fc.wnext
	}
	if fc.wnext != nil {
		fc.wnext.wprev = fc.wprev
	}
	fc.wprev, fc.wnext = nil, nil
	fc.due.Store(0)
	w.n--
}

// arm sets the timer for the start of second sec (under mu).
func (w *idleWheel) arm(sec int64) {
	if w.done {
		return
	}
	w.armed = sec
	d := time.Until(time.Unix(sec, 0))
	if w.timer == nil {
		w.timer = time.AfterFunc(d, w.fire)
		return
	}
	w.timer.Reset(d)
}

// expire takes out the connections of every bucket due by now and returns
// those that are idle past their deadline, for the caller to close (out of
// the lock). Idle ones whose deadline has moved on are filed again; ones
// serving a request are left out until they park. It sets the timer for
// the next bucket that has connections.
func (w *idleWheel) expire(now time.Time) (late []*fastConn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	nowSec, nowNano := now.Unix(), now.UnixNano()
	end := min(nowSec, w.base+wheelSlots-1)
	var refile []*fastConn
	for ; w.base <= end; w.base++ {
		slot := &w.slots[w.base%wheelSlots]
		for fc := *slot; fc != nil; {
			next := fc.wnext
			fc.wprev, fc.wnext = nil, nil
			fc.due.Store(0)
			w.n--
			switch {
			case fc.state.Load() != connIdle:
				// Serving a request (park files it again), or
				// closing (its end finds it out already).
			case fc.deadline.Load() <= nowNano:
				late = append(late, fc)
			default:
				refile = append(refile, fc)
			}
			fc = next
		}
		*slot = nil
	}
	w.base = max(w.base, nowSec+1)
	for _, fc := range refile {
		w.fileLocked(fc, false)
	}
	// The timer is for the earliest bucket with connections, refiled or
	// filed before.
	w.armed = 0
	for s := w.base; w.n > 0 && s < w.base+wheelSlots; s++ {
		if w.slots[s%wheelSlots] != nil {
			w.arm(s)
			break
		}
	}
	return late
}

// parked returns the connections in the wheel that are idle now: every
// parked connection (the way to visit them, e.g. to close them over a
// drain window). It is a snapshot: one may become active or close after;
// closeIfIdle is safe on any of them.
func (w *idleWheel) parked() []*fastConn {
	var idle []*fastConn
	w.each(func(fc *fastConn) {
		if fc.state.Load() == connIdle {
			idle = append(idle, fc)
		}
	})
	return idle
}

// each calls fn for every connection in the wheel (parked ones, and ones
// that have served a request since they were filed), under the wheel's
// lock: fn must not block or call back into the wheel.
func (w *idleWheel) each(fn func(*fastConn)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, head := range w.slots {
		for fc := head; fc != nil; fc = fc.wnext {
			fn(fc)
		}
	}
}

// stop stops the timer.
func (w *idleWheel) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
	}
	w.done = true
}
