package resolver

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// A nameserver that does not answer (a timeout or a network error) is asked
// last for a while, so that one dead server costs one timeout rather than
// one per query, per CNAME hop and per search candidate: with ["dead",
// "live"] every query would otherwise wait QueryTimeout before reaching the
// live one, and changes would be followed a QueryTimeout late. Unbound's
// infrastructure cache and CoreDNS's forward plugin (health checks)
// remember a failing server the same way.
//
// While a server is down, queries go to the others first; once its retry
// time has come, the next query that would have asked it also sends it a
// probe (the same question) in the background. A probe that gets any reply
// (even SERVFAIL: the server is reachable) brings the server back to its
// place in the order; one that does not doubles the wait, from nsRetryMin
// up to nsRetryMax. Servers that answer with a failure rcode stay in order:
// they are reachable, and the rcode may be about one zone only.
const (
	nsRetryMin = 2 * time.Second
	nsRetryMax = time.Minute
)

// nameserver is the health of one server. Its fields are read on every
// query and written rarely, under mu.
type nameserver struct {
	addr string

	mu        sync.Mutex
	down      bool
	downSince time.Time
	retryAt   time.Time
	wait      time.Duration // the current wait between probes
	probing   bool
}

// state reports whether ns is down, and whether a probe should be sent
// now (the caller must then run probe); it claims the probe.
func (ns *nameserver) state(now time.Time) (down, probe bool) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if !ns.down {
		return false, false
	}
	if !ns.probing && !now.Before(ns.retryAt) {
		ns.probing = true
		return true, true
	}
	return true, false
}

// failed records a timeout or network error; it reports whether ns has
// just gone down.
func (ns *nameserver) failed(now time.Time) (wentDown bool, wait time.Duration) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.down {
		ns.wait = min(2*ns.wait, nsRetryMax)
	} else {
		ns.down, ns.downSince, ns.wait, wentDown = true, now, nsRetryMin, true
	}
	ns.retryAt = now.Add(ns.wait)
	return wentDown, ns.wait
}

// answered records a reply; it reports how long ns had been down, or 0 if
// it was up.
func (ns *nameserver) answered(now time.Time) (wasDownFor time.Duration) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if !ns.down {
		return 0
	}
	ns.down = false
	return max(now.Sub(ns.downSince), time.Nanosecond)
}

// order returns the servers to ask, up ones first, each group in the
// configured order, appended to buf; and starts a probe of each down
// server whose retry time has come, asking it (name, qtype).
func (r *Resolver) order(buf []*nameserver, name string, qtype uint16) []*nameserver {
	now := time.Now()
	var downBuf [4]*nameserver
	down := downBuf[:0]
	for _, ns := range r.ns {
		isDown, probe := ns.state(now)
		if !isDown {
			buf = append(buf, ns)
			continue
		}
		down = append(down, ns)
		if probe && !r.goOwned(func() { r.probe(ns, name, qtype) }) {
			ns.endProbe() // closing
		}
	}
	return append(buf, down...)
}

// probe asks a down server one question in the background.
func (r *Resolver) probe(ns *nameserver, name string, qtype uint16) {
	defer ns.endProbe()
	_, err := r.exchangeTC(r.ctx, ns.addr, name, qtype)
	if r.ctx.Err() != nil {
		return
	}
	r.noteReply(ns, err)
}

func (ns *nameserver) endProbe() {
	ns.mu.Lock()
	ns.probing = false
	ns.mu.Unlock()
}

// noteReply updates ns's health after a query to it: err is the
// exchange's error (nil for any reply).
func (r *Resolver) noteReply(ns *nameserver, err error) {
	now := time.Now()
	if err == nil {
		if d := ns.answered(now); d > 0 {
			r.m.nameserversDown.Dec()
			r.log.Info("nameserver answers again; back in its place in the order",
				zap.String("server", ns.addr), zap.Duration("down_for", d.Round(time.Millisecond)))
		}
		return
	}
	if wentDown, wait := ns.failed(now); wentDown {
		r.m.nameserversDown.Inc()
		r.log.Warn("nameserver did not answer; asking it after the others until a probe gets a reply",
			zap.String("server", ns.addr), zap.Error(err), zap.Duration("probe_in", wait))
	}
}
