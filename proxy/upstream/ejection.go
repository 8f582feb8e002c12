package upstream

import (
	"context"
	"math/rand/v2"
	"net"
	"time"

	"go.uber.org/zap"
)

// setStateLocked moves e to s, logging one line with the reason, and starts
// what the new state needs: closing connections, rescuing stuck requests,
// probing.
func (p *Pool) setStateLocked(e *Endpoint, s State, reason string) {
	old := e.State()
	if old == s || old == StateDraining {
		return
	}
	e.state.Store(uint32(s))
	e.since.Store(p.now().UnixNano())
	e.reason.Store(&reason)
	p.m.countStateChange(p.opts.Name, old, s, reason)
	p.log.Info("address state changed",
		zap.String("target", e.target.Host), zap.Stringer("address", e.addr),
		zap.Stringer("from", old), zap.Stringer("to", s), zap.String("reason", reason),
		zap.Int64("in_flight", e.inflight.Load()))
	switch s {
	case StateDraining, StateEjected:
		// HAProxy's on-marked-down shutdown-sessions, for idle sessions:
		// idle keep-alive connections close now, busy ones after their
		// request; stuck idempotent requests are re-sent after the grace;
		// requests still connecting go elsewhere now.
		e.abandonConnects()
		e.closeIdle()
		p.scheduleRescue(e)
	case StateStandby:
		e.abandonConnects()
	}
	switch s {
	case StateRunning:
		e.fails.Store(0)
		e.errs5xx.Store(0)
		e.ejections = 0
	case StateSuspect, StateEjected:
		p.startProbeLocked(e)
	case StateRecovering:
		e.fails.Store(0)
		e.errs5xx.Store(0)
		p.goBackground("slow start", func() { p.finishSlowStart(e) })
	}
}

func (p *Pool) setState(e *Endpoint, s State, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.setStateLocked(e, s, reason)
	}
}

// scheduleRescue re-sends, after RescueGrace, the idempotent requests still
// waiting for response headers from e.
func (p *Pool) scheduleRescue(e *Endpoint) {
	if p.opts.RescueGrace < 0 {
		return
	}
	p.goBackground("rescue", func() {
		t := time.NewTimer(p.opts.RescueGrace)
		defer t.Stop()
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		if n := e.rescue(p.now(), p.opts.RescueGrace); n > 0 {
			p.log.Warn("requests re-sent from a failed address",
				zap.String("target", e.target.Host), zap.Stringer("address", e.addr),
				zap.Int("requests", n), zap.Stringer("state", e.State()))
		}
	})
}

func (p *Pool) finishSlowStart(e *Endpoint) {
	t := time.NewTimer(p.opts.SlowStart)
	defer t.Stop()
	select {
	case <-p.ctx.Done():
	case <-t.C:
		p.mu.Lock()
		if e.State() == StateRecovering && p.inDNSLocked(e) {
			p.setStateLocked(e, StateRunning, "slow start done")
		}
		p.mu.Unlock()
	}
}

// connectFailed records a failed connect to e: the first makes it suspect,
// FailuresToEject in a row eject it, and the name is re-resolved at once
// (rate-limited by the resolver) in case the address has moved.
func (p *Pool) connectFailed(e *Endpoint, err error) {
	if p.res != nil && !e.target.isLiteral {
		p.res.RefreshNow(e.target.Host)
	}
	p.failure(e, p.opts.FailuresToEject, "connect failed: "+err.Error())
}

// failure counts one failure of e and moves it to suspect or ejected.
func (p *Pool) failure(e *Endpoint, threshold int, reason string) {
	n := e.fails.Add(1)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	switch s := e.State(); {
	case s == StateDraining || s == StateStandby || s == StateEjected:
	case int(n) >= threshold:
		p.setStateLocked(e, StateEjected, reason)
	case s != StateSuspect:
		p.setStateLocked(e, StateSuspect, reason)
	}
}

// succeeded records a good answer from e (for the 5xx counter).
func (e *Endpoint) succeeded() {
	if e.errs5xx.Load() != 0 {
		e.errs5xx.Store(0)
	}
}

// gatewayFailure counts a 5xx answer or a broken response from e and ejects
// it after Consecutive5xx in a row, unless that would eject more than
// MaxEjectedPercent of the upstream's addresses.
func (p *Pool) gatewayFailure(e *Endpoint, reason string) {
	if p.opts.Consecutive5xx < 0 {
		return
	}
	if int(e.errs5xx.Add(1)) < p.opts.Consecutive5xx {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !e.State().takesRequests() {
		return
	}
	s := p.active.Load()
	ejected := 0
	for _, o := range s.eps {
		if st := o.State(); st == StateEjected || st == StateSuspect {
			ejected++
		}
	}
	if (ejected+1)*100 > p.opts.MaxEjectedPercent*len(s.eps) {
		p.log.Warn("not ejecting: too many addresses ejected already",
			zap.Stringer("address", e.addr), zap.Int("ejected", ejected),
			zap.Int("max_ejected_percent", p.opts.MaxEjectedPercent))
		e.errs5xx.Store(0)
		return
	}
	p.setStateLocked(e, StateEjected, reason)
}

// backoff is the wait before probing an endpoint ejected n times in a row:
// "full jitter" on an exponential base (uniform in [d/2, d], d = base·2^n
// capped), the shape of gRPC's and the seed's GCM-style backoff.
func (p *Pool) backoff(n int) time.Duration {
	d := p.opts.EjectBackoffBase
	for i := 0; i < n && d < p.opts.EjectBackoffCap; i++ {
		d *= 2
	}
	d = min(d, p.opts.EjectBackoffCap)
	return d/2 + rand.N(d/2+1)
}

// startProbeLocked starts the probe loop of e unless one runs.
func (p *Pool) startProbeLocked(e *Endpoint) {
	if e.probing {
		return
	}
	e.probing = true
	p.goBackground("probe", func() { p.probeLoop(e) })
}

// probeLoop probes a suspect or ejected endpoint until it is running again,
// leaves DNS, or the pool closes. A suspect is probed after a short jittered
// delay; an ejected endpoint after backoff(ejections). Restoring checks,
// under the lock, that the current DNS answer still holds the endpoint.
func (p *Pool) probeLoop(e *Endpoint) {
	defer func() {
		p.mu.Lock()
		e.probing = false
		p.mu.Unlock()
	}()
	rises := 0
	for {
		p.mu.Lock()
		st := e.State()
		inDNS := p.inDNSLocked(e)
		wait := p.backoff(0) / 2
		if st == StateEjected {
			wait = p.backoff(e.ejections)
			e.ejections++
		}
		p.mu.Unlock()
		if !inDNS || (st != StateSuspect && st != StateEjected) {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-p.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		p.mu.Lock()
		inDNS = p.inDNSLocked(e) && !p.closed
		p.mu.Unlock()
		if !inDNS {
			return
		}
		err := p.probe(e)
		if err != nil {
			rises = 0
			threshold := p.opts.FailuresToEject
			if p.opts.HealthCheck != nil {
				threshold = p.opts.HealthCheck.Fall
			}
			p.failure(e, threshold, "probe failed: "+err.Error())
			continue
		}
		rises++
		need := 1
		if p.opts.HealthCheck != nil && e.State() == StateEjected {
			need = p.opts.HealthCheck.Rise
		}
		if rises < need {
			continue
		}
		p.mu.Lock()
		if p.inDNSLocked(e) && !p.closed {
			next := StateRunning
			if p.opts.SlowStart > 0 && e.State() == StateEjected {
				next = StateRecovering
			}
			p.setStateLocked(e, next, "probe succeeded")
		}
		p.mu.Unlock()
		return
	}
}

// probe checks e once: the health-check request when one is configured,
// otherwise a TCP connect.
func (p *Pool) probe(e *Endpoint) error {
	if p.opts.HealthCheck != nil {
		return p.check(e)
	}
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.ConnectTimeout)
	defer cancel()
	c, err := (&net.Dialer{}).DialContext(ctx, "tcp", e.hostport)
	if err != nil {
		return err
	}
	return c.Close()
}
