package resolver

import (
	"net/netip"
	"testing"
	"time"
)

// TestFlight pins how Resolve callers share resolutions: every request made
// before a resolution ends joins it (pending or in flight), and only a
// request after it ends asks for a new one.
func TestFlight(t *testing.T) {
	e := newEntry("app.test", netip.Addr{}, []string{"app.test."}, time.Minute)
	first := e.next
	if first == nil {
		t.Fatal("new entry has no flight for its first resolution")
	}
	if got := e.request(); got != first {
		t.Errorf("request before the first resolution started = %p; want the first flight %p", got, first)
	}
	f := e.take(true)
	if f != first {
		t.Errorf("take = %p; want the first flight %p", f, first)
	}
	if got := e.request(); got != f {
		t.Errorf("request while in flight = %p; want the flight in progress %p", got, f)
	}
	e.inflight = nil // as run does when the resolution ends
	close(f.done)

	g := e.request()
	if g == nil || g == f {
		t.Fatalf("request after the resolution ended = %p; want a new flight", g)
	}
	if got := e.request(); got != g {
		t.Errorf("second request before start = %p; want the pending %p", got, g)
	}
	if got := len(e.wake); got != 1 {
		t.Errorf("wake tokens = %d; want 1", got)
	}
	if got := e.take(false); got != g {
		t.Errorf("take after a request = %p; want %p", got, g)
	}
	e.inflight = nil
	if got := e.take(false); got != nil {
		t.Errorf("take with nothing due or requested = %p; want nil", got)
	}
	e.dead = true
	if got := e.request(); got != nil {
		t.Errorf("request on a dead entry = %p; want nil", got)
	}
}
