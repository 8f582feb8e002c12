package upstream

import (
	"hash/maphash"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// hashSeed keys BalanceHash for this process.
var hashSeed = maphash.MakeSeed()

// pick chooses the endpoint for the next try of req, skipping those in
// tried. It looks at primaries that take requests, then backups that take
// requests, and when none does (every address suspect or ejected) it enters
// panic mode: it tries every address in DNS rather than fail every request,
// as Envoy's panic threshold does. It returns nil only when the upstream has
// no address outside draining and standby, or all were tried.
func (p *Pool) pick(req *http.Request, tried []*Endpoint) *Endpoint {
	s := p.active.Load()
	if len(s.eps) == 0 {
		return nil
	}
	ok := func(e *Endpoint) bool { return e.State().takesRequests() && !contains(tried, e) }
	if e := p.choose(req, s.eps[:s.primary], ok); e != nil {
		p.leavePanic()
		return e
	}
	if e := p.choose(req, s.eps[s.primary:], ok); e != nil {
		p.leavePanic()
		return e
	}
	panicOK := func(e *Endpoint) bool {
		st := e.State()
		return st != StateStandby && st != StateDraining && !contains(tried, e)
	}
	e := p.choose(req, s.eps, panicOK)
	if e != nil && p.panicking.CompareAndSwap(false, true) {
		p.log.Warn("panic mode: no address is healthy; trying them all", zap.Int("addresses", len(s.eps)))
	}
	return e
}

func (p *Pool) leavePanic() {
	if p.panicking.Load() && p.panicking.CompareAndSwap(true, false) {
		p.log.Info("panic mode over: an address is healthy again")
	}
}

func contains(es []*Endpoint, e *Endpoint) bool {
	for _, x := range es {
		if x == e {
			return true
		}
	}
	return false
}

// choose applies the balancing algorithm to the eps for which ok is true.
func (p *Pool) choose(req *http.Request, eps []*Endpoint, ok func(*Endpoint) bool) *Endpoint {
	if len(eps) == 0 {
		return nil
	}
	switch *p.balance.Load() {
	case BalanceRoundRobin:
		return p.roundRobin(eps, ok)
	case BalanceRandomTwo:
		return p.randomTwo(eps, ok)
	case BalanceHash:
		return p.hash(req, eps, ok)
	case BalanceSticky:
		if e := p.sticky(req, eps, ok); e != nil {
			return e
		}
	}
	return p.leastConn(eps, ok)
}

// leastConn picks the endpoint with the fewest in-flight requests per unit
// of (slow-start adjusted) weight. The scan starts at a rotating offset so
// that ties, the common case at low load, go round robin.
func (p *Pool) leastConn(eps []*Endpoint, ok func(*Endpoint) bool) *Endpoint {
	n := len(eps)
	start := int(p.next.Add(1) % uint64(n))
	now := p.slowStartNow()
	var best *Endpoint
	var bestLoad float64
	for i := range n {
		e := eps[(start+i)%n]
		if !ok(e) {
			continue
		}
		load := float64(e.inflight.Load()+1) / e.effectiveWeight(now, p.opts.SlowStart)
		if best == nil || load < bestLoad {
			best, bestLoad = e, load
		}
	}
	return best
}

// slowStartNow is the clock reading effectiveWeight needs; without slow
// start it needs none, and the request path skips reading the clock.
func (p *Pool) slowStartNow() int64 {
	if p.opts.SlowStart <= 0 {
		return 0
	}
	return p.now().UnixNano()
}

// roundRobin cycles through the endpoints, each appearing weight times per
// cycle; ineligible ones are skipped.
func (p *Pool) roundRobin(eps []*Endpoint, ok func(*Endpoint) bool) *Endpoint {
	total := 0
	for _, e := range eps {
		total += e.weight
	}
	w := int(p.next.Add(1) % uint64(total))
	i := 0
	for ; i < len(eps); i++ {
		if w < eps[i].weight {
			break
		}
		w -= eps[i].weight
	}
	for j := range len(eps) {
		if e := eps[(i+j)%len(eps)]; ok(e) {
			return e
		}
	}
	return nil
}

// randomTwo samples two different endpoints and takes the less loaded
// (power of two choices). When either sample may not take the request it
// falls back to least_conn over all, so ineligible addresses never win.
func (p *Pool) randomTwo(eps []*Endpoint, ok func(*Endpoint) bool) *Endpoint {
	n := len(eps)
	if n < 2 {
		return p.leastConn(eps, ok)
	}
	i := rand.N(n)
	j := rand.N(n - 1)
	if j >= i {
		j++
	}
	a, b := eps[i], eps[j]
	if !ok(a) || !ok(b) {
		return p.leastConn(eps, ok)
	}
	now := p.slowStartNow()
	la := float64(a.inflight.Load()+1) / a.effectiveWeight(now, p.opts.SlowStart)
	lb := float64(b.inflight.Load()+1) / b.effectiveWeight(now, p.opts.SlowStart)
	if lb < la {
		return b
	}
	return a
}

// hash picks by rendezvous hashing of the key (a header, or the client IP):
// every endpoint scores hash(key, address) and the highest eligible wins, so
// when an address leaves only its own keys move.
func (p *Pool) hash(req *http.Request, eps []*Endpoint, ok func(*Endpoint) bool) *Endpoint {
	key := ""
	if p.opts.HashHeader != "" {
		key = req.Header.Get(p.opts.HashHeader)
	}
	if key == "" {
		key = clientIP(req)
	}
	var best *Endpoint
	var bestScore uint64
	for _, e := range eps {
		if !ok(e) {
			continue
		}
		var h maphash.Hash
		h.SetSeed(hashSeed)
		h.WriteString(key)
		h.WriteString(e.hostport)
		if s := h.Sum64(); best == nil || s > bestScore {
			best, bestScore = e, s
		}
	}
	return best
}

// clientIP is the client's address for hashing: the host of the
// outbound request's RemoteAddr, which the proxy's front has set to the
// client it decided on (proxy/client.go: the PROXY protocol's client, or
// behind a trusted ELB the client it named in X-Forwarded-For), so that
// the clients behind one ELB node spread over the backends.
func clientIP(req *http.Request) string {
	if h, _, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		return h
	}
	return req.RemoteAddr
}

// sticky routes a request whose session cookie ends in ".<route>" (Tomcat's
// jvmRoute, as mod_jk and mod_proxy_balancer's stickysession read it) to
// the target with that route. It returns nil when there is no such cookie
// or that target has no eligible address, and the caller balances instead.
func (p *Pool) sticky(req *http.Request, eps []*Endpoint, ok func(*Endpoint) bool) *Endpoint {
	route := stickyRoute(req, p.opts.StickyCookie)
	if route == "" {
		return nil
	}
	return p.leastConn(eps, func(e *Endpoint) bool { return e.target.Route == route && ok(e) })
}

// stickyRoute returns the route suffix of the named session cookie, or of
// a ";jsessionid=" path parameter as Tomcat writes it into URLs.
func stickyRoute(req *http.Request, cookie string) string {
	for _, line := range req.Header["Cookie"] {
		for part := range strings.SplitSeq(line, ";") {
			name, val, found := strings.Cut(strings.TrimSpace(part), "=")
			if found && name == cookie {
				if i := strings.LastIndexByte(val, '.'); i >= 0 {
					return val[i+1:]
				}
			}
		}
	}
	if i := strings.Index(req.URL.Path, ";"+strings.ToLower(cookie)+"="); i >= 0 {
		val := req.URL.Path[i+len(cookie)+2:]
		if j := strings.LastIndexByte(val, '.'); j >= 0 {
			return val[j+1:]
		}
	}
	return ""
}
