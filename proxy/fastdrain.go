package proxy

import (
	"cmp"
	"slices"
	"time"
)

// drainSteps is how many times, over the drain wait, idle connections
// are closed: each time a share of those still open, so that their
// clients reconnect a few at a time instead of all at once.
const drainSteps = 20

// minDrainStep bounds how often the idle connections are scanned.
const minDrainStep = 50 * time.Millisecond

// drain turns the drain on or off. On: from now every response says
// Connection: close and ends its connection (serveRequest), handed-off
// connections lose keep-alive, and idle connections are closed, with a
// FIN, spread over spread.
func (s *fastServer) drain(on bool, spread time.Duration) {
	s.drainMu.Lock()
	defer s.drainMu.Unlock()
	s.draining.Store(on)
	s.srv.SetKeepAlivesEnabled(!on)
	if s.drainStop != nil {
		close(s.drainStop)
		s.drainStop = nil
	}
	if on {
		s.drainStop = make(chan struct{})
		go s.closeIdleSpread(s.drainStop, spread)
	}
}

// closeIdleSpread closes the idle connections a share at a time until
// over has passed (then the rest), longest idle first, until stop or the
// server's end. A connection that carries a request meanwhile is closed
// after its response instead; one opened during the drain is closed when
// idle like the others.
func (s *fastServer) closeIdleSpread(stop <-chan struct{}, over time.Duration) {
	step := max(over/drainSteps, minDrainStep)
	end := time.Now().Add(over)
	t := time.NewTicker(step)
	defer t.Stop()
	var idle []*fastConn
	for {
		select {
		case <-stop:
			return
		case <-s.stop:
			return
		case now := <-t.C:
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
		}
	}
}
