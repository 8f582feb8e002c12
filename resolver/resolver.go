package resolver

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// maxRetryBackoff caps the wait between retries of a failing name. Retries
// start at MinTTL and double; 30 s keeps a recovered name's outage short
// while a long DNS outage costs a nameserver two queries a minute per name.
const maxRetryBackoff = 30 * time.Second

// Answer is one published state of a name. Answers are immutable: Addrs is
// shared between every Lookup caller and subscriber and must not be
// modified.
type Answer struct {
	// Name is the name as given to Lookup, Resolve or Subscribe.
	Name string
	// Addrs are the addresses, sorted and deduplicated. Empty when the name
	// has none (not found, or its last good answer ran out).
	Addrs []netip.Addr
	// TTL is the clamped TTL this answer is used for: the minimum over the
	// CNAME chain and the address records, within [MinTTL, MaxTTL].
	TTL time.Duration
	// Stale is true while the last good answer is served after refreshes
	// failed (Options.Stale) or the name stopped existing
	// (Options.NegativeHold).
	Stale bool
}

// Resolver is the shared DNS cache. Create it with New and stop it with
// Close. Its methods are safe for concurrent use.
type Resolver struct {
	opts     Options // defaults applied
	servers  []string
	ns       []*nameserver // the health of servers, in the same order
	search   []string
	ndots    int
	retryCap time.Duration
	jitter   func() float64 // in [0, 1): where in its window a refresh lands (refreshDelay); tests fix it
	hosts    *hostsFile
	log      *zap.Logger
	m        *metrics

	// names is the Lookup path's view of the cache: an immutable map that
	// is replaced whole (copy on write, under mu) when a name is added or
	// dropped. Names are added once and dropped after IdleTimeout, so the
	// copies are rare, and reading takes no lock and allocates nothing.
	names atomic.Pointer[map[string]*entry]

	// ctx is the resolver's own lifecycle, not any caller's: every query
	// runs on it, and Close cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	changes changeRing // recent answer changes, for status pages

	mu     sync.Mutex // guards writes to names, closed, and wg.Add against Close
	closed bool
	wg     sync.WaitGroup // every goroutine the resolver starts
}

// New checks opts, applies defaults and reads ResolvConf when Nameservers is
// empty. It starts no goroutine: each name gets its refresh goroutine on
// first use.
func New(opts Options) (*Resolver, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	r := &Resolver{opts: o, search: o.Search, ndots: o.Ndots}
	if len(o.Nameservers) > 0 {
		for _, ns := range o.Nameservers {
			s, err := parseNameserver(ns)
			if err != nil {
				return nil, err
			}
			r.servers = append(r.servers, s)
		}
	} else {
		conf, err := readResolvConf(o.ResolvConf)
		if err != nil {
			return nil, fmt.Errorf("resolver: %w", err)
		}
		if len(conf.nameservers) == 0 {
			return nil, fmt.Errorf("resolver: %s lists no nameserver; add a nameserver line or set Nameservers", o.ResolvConf)
		}
		r.servers = conf.nameservers
		if r.search == nil {
			r.search = conf.search
		}
		if opts.Ndots == 0 && conf.ndots >= 0 {
			r.ndots = conf.ndots
		}
	}
	for _, s := range r.servers {
		r.ns = append(r.ns, &nameserver{addr: s})
	}
	r.retryCap = max(min(maxRetryBackoff, o.MaxTTL), o.MinTTL)
	r.hosts = newHostsFile(o.HostsFile)
	r.jitter = rand.Float64
	r.log = o.Logger
	if r.log == nil {
		r.log = zap.NewNop()
	}
	r.m = newMetrics(o.Registerer)
	if o.Registerer != nil {
		o.Registerer.MustRegister(answerAgeCollector{r})
	}
	empty := map[string]*entry{}
	r.names.Store(&empty)
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// withDefaults returns o with zero fields set to their defaults, or an error
// for values no default can fix.
func (o Options) withDefaults() (Options, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.MinTTL, DefaultMinTTL)
	def(&o.MaxTTL, DefaultMaxTTL)
	def(&o.Stale, DefaultStale)
	def(&o.NegativeHold, DefaultNegativeHold)
	def(&o.QueryTimeout, DefaultQueryTimeout)
	def(&o.RefreshNowMinGap, DefaultRefreshNowMinGap)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	if o.Attempts == 0 {
		o.Attempts = DefaultAttempts
	}
	if o.Ndots == 0 {
		o.Ndots = DefaultNdots
	}
	if o.ResolvConf == "" {
		o.ResolvConf = DefaultResolvConf
	}
	if o.HostsFile == "" {
		o.HostsFile = DefaultHostsFile
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MinTTL", o.MinTTL}, {"MaxTTL", o.MaxTTL}, {"Stale", o.Stale}, {"NegativeHold", o.NegativeHold},
		{"QueryTimeout", o.QueryTimeout}, {"RefreshNowMinGap", o.RefreshNowMinGap}, {"IdleTimeout", o.IdleTimeout},
	} {
		if d.v < 0 {
			return o, fmt.Errorf("resolver: %s %s is negative", d.name, d.v)
		}
	}
	if o.MaxTTL < o.MinTTL {
		return o, fmt.Errorf("resolver: MaxTTL %s is less than MinTTL %s", o.MaxTTL, o.MinTTL)
	}
	if o.Attempts < 0 {
		return o, fmt.Errorf("resolver: Attempts %d is negative", o.Attempts)
	}
	if o.Ndots < 0 || o.Ndots > maxNdots {
		return o, fmt.Errorf("resolver: Ndots %d is outside 0..%d", o.Ndots, maxNdots)
	}
	if o.Family > FamilyBoth {
		return o, fmt.Errorf("resolver: unknown address family %s", o.Family)
	}
	return o, nil
}

// Close stops every background goroutine and waits for them, including
// queries in flight and subscriber calls in progress. Lookups and Resolves
// waiting for a first answer return an *Error wrapping ErrClosed. After
// Close, Lookup still returns what is cached (so a draining proxy can
// finish its work) but nothing is refreshed and new names fail with
// ErrClosed. Close is idempotent and always returns nil.
func (r *Resolver) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	r.m.names.Set(0)
	r.m.staleNames.Set(0)
	return nil
}

// Lookup returns the addresses of name from the cache. Only when nothing is
// cached yet does it wait for the first resolution, which every concurrent
// first Lookup of name shares (a singleflight: one query per record type,
// made by the name's refresh goroutine). That query runs on the resolver's
// own context, so a caller giving up does not cancel it for the others;
// ctx only bounds this caller's wait. Lookup registers name for background
// refresh.
//
// The returned slice is shared and must not be modified. A hit allocates
// nothing and takes no lock. An IP literal is returned as is, without a
// query. Every error is an *Error; IsNotFound reports NXDOMAIN or NODATA.
func (r *Resolver) Lookup(ctx context.Context, name string) ([]netip.Addr, error) {
	if e := (*r.names.Load())[name]; e != nil {
		if s := e.snap.Load(); s != nil {
			e.markUsed()
			if len(s.ans.Addrs) > 0 {
				return s.ans.Addrs, nil
			}
			return nil, s.err
		}
	}
	return r.lookupSlow(ctx, name)
}

// lookupSlow registers name if needed and waits for its first answer.
func (r *Resolver) lookupSlow(ctx context.Context, name string) ([]netip.Addr, error) {
	for {
		e, _, err := r.entryFor(name)
		if err != nil {
			return nil, err
		}
		e.markUsed()
		select {
		case <-e.ready:
			s := e.snap.Load()
			if len(s.ans.Addrs) > 0 {
				return s.ans.Addrs, nil
			}
			return nil, s.err
		case <-e.stopped:
			if r.ctx.Err() != nil {
				return nil, closedError(name)
			}
			// Dropped as idle just now: entryFor makes a new entry.
		case <-ctx.Done():
			return nil, waitError(name, ctx.Err())
		}
	}
}

// Resolve forces a fresh resolution of name, updates the cache and the
// subscribers, and returns the result. Callers that ask while a resolution
// of name is already in flight share it. On failure it returns the error,
// never the last good answer: it is meant for callers that must only trust
// fresh answers. ctx bounds the caller's wait, not the shared query.
func (r *Resolver) Resolve(ctx context.Context, name string) (Answer, error) {
	if ip, err := netip.ParseAddr(name); err == nil {
		return Answer{Name: name, Addrs: []netip.Addr{ip}, TTL: r.opts.MaxTTL}, nil
	}
	for {
		e, first, err := r.entryFor(name)
		if err != nil {
			return Answer{Name: name}, err
		}
		e.markUsed()
		f := first
		if f == nil {
			f = e.request()
		}
		if f == nil {
			if r.ctx.Err() != nil {
				return Answer{Name: name}, closedError(name)
			}
			continue // dropped as idle just now
		}
		select {
		case <-f.done:
			return f.ans, f.err
		case <-ctx.Done():
			return Answer{Name: name}, waitError(name, ctx.Err())
		}
	}
}

// ResolveFresh is Resolve for a caller that takes an answer received
// within maxAge (and within its own TTL) as fresh: such an answer is
// returned without a query. The maintain pass uses it, so that names
// refreshed a moment ago by their TTL are not asked again on top.
func (r *Resolver) ResolveFresh(ctx context.Context, name string, maxAge time.Duration) (Answer, error) {
	if e := (*r.names.Load())[name]; e != nil {
		if s := e.snap.Load(); s != nil && s.err == nil && !s.at.IsZero() {
			if age := time.Since(s.at); age < min(maxAge, s.ans.TTL) {
				e.markUsed()
				return s.ans, nil
			}
		}
	}
	return r.Resolve(ctx, name)
}

// Subscribe registers name for background refresh and calls fn with every
// new address set of name. If an answer with addresses is cached, fn is
// called once promptly with it; otherwise the first resolution starts at
// once. A subscriber starts from the empty set, so an empty answer (not
// found, failing) is passed on only after a non-empty one.
//
// fn runs on a resolver goroutine, never two at a time for one name, and
// never on the goroutine that refreshes the name, so a slow fn delays only
// later calls for that name. fn must return for Close to return. It may call
// any Resolver method but Close, including unsubscribe.
//
// The returned func unsubscribes; fn may still run once if a call was
// already under way. A name with no subscribers and no Lookup for
// IdleTimeout is dropped from the cache. For an invalid name, or after
// Close, fn is never called.
func (r *Resolver) Subscribe(name string, fn func(Answer)) (unsubscribe func()) {
	for {
		e, _, err := r.entryFor(name)
		if err != nil {
			r.log.Warn("dns subscribe failed", zap.String("name", name), zap.Error(err))
			return func() {}
		}
		sub := &subscriber{fn: fn}
		e.mu.Lock()
		if e.dead {
			e.mu.Unlock()
			if r.ctx.Err() != nil {
				return func() {}
			}
			continue // dropped as idle just now
		}
		e.subs = append(e.subs, sub)
		e.mu.Unlock()
		if e.snap.Load() != nil {
			r.scheduleDelivery(e)
		}
		return sync.OnceFunc(func() { e.removeSub(sub) })
	}
}

// RefreshNow asks for a re-resolution of name in the background, for
// example after a connect to one of its addresses failed. It does not
// block. Calls for one name within Options.RefreshNowMinGap of the last
// accepted call are dropped (and counted), so a burst of connect failures
// costs one query. Names not in the cache and IP literals are ignored.
func (r *Resolver) RefreshNow(name string) {
	e := (*r.names.Load())[name]
	if e == nil || e.literal.IsValid() {
		return
	}
	now := time.Now()
	e.mu.Lock()
	if e.dead {
		e.mu.Unlock()
		return
	}
	if !e.lastRefreshNow.IsZero() && now.Sub(e.lastRefreshNow) < r.opts.RefreshNowMinGap {
		e.mu.Unlock()
		r.m.refreshNowDropped.Inc()
		return
	}
	e.lastRefreshNow = now
	e.refreshNow = true
	e.mu.Unlock()
	e.poke()
}

// entryFor returns name's cache entry, creating it and starting its refresh
// goroutine if needed. For a name it created it also returns the flight of
// the first resolution.
func (r *Resolver) entryFor(name string) (*entry, *flight, error) {
	if e := (*r.names.Load())[name]; e != nil {
		return e, nil, nil
	}
	var lit netip.Addr
	var cands []string
	if ip, err := netip.ParseAddr(name); err == nil {
		lit = ip
	} else {
		if _, ok := dns.IsDomainName(name); !ok || name == "" {
			return nil, nil, &Error{Name: name, Rcode: -1, Err: ErrInvalidName}
		}
		cands = candidates(name, r.search, r.ndots)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, nil, closedError(name)
	}
	old := *r.names.Load()
	if e := old[name]; e != nil {
		return e, nil, nil
	}
	e := newEntry(name, lit, cands, r.opts.MaxTTL)
	m := make(map[string]*entry, len(old)+1)
	maps.Copy(m, old)
	m[name] = e
	r.names.Store(&m)
	r.m.names.Inc()
	first := e.next
	r.wg.Add(1)
	go r.run(e)
	return e, first, nil
}

func closedError(name string) *Error { return &Error{Name: name, Rcode: -1, Err: ErrClosed} }

// dropLocked removes e from the names map. r.mu must be held.
func (r *Resolver) dropLocked(e *entry) {
	old := *r.names.Load()
	m := make(map[string]*entry, len(old))
	for k, v := range old {
		if v != e {
			m[k] = v
		}
	}
	r.names.Store(&m)
	r.m.names.Dec()
}

// goOwned runs f on a new goroutine that Close waits for, unless the
// resolver is closed. It reports whether f was started.
func (r *Resolver) goOwned(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
	return true
}
