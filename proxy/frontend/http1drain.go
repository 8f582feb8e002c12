package frontend

import (
	"cmp"
	"slices"
	"time"
)

// drainSteps is how many times, over the second half of the drain wait,
// idle connections are closed: each time a share of those still open, so
// that their clients reconnect a few at a time instead of all at once.
const drainSteps = 10

// minDrainStep bounds how often the idle connections are scanned.
const minDrainStep = 50 * time.Millisecond

// drain turns the drain on or off. On: from now every response says
// Connection: close and ends its connection (serveRequest), and the
// connections still idle after half of spread are closed, with a FIN,
// a share at a time until spread has passed (closeIdleSpread).
func (s *fastServer) drain(on bool, spread time.Duration) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	s.draining.Store(on)
	if s.drainStop != nil {
		close(s.drainStop)
		s.drainStop = nil
	}
	s.srv.SetKeepAlivesEnabled(true) // handed-off connections; off again below
	if on {
		s.drainStop = make(chan struct{})
		go s.closeIdleSpread(s.drainStop, spread)
	}
}

// closeIdleSpread closes idle connections over the second half of over,
// longest idle first, until stop or the server's end. The first half is
// left to the busy connections: each closes after its next response,
// which says so (Connection: close), with no race against a request the
// client is sending; the ones still open after it are idle ones, which a
// close may cross a new request on. Handed-off connections (net/http's)
// lose keep-alive at half time, and net/http closes its idle ones at once.
func (s *fastServer) closeIdleSpread(stop <-chan struct{}, over time.Duration) {
	half := time.NewTimer(over / 2)
	defer half.Stop()
	select {
	case <-stop:
		return
	case <-s.stop:
		return
	case <-half.C:
	}
	s.drainMu.Lock()
	select {
	case <-stop:
		s.drainMu.Unlock()
		return
	default:
		s.srv.SetKeepAlivesEnabled(false)
	}
	s.drainMu.Unlock()
	window := over - over/2
	step := max(window/drainSteps, minDrainStep)
	end := time.Now().Add(window)
	t := time.NewTicker(step)
	defer t.Stop()
	var idle []*fastConn
	for {
		now := time.Now()
		idle = idle[:0]
		s.mu.Lock()
		for fc := range s.conns {
			if fc.state.Load() == connIdle {
				idle = append(idle, fc)
			}
		}
		s.mu.Unlock()
		n := len(idle)
		if left := end.Sub(now); left > 0 {
			// Steps left, this one included: close an even share.
			steps := int(left/step) + 1
			n = (len(idle) + steps - 1) / steps
		}
		// The earliest idle deadline was idle the longest.
		slices.SortFunc(idle, func(a, b *fastConn) int {
			return cmp.Compare(a.deadline.Load(), b.deadline.Load())
		})
		for _, fc := range idle[:n] {
			fc.closeIfIdle()
		}
		if !now.Before(end) {
			return
		}
		select {
		case <-stop:
			return
		case <-s.stop:
			return
		case <-t.C:
		}
	}
}
