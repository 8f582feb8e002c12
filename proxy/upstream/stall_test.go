package upstream

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// stallTarget is a backend connection as the stall watch sees it.
type stallTarget struct {
	stalled     bool
	interrupted atomic.Int32
}

func (s *stallTarget) Interrupt()    { s.interrupted.Add(1) }
func (s *stallTarget) Stalled() bool { return s.stalled }

// stallPool returns a pool of two addresses, closed with the test.
func stallPool(t *testing.T) *Pool {
	t.Helper()
	p, err := New(fastOpts("app", Target{Scheme: "http", Host: "127.0.0.1", Port: 9},
		Target{Scheme: "http", Host: "127.0.0.2", Port: 9}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// The stall watch ends the tries whose connection stalled once they are
// old enough, leaves the others (a slow backend that acknowledges is not
// a dead one), and says whether any try still waits.
func TestPool_checkStallsEndsOnlyStalledTries(t *testing.T) {
	p := stallPool(t)
	e := p.active.Load().eps[0]
	start := time.Now()
	try := func(stalled bool, age time.Duration) (*attempt, *stallTarget) {
		a, c := &attempt{start: start.Add(-age), watched: true}, &stallTarget{stalled: stalled}
		a.intr.Attach(c)
		e.track(a)
		return a, c
	}
	stuck, stuckConn := try(true, stallAge)
	young, youngConn := try(true, stallAge/2)
	slow, slowConn := try(false, 10*stallAge)

	if busy := p.checkStalls(start); !busy {
		t.Error("checkStalls reported no waiting try; want busy")
	}
	if n := stuckConn.interrupted.Load(); n != 1 || stuck.intr.Cause() != errStalled {
		t.Errorf("stalled try: interrupted %d times, cause %v; want once, %v", n, stuck.intr.Cause(), errStalled)
	}
	for name, c := range map[string]*stallTarget{"young": youngConn, "acknowledged": slowConn} {
		if n := c.interrupted.Load(); n != 0 {
			t.Errorf("%s try interrupted %d times; want left alone", name, n)
		}
	}
	e.mu.Lock()
	_, stuckWaits := e.waiting[stuck]
	n := len(e.waiting)
	e.mu.Unlock()
	if stuckWaits || n != 2 {
		t.Errorf("after the check %d tries wait (stalled one among them: %v); want the 2 others", n, stuckWaits)
	}

	e.untrack(young)
	e.untrack(slow)
	if busy := p.checkStalls(start); busy {
		t.Error("checkStalls reported busy with no try waiting")
	}
}

// A stalled try with no other address to go to is left waiting (ended at
// the first check after one appears), so that it is not answered 502 while
// DNS is about to name the address that replaced the dead one.
func TestPool_checkStallsKeepsTryWithNowhereToGo(t *testing.T) {
	p := stallPool(t)
	eps := p.active.Load().eps
	e, other := eps[0], eps[1]
	other.state.Store(uint32(StateEjected))
	a, c := &attempt{start: time.Now().Add(-stallAge), watched: true}, &stallTarget{stalled: true}
	a.intr.Attach(c)
	e.track(a)
	p.checkStalls(time.Now())
	if n := c.interrupted.Load(); n != 0 {
		t.Fatalf("stalled try with no other address interrupted %d times; want it left waiting", n)
	}
	other.state.Store(uint32(StateRunning))
	p.checkStalls(time.Now())
	if n := c.interrupted.Load(); n != 1 {
		t.Errorf("stalled try interrupted %d times once another address runs; want once", n)
	}
}

// stalledConn is a connection GotConn names, as connStaller asks it.
type stalledConn struct {
	net.Conn
	stalled bool
}

func (c stalledConn) Stalled() bool { return c.stalled }

// A try with a context of its own (net/http's Transport: engine std,
// https:// targets) is watched through the connection GotConn named
// (connStaller) and ended by its context, with errStalled as the cause;
// before GotConn there is nothing to ask, and an acknowledged connection
// is left alone.
func TestPool_checkStallsEndsContextTry(t *testing.T) {
	p := stallPool(t)
	e := p.active.Load().eps[0]
	try := func() (*attempt, context.Context) {
		ctx, cancel := context.WithCancelCause(context.Background())
		a := &attempt{cancel: cancel, start: time.Now().Add(-stallAge), watched: true}
		e.track(a)
		return a, ctx
	}
	stuck, stuckCtx := try()
	slow, slowCtx := try()
	if busy := p.checkStalls(time.Now()); !busy || stuckCtx.Err() != nil {
		t.Fatalf("before GotConn: busy %v, try's context %v; want busy and the try left alone", busy, stuckCtx.Err())
	}
	stuck.intr.Attach(connStaller{stalledConn{stalled: true}})
	slow.intr.Attach(connStaller{stalledConn{stalled: false}})
	p.checkStalls(time.Now())
	if cause := context.Cause(stuckCtx); cause != errStalled {
		t.Errorf("stalled try's context: cause %v; want %v", cause, errStalled)
	}
	if slowCtx.Err() != nil {
		t.Errorf("acknowledged try's context: %v; want it left alone", context.Cause(slowCtx))
	}
}

// A try the stall watch ended is re-sent only when it is idempotent (the
// watch only looks at tries the rescue path tracks, which are), and counts
// as a dead connection.
func TestPool_stalledTryRetriedOnlyIfIdempotent(t *testing.T) {
	p, err := New(fastOpts("app", Target{Scheme: "http", Host: "127.0.0.1", Port: 9}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.retryable(&deadConnError{errStalled}, true, nil) {
		t.Error("a stalled idempotent try is not retryable")
	}
	if p.retryable(&deadConnError{errStalled}, false, nil) {
		t.Error("a stalled non-idempotent try is retryable")
	}
	if got := retryReason(&deadConnError{errStalled}); got != "dead_connection" {
		t.Errorf("retry reason %q; want dead_connection", got)
	}
}
