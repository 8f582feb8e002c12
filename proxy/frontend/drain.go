package frontend

import (
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// drainState is a Server's drain: the flag the request path reads
// (proxy.DrainState: the health endpoint, Connection: close), and what
// turning it on and off must reach (the listeners being served). It
// outlives reloads: every Handler a Server builds reads the same flag.
type drainState struct {
	flag *proxy.DrainState

	mu        sync.Mutex
	stopping  bool          // the listeners are closing: Undrain refuses
	undrained chan struct{} // closed by Undrain; a new one per Drain
	units     []drainer     // the listeners being served (set by Serve)
}

// draining reports whether the drain is on; a nil state never drains.
func (d *drainState) draining() bool { return d != nil && d.flag.Draining() }

// drainer is a listener being served, as a drain sees it: on, its
// keep-alive connections are closed (idle ones spread over spread, busy
// ones after their response, which says Connection: close) and its HTTP/2
// connections sent away; off, they are kept alive again.
type drainer interface {
	drain(on bool, spread time.Duration)
}

// ErrStopping is Undrain's answer once the listeners are closing.
var ErrStopping = errors.New("frontend: the listeners are closing; too late to undrain")

// Drain starts draining, and returns a channel closed when Undrain ends
// it (nil when the server is stopping already). From now on the health
// endpoints fail, HTTP/1 responses say Connection: close and end their
// connection, idle keep-alive connections are closed (with a FIN, spread
// over the drain wait, so that their clients reconnect through the
// balancer, which by then sends them elsewhere, not all at once), and
// HTTP/2 connections get a GOAWAY (new ones after their first stream).
// Everything is still served: the listeners stay open until Stop. Drain
// is idempotent.
func (s *Server) Drain() (undrained <-chan struct{}) {
	d := s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return nil
	}
	if d.flag.Draining() {
		return d.undrained
	}
	d.undrained = make(chan struct{})
	d.flag.Set(true)
	spread := s.DrainOptions().WaitTime()
	for _, u := range d.units {
		u.drain(true, spread)
	}
	s.log.Info("draining: health endpoints fail, keep-alive connections are being closed",
		zap.Duration("spread_over", spread))
	return d.undrained
}

// Undrain ends a drain before the listeners close: the health endpoints
// answer 200 again and connections are kept alive. It returns ErrStopping
// once Stop (or the end of Serve) has begun; undraining a server that is
// not draining does nothing.
func (s *Server) Undrain() error {
	d := s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return ErrStopping
	}
	if !d.flag.Draining() {
		return nil
	}
	d.flag.Set(false)
	close(d.undrained)
	for _, u := range d.units {
		u.drain(false, 0)
	}
	s.log.Info("drain ended: serving")
	return nil
}

// Draining reports whether the server is draining.
func (s *Server) Draining() bool { return s.drain.draining() }

// Stop makes Serve close the listeners and shut down, as if its context
// were done. From now on Undrain refuses.
func (s *Server) Stop() { s.stopIf(false) }

// StopDrained stops as Stop does if the server is still draining, and
// reports whether it did: a drain wait that ends just as Undrain is
// called leaves the server serving.
func (s *Server) StopDrained() bool { return s.stopIf(true) }

func (s *Server) stopIf(draining bool) bool {
	d := s.drain
	d.mu.Lock()
	if draining && !d.flag.Draining() {
		d.mu.Unlock()
		return false
	}
	d.stopping = true
	d.mu.Unlock()
	s.stopOnce.Do(func() { close(s.stop) })
	return true
}

// DrainOptions returns the drain timing in effect (a reload may change
// it).
func (s *Server) DrainOptions() proxy.DrainOptions { return *s.drainOpts.Load() }

// serveDrain registers the listeners Serve serves, or none (nil) when
// Serve ends: that closes the window for Undrain. A drain begun before
// Serve reaches them now.
func (s *Server) serveDrain(units []drainer) {
	d := s.drain
	d.mu.Lock()
	defer d.mu.Unlock()
	d.units = units
	if units == nil {
		d.stopping = true
		return
	}
	if d.flag.Draining() {
		for _, u := range units {
			u.drain(true, s.DrainOptions().WaitTime())
		}
	}
}
