// Package upstream keeps, for each configured upstream, the set of backend
// addresses that may take requests, and sends requests to them.
//
// The only source of addresses is the shared resolver: a Pool subscribes to
// the hostname of each target and rebuilds its address set whenever the DNS
// answer changes. A Pool never resolves a name itself and never keeps an
// address that the current answer does not contain. An address that leaves
// the answer stops getting new requests at once; requests in flight to it
// finish (or, if they are stuck and idempotent, are re-sent elsewhere), and
// its pooled keep-alive connections are closed (net/http does not do that by
// itself: golang/go#23427).
//
// Each address has a State. Connect failures make it suspect and then eject
// it; an ejected address is probed again on a jittered exponential backoff
// and restored only while DNS still lists it. A periodic maintain pass
// forces a fresh resolution of every name and forgets ejected addresses the
// fresh answer no longer contains: httpd's maintain pass restored stale
// start-up addresses, this one can only restore what DNS says now.
//
// The request path reads an immutable snapshot through an atomic pointer
// and per-address atomics; it takes no pool-wide lock and does no DNS lookup.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/resolver"
)

// Resolver is what a Pool needs from the shared resolver. *resolver.Resolver
// implements it.
type Resolver interface {
	// Subscribe calls fn with every new address set of name.
	Subscribe(name string, fn func(resolver.Answer)) (unsubscribe func())
	// RefreshNow asks for a prompt, rate-limited re-resolution of name.
	RefreshNow(name string)
	// ResolveFresh returns an answer for name received within maxAge (and
	// within its TTL), resolving it again if the cached one is older.
	ResolveFresh(ctx context.Context, name string, maxAge time.Duration) (resolver.Answer, error)
}

var _ Resolver = (*resolver.Resolver)(nil)

// ErrNoAddress is returned by RoundTrip when the upstream has no address
// at all (DNS gave none, or every address is draining or in standby).
var ErrNoAddress = errors.New("upstream: no address available")

// errRescued is the cancel cause of an attempt re-sent elsewhere because its
// address was ejected or left DNS while it waited for response headers.
var errRescued = errors.New("upstream: address ejected while waiting for response; re-sent")

// Pool is the live address set of one upstream. It implements
// http.RoundTripper. Pool values must not be copied.
type Pool struct {
	opts Options
	res  Resolver
	log  *zap.Logger
	m    *Metrics
	now  func() time.Time

	// active is the request path's view: replaced whole, never mutated.
	active    atomic.Pointer[snapshot]
	next      atomic.Uint64
	panicking atomic.Bool
	// balance is the algorithm in use: opts.Balance until an operator
	// changes it (SetBalance).
	balance atomic.Pointer[Balance]

	ctx    context.Context // the pool's lifetime; Close cancels it
	cancel context.CancelFunc
	wg     sync.WaitGroup // maintain, health and probe goroutines

	mu      sync.Mutex // guards targets[*].endpoints, Endpoint.ejections/probing, unsub, closed and unanswered
	targets []*target
	unsub   []func()
	closed  bool

	// answered is closed once every named target has had its first DNS
	// answer; unanswered counts those still waiting. A request that finds
	// no address before then waits for it (see RoundTrip) instead of
	// failing because webtier has only just started.
	answered   chan struct{}
	unanswered int

	stall *stallWatch

	testHookAwait func() // if set (by tests, before any request), runs when a request starts waiting for answered
}

// target is one configured Target and the endpoints its name resolves to now.
type target struct {
	Target
	index     int
	isLiteral bool
	answered  bool                     // had a DNS answer with addresses; guarded by Pool.mu
	heard     bool                     // had its first DNS answer, with addresses or not; guarded by Pool.mu
	standby   bool                     // put in standby whole by an operator (SetTargetStandby); guarded by Pool.mu
	endpoints map[netip.Addr]*Endpoint // in the current answer; guarded by Pool.mu
}

// snapshot is an immutable list of the endpoints in the current DNS answers
// (whatever their state), primaries first.
type snapshot struct {
	eps      []*Endpoint
	primary  int // eps[:primary] are primaries, eps[primary:] backups
	maxTotal uint64
	// empty are the named targets whose current answer has no address: a
	// request that finds no address asks the resolver to look them up
	// again (see RoundTrip).
	empty []string
}

// New builds the pool for opts and subscribes every hostname target to res.
// IP-literal targets take requests at once; named targets as soon as the
// resolver has their first answer. Background work (maintain pass, health
// checks, probes) runs until Close.
func New(opts Options, res Resolver, log *zap.Logger) (*Pool, error) {
	if len(opts.Targets) == 0 {
		return nil, fmt.Errorf("upstream %q: no targets", opts.Name)
	}
	if log == nil {
		log = zap.NewNop()
	}
	applyDefaults(&opts)
	m := opts.Metrics
	if m == nil {
		m = NewMetrics(nil)
	}
	p := &Pool{opts: opts, res: res, log: log.With(zap.String("upstream", opts.Name)), m: m, now: time.Now,
		answered: make(chan struct{}), stall: newStallWatch()}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.active.Store(&snapshot{})
	b := opts.Balance
	p.balance.Store(&b)
	for i, t := range opts.Targets {
		if t.Weight <= 0 {
			t.Weight = DefaultWeight
		}
		tg := &target{Target: t, index: i, endpoints: map[netip.Addr]*Endpoint{}}
		if ip, err := netip.ParseAddr(t.Host); err == nil {
			tg.isLiteral = true
			tg.endpoints[ip] = p.newEndpoint(tg, ip)
			tg.answered = true
		} else if res == nil {
			return nil, fmt.Errorf("upstream %q: target %s needs a resolver", opts.Name, t.Host)
		}
		if !tg.isLiteral {
			p.unanswered++
		}
		p.targets = append(p.targets, tg)
	}
	if p.unanswered == 0 {
		close(p.answered)
	}
	p.mu.Lock()
	p.publishLocked()
	p.mu.Unlock()
	for _, tg := range p.targets {
		if tg.isLiteral {
			continue
		}
		unsub := res.Subscribe(tg.Host, func(a resolver.Answer) { p.update(tg, a) })
		p.mu.Lock()
		p.unsub = append(p.unsub, unsub)
		p.mu.Unlock()
	}
	if res != nil && opts.MaintainInterval > 0 {
		p.goBackground("maintain", p.maintainLoop)
	}
	if opts.HealthCheck != nil {
		p.goBackground("health", p.healthLoop)
	}
	p.goBackground("stall watch", p.watchStalls)
	return p, nil
}

func applyDefaults(o *Options) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defInt := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	def(&o.IdleConnTimeout, DefaultIdleConnTimeout)
	defInt(&o.MaxIdlePerAddress, DefaultMaxIdlePerAddress)
	if o.IdleLimit == nil {
		o.IdleLimit = idlepool.NewLimit(DefaultMaxIdleConns)
	}
	if o.Balance == "" {
		o.Balance = DefaultBalance
	}
	if o.StickyCookie == "" {
		o.StickyCookie = DefaultStickyCookie
	}
	defInt(&o.FailuresToEject, DefaultFailuresToEject)
	def(&o.EjectBackoffBase, DefaultEjectBackoffBase)
	def(&o.EjectBackoffCap, DefaultEjectBackoffCap)
	def(&o.MaintainInterval, DefaultMaintainInterval)
	defInt(&o.RetryTries, DefaultRetryTries)
	def(&o.RetryBudget, DefaultRetryBudget)
	def(&o.RescueGrace, DefaultRescueGrace)
	def(&o.RaceDelay, DefaultRaceDelay)
	defInt(&o.Consecutive5xx, DefaultConsecutive5xx)
	defInt(&o.MaxEjectedPercent, DefaultMaxEjectedPercent)
	if hc := o.HealthCheck; hc != nil {
		c := *hc
		if c.Method == "" {
			c.Method = DefaultHealthMethod
		}
		if c.Path == "" {
			c.Path = DefaultHealthPath
		}
		defInt(&c.ExpectMin, DefaultExpectMin)
		defInt(&c.ExpectMax, DefaultExpectMax)
		def(&c.Interval, DefaultHealthInterval)
		def(&c.Timeout, DefaultHealthTimeout)
		defInt(&c.Fall, DefaultHealthFall)
		defInt(&c.Rise, DefaultHealthRise)
		o.HealthCheck = &c
	}
}

// goBackground runs fn on a goroutine owned by the pool, recovering and
// logging a panic rather than taking the process down.
func (p *Pool) goBackground(what string, fn func()) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				p.log.Error("background task panicked", zap.String("task", what),
					zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			}
		}()
		fn()
	}()
}

// Name returns the upstream's configured name.
func (p *Pool) Name() string { return p.opts.Name }

// Scheme returns the targets' scheme: "http", "https" or "ajp" (config
// does not mix ajp:// with http in one upstream).
func (p *Pool) Scheme() string { return p.opts.Targets[0].Scheme }

// Options returns the pool's options with defaults applied, and the
// balancing algorithm in use.
func (p *Pool) Options() Options {
	o := p.opts
	o.Balance = *p.balance.Load()
	return o
}

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

// Endpoints returns the addresses currently in DNS (in any state but
// draining), primaries first. For status pages and tests.
func (p *Pool) Endpoints() []*Endpoint {
	return slices.Clone(p.active.Load().eps)
}

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

// SetStandby takes an address out of service (standby) or puts it back
// (running), as an operator would.
func (p *Pool) SetStandby(addr netip.AddrPort, standby bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tg := range p.targets {
		if e := tg.endpoints[addr.Addr()]; e != nil && e.addr == addr {
			if standby {
				p.setStateLocked(e, StateStandby, "operator")
			} else if e.State() == StateStandby {
				p.setStateLocked(e, StateRunning, "operator")
			}
			return true
		}
	}
	return false
}

// Close stops background work, unsubscribes from the resolver and closes
// every pooled connection. Requests in flight finish.
func (p *Pool) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	unsub := p.unsub
	p.unsub = nil
	var all []*Endpoint
	for _, tg := range p.targets {
		for _, e := range tg.endpoints {
			all = append(all, e)
		}
		tg.endpoints = map[netip.Addr]*Endpoint{}
	}
	p.publishLocked()
	p.mu.Unlock()
	p.cancel()
	for _, u := range unsub {
		u()
	}
	for _, e := range all {
		e.state.Store(uint32(StateDraining))
		e.closeIdle()
	}
	p.wg.Wait()
}
