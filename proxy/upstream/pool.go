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
	"crypto/tls"
	"errors"
	"fmt"
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
	// tlsConf is the TLS client configuration of https:// targets, read
	// from the files once per load (backendtls.go); nil for others.
	tlsConf *tls.Config

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
	if slices.ContainsFunc(opts.Targets, func(t Target) bool { return t.Scheme == "https" }) {
		var err error
		if p.tlsConf, err = p.tlsBase(); err != nil {
			return nil, err
		}
	}
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
	if o.Protocol == "" {
		o.Protocol = DefaultProtocol
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

// Endpoints returns the addresses currently in DNS (in any state but
// draining), primaries first. For status pages and tests.
func (p *Pool) Endpoints() []*Endpoint {
	return slices.Clone(p.active.Load().eps)
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
