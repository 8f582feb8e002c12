package upstream

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/resolver"
)

// update applies a new DNS answer for tg: new addresses join, addresses that
// left start draining. It runs on a resolver goroutine and from the
// maintain pass.
func (p *Pool) update(tg *target, a resolver.Answer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	keep := make(map[netip.Addr]bool, len(a.Addrs))
	for _, ip := range a.Addrs {
		keep[ip] = true
		if _, ok := tg.endpoints[ip]; !ok {
			e := p.newEndpoint(tg, ip)
			if tg.standby {
				// A target in standby keeps new addresses out too.
				e.state.Store(uint32(StateStandby))
				e.reason.Store(&reasonTargetStandby)
			}
			tg.endpoints[ip] = e
			if e.State() == StateRecovering {
				p.goBackground("slow start", func() { p.finishSlowStart(e) })
			}
			p.log.Info("address added", zap.String("target", tg.Host),
				zap.Stringer("address", e.addr), zap.Stringer("state", e.State()))
		}
	}
	if len(a.Addrs) > 0 {
		tg.answered = true
	}
	var gone []*Endpoint
	for ip, e := range tg.endpoints {
		if !keep[ip] {
			delete(tg.endpoints, ip)
			gone = append(gone, e)
		}
	}
	p.publishLocked()
	if !tg.heard {
		// After publishing: a request waiting for the first answers picks
		// again as soon as answered is closed, from the new snapshot.
		tg.heard = true
		if p.unanswered--; p.unanswered == 0 {
			close(p.answered)
		}
	}
	// Drain after publishing, so that no request picks a draining endpoint
	// from the new snapshot.
	for _, e := range gone {
		p.setStateLocked(e, StateDraining, "left dns answer")
	}
}

// publishLocked rebuilds the request path's snapshot from the targets.
func (p *Pool) publishLocked() {
	s := &snapshot{}
	for _, backup := range []bool{false, true} {
		for _, tg := range p.targets {
			if tg.Backup != backup {
				continue
			}
			if len(tg.endpoints) == 0 && !tg.isLiteral {
				s.empty = append(s.empty, tg.Host)
			}
			ips := make([]netip.Addr, 0, len(tg.endpoints))
			for ip := range tg.endpoints {
				ips = append(ips, ip)
			}
			slices.SortFunc(ips, netip.Addr.Compare)
			for _, ip := range ips {
				s.eps = append(s.eps, tg.endpoints[ip])
			}
		}
		if !backup {
			s.primary = len(s.eps)
		}
	}
	p.active.Store(s)
}

// inDNSLocked reports whether e is in its target's current answer.
func (p *Pool) inDNSLocked(e *Endpoint) bool {
	return e.target.endpoints[e.addr.Addr()] == e
}

// refreshEmpty asks the resolver to look up again every named target that
// has no address, for a request that found none: a name that lost its
// addresses (an ELB recreated, a record added late) comes back at the next
// request, rate-limited per name by resolver.refresh_now_min_gap, instead
// of at the resolver's next retry.
func (p *Pool) refreshEmpty() {
	if p.res == nil {
		return
	}
	for _, name := range p.active.Load().empty {
		p.res.RefreshNow(name)
	}
}

// maintainLoop runs the maintain pass every MaintainInterval.
func (p *Pool) maintainLoop() {
	t := time.NewTicker(p.opts.MaintainInterval)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			p.Maintain(p.ctx)
		}
	}
}

// Maintain gets a fresh answer for every target name, applies it (so
// ejected addresses the answer no longer contains are forgotten), and
// probes at once the ejected addresses it still contains. It never restores
// an address on any other evidence. Fresh means received within the
// maintain interval and within the answer's TTL: a name the resolver
// refreshed a moment ago by its TTL is not asked again on top (a TTL-1
// name never is); a longer-lived answer is asked again at most once per
// interval. A name whose resolution fails is left as it is.
func (p *Pool) Maintain(ctx context.Context) {
	for _, tg := range p.targets {
		if tg.isLiteral {
			continue
		}
		a, err := p.res.ResolveFresh(ctx, tg.Host, p.opts.MaintainInterval)
		if err != nil {
			p.log.Warn("maintain: fresh resolution failed; nothing restored",
				zap.String("target", tg.Host), zap.Error(err))
			continue
		}
		p.update(tg, a)
		p.mu.Lock()
		for _, e := range tg.endpoints {
			if e.State() == StateEjected {
				e.ejections = 0
				p.startProbeLocked(e)
			}
		}
		p.mu.Unlock()
	}
}
