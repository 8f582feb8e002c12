package resolver

import (
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// entry is one name in the cache. The fields before mu are read without a
// lock; mu guards the writer side; the fields after deliverBuf belong to the
// entry's refresh goroutine (run) alone.
type entry struct {
	name    string
	literal netip.Addr // valid for an IP literal: never queried

	snap    atomic.Pointer[snapshot] // nil until the first resolution ends
	used    atomic.Bool              // set by Lookup and Resolve, cleared by run
	ready   chan struct{}            // closed when snap is first stored
	stopped chan struct{}            // closed when run returns
	wake    chan struct{}            // buffered(1): a resolution was requested
	nextAt  atomic.Int64             // UnixNano of the next scheduled refresh, for status pages

	mu             sync.Mutex // guards the fields up to deliverBuf
	subs           []*subscriber
	next           *flight // requested by Resolve, not yet started
	inflight       *flight // being resolved by run
	refreshNow     bool
	lastRefreshNow time.Time
	dead           bool // dropped or closed: take no more subscribers or requests
	delivering     bool // a delivery goroutine runs for this name
	deliverAgain   bool // and must make one more pass when done

	// Owned by the one delivery goroutine running for this name.
	deliverBuf []*subscriber

	// Owned by run.
	candidates  []string
	readyClosed bool
	good        Answer        // last good answer; Addrs empty when there is none
	lastTTL     time.Duration // TTL of the last good answer, kept after good is dropped; 0 if none ever
	negSince    time.Time     // first NXDOMAIN/NODATA since good; zero if none
	failing     bool          // in an episode of failed resolutions
	failSince   time.Time
	failures    int  // consecutive failed resolutions
	stale       bool // serving good with Stale set
	lastUsed    time.Time
}

// snapshot is what Lookup reads: an answer, and when Addrs is empty the
// error that explains why (while stale, the error of the last refresh).
type snapshot struct {
	ans Answer
	err error
	at  time.Time // when ans was received from DNS (or the hosts file); zero for stale and empty answers
	// source is where ans came from (SourceDNS when empty).
	source string
}

// flight is one resolution that Resolve callers wait for together.
type flight struct {
	done chan struct{} // closed when ans and err are set
	ans  Answer
	err  error
}

type subscriber struct {
	fn      func(Answer)
	last    []netip.Addr // the set fn was last called with; owned by the delivery goroutine
	called  bool         // fn was called at least once (last may be empty); owned likewise
	removed atomic.Bool
}

func newEntry(name string, lit netip.Addr, cands []string, literalTTL time.Duration) *entry {
	e := &entry{
		name:       name,
		literal:    lit,
		candidates: cands,
		ready:      make(chan struct{}),
		stopped:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		lastUsed:   time.Now(),
	}
	if lit.IsValid() {
		e.snap.Store(&snapshot{ans: Answer{Name: name, Addrs: []netip.Addr{lit}, TTL: literalTTL}})
		close(e.ready)
		e.readyClosed = true
	} else {
		// The first resolution gets a flight from the start, so that a
		// Resolve that created the entry can wait for it rather than ask
		// for a second one.
		e.next = &flight{done: make(chan struct{})}
	}
	return e
}

// markUsed records a use for idle eviction. It reads before writing so that
// parallel Lookups of a hot name do not fight over the cache line.
func (e *entry) markUsed() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// poke wakes run without blocking; one pending wake is enough.
func (e *entry) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// request returns the flight a Resolve caller should wait for: the one in
// flight, else the one already requested, else a new one. It returns nil
// when e is dead.
func (e *entry) request() *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return nil
	}
	f := e.inflight
	if f == nil {
		f = e.next
	}
	if f == nil {
		f = &flight{done: make(chan struct{})}
		e.next = f
		e.poke()
	}
	return f
}

// take starts a resolution if one is due or requested, and returns its
// flight, or nil when there is nothing to do.
func (e *entry) take(due bool) *flight {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.next
	if f == nil && (due || e.refreshNow) {
		f = &flight{done: make(chan struct{})}
	}
	e.next, e.inflight, e.refreshNow = nil, f, false
	return f
}

func (e *entry) removeSub(sub *subscriber) {
	sub.removed.Store(true)
	e.mu.Lock()
	e.subs = slices.DeleteFunc(e.subs, func(s *subscriber) bool { return s == sub })
	e.mu.Unlock()
	// Losing the last subscriber counts as a use, so the name lives on for
	// IdleTimeout in case it is wanted again (a config reload, say).
	e.markUsed()
}

// run is the refresh goroutine of one name: it resolves at once, then again
// shortly before each answer's TTL runs out (or on a backoff while failing,
// or when asked), until the name is idle for IdleTimeout or the resolver
// closes. It is the only writer of e.snap, so the state machine needs no
// lock. It never calls subscriber code, which runs on delivery goroutines.
//
// It does not recover panics, on purpose: a refresh loop that died quietly
// would leave its name on its last addresses forever, which is the very bug
// this package exists to fix. A crash is loud and the process restarts.
func (r *Resolver) run(e *entry) {
	defer r.wg.Done()
	defer close(e.stopped)
	defer r.abandon(e)
	first := time.Duration(0)
	if e.literal.IsValid() {
		first = r.opts.IdleTimeout
	}
	timer := time.NewTimer(first)
	defer timer.Stop()
	for {
		due := false
		select {
		case <-r.ctx.Done():
			return
		case <-timer.C:
			due = true
		case <-e.wake:
		}
		if due && r.dropIfIdle(e) {
			return
		}
		if e.literal.IsValid() {
			if due {
				timer.Reset(r.opts.IdleTimeout)
			}
			continue
		}
		f := e.take(due)
		if f == nil {
			continue
		}
		res := r.resolveName(r.ctx, e.name, e.candidates)
		if r.ctx.Err() != nil {
			return // closing; abandon fails f
		}
		s, next := r.apply(e, res, time.Now())
		e.mu.Lock()
		e.inflight = nil
		e.mu.Unlock()
		if res.err != nil {
			f.ans, f.err = Answer{Name: e.name}, res.err
		} else {
			f.ans = s.ans
		}
		close(f.done)
		e.nextAt.Store(time.Now().Add(next).UnixNano())
		timer.Reset(next)
	}
}

// abandon marks e dead and fails the flights nobody will resolve.
func (r *Resolver) abandon(e *entry) {
	e.mu.Lock()
	e.dead = true
	fs := []*flight{e.next, e.inflight}
	e.next, e.inflight = nil, nil
	e.mu.Unlock()
	for _, f := range fs {
		if f != nil {
			f.ans, f.err = Answer{Name: e.name}, closedError(e.name)
			close(f.done)
		}
	}
	if e.stale {
		r.m.staleNames.Dec()
		e.stale = false
	}
}

// dropIfIdle drops e from the cache when it has had no subscriber and no
// use for IdleTimeout. It reports whether e was dropped.
func (r *Resolver) dropIfIdle(e *entry) bool {
	now := time.Now()
	if e.used.Swap(false) {
		e.lastUsed = now
	}
	if now.Sub(e.lastUsed) < r.opts.IdleTimeout {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.subs) > 0 || e.next != nil || e.refreshNow || r.closed {
		return false
	}
	e.dead = true
	r.dropLocked(e)
	r.log.Debug("dns name dropped as idle", zap.String("name", e.name), zap.Duration("idle", now.Sub(e.lastUsed)))
	return true
}

// clampTTL turns a record TTL into the duration an answer is used for.
func (r *Resolver) clampTTL(sec uint32) time.Duration {
	if sec == 0 {
		return r.opts.MinTTL
	}
	return min(max(time.Duration(sec)*time.Second, r.opts.MinTTL), r.opts.MaxTTL)
}

// refreshDelay is when to refresh an answer used for ttl: at a random
// point between 80% and 100% of it (j in [0, 1) picks it), 90% on average,
// so the new answer is normally in before the old one expires. The spread
// keeps names that were answered together (every upstream name at
// start-up, 200 names with TTL 1 say) from being asked again together
// for ever: without it they were re-queried in one burst each TTL, and a
// VPC resolver allows 1024 packets per second per interface.
func refreshDelay(ttl time.Duration, j float64) time.Duration {
	return ttl - ttl/5 + time.Duration(j*float64(ttl/5))
}

// backoff is the wait before retry n (1-based) of a failing name: MinTTL,
// doubling, capped at retryCap (and, by apply, at the TTL of the last good
// answer the name ever had).
func (r *Resolver) backoff(n int) time.Duration {
	d := r.opts.MinTTL
	for i := 1; i < n && d < r.retryCap; i++ {
		d *= 2
	}
	return min(d, r.retryCap)
}

// apply moves e's state machine on by one resolution result, publishes the
// new snapshot, and returns it with the delay to the next resolution.
//
//   - Success: the answer is published fresh; refresh at 90% of its TTL.
//   - Timeout, SERVFAIL, REFUSED and other temporary failures: the last good
//     answer is kept, marked Stale, for Stale from the first failed refresh
//     (RFC 8767 counts from the TTL's expiry; the first refresh is at 90% of
//     it, so the window here ends up to a tenth of a TTL earlier), then the
//     name has no addresses.
//   - NXDOMAIN or NODATA: the same, but only for NegativeHold after the
//     first such answer (HAProxy's "hold nx").
//
// Failures are retried on backoff, never later than the moment the last
// good answer must be dropped, so it is dropped on time, and never less
// often than the last good answer's TTL, also once the name has no
// addresses left (a name without any TTL yet backs off to 30 s; requests
// that find no address ask for a refresh through RefreshNow meanwhile).
func (r *Resolver) apply(e *entry, res result, now time.Time) (*snapshot, time.Duration) {
	var oldAddrs []netip.Addr
	if old := e.snap.Load(); old != nil {
		oldAddrs = old.ans.Addrs
	}
	var s *snapshot
	var next time.Duration
	if res.err == nil {
		ttl := r.clampTTL(res.ttl)
		addrs := res.addrs
		if slices.Equal(addrs, oldAddrs) {
			addrs = oldAddrs // keep sharing the published slice
		}
		if e.failing {
			r.log.Info("dns refresh recovered", zap.String("name", e.name), zap.Duration("failed_for", now.Sub(e.failSince)))
		}
		r.setStale(e, false)
		e.failing, e.failures, e.negSince = false, 0, time.Time{}
		e.good = Answer{Name: e.name, Addrs: addrs, TTL: ttl}
		e.lastTTL = ttl
		s, next = &snapshot{ans: e.good, at: now}, refreshDelay(ttl, r.jitter())
	} else {
		err := res.err
		err.Name = e.name
		e.failures++
		episodeStart := !e.failing
		if episodeStart {
			e.failing, e.failSince = true, now
		}
		if err.IsNotFound && e.negSince.IsZero() {
			e.negSince = now
		}
		next = r.backoff(e.failures)
		if e.lastTTL > 0 {
			// A failing name is retried at least as often as it was
			// refreshed, also after its last good answer was dropped:
			// once DNS is back, or the record is there again (an ELB
			// recreated), it is followed within the same TTL bound as
			// ever, not after the backoff cap.
			next = min(next, e.lastTTL)
		}
		if len(e.good.Addrs) > 0 {
			keepUntil, reason := e.failSince.Add(r.opts.Stale), "stale_window_ended"
			if !e.negSince.IsZero() {
				if h := e.negSince.Add(r.opts.NegativeHold); h.Before(keepUntil) {
					keepUntil, reason = h, "negative_hold_ended"
				}
			}
			if now.Before(keepUntil) {
				if !e.stale {
					r.setStale(e, true)
					r.m.staleEpisodes.Inc()
					r.log.Warn("dns refresh failed, serving last good answer",
						zap.String("name", e.name), zap.Error(err), zap.Duration("keep_for", keepUntil.Sub(now)))
				}
				ans := e.good
				ans.Stale = true
				s = &snapshot{ans: ans, err: err}
				next = min(next, keepUntil.Sub(now))
			} else {
				r.log.Error("dns last good answer dropped, name has no addresses",
					zap.String("name", e.name), zap.String("reason", reason), zap.Error(err),
					zap.Stringers("addrs", e.good.Addrs), zap.Duration("failed_for", now.Sub(e.failSince)))
				r.setStale(e, false)
				e.good = Answer{}
			}
		} else if episodeStart {
			r.log.Warn("dns resolution failed", zap.String("name", e.name), zap.Error(err))
		}
		if s == nil {
			s = &snapshot{ans: Answer{Name: e.name}, err: err}
		}
	}
	s.source = res.source
	e.snap.Store(s)
	first := !e.readyClosed
	if first {
		e.readyClosed = true
		close(e.ready)
	}
	if !slices.Equal(oldAddrs, s.ans.Addrs) {
		r.m.answerChanges.Inc()
		src := res.source
		if src == "" {
			src = SourceDNS
		}
		r.changes.add(Change{At: now, Name: e.name, Old: oldAddrs, New: s.ans.Addrs, TTL: s.ans.TTL, Source: src})
		r.log.Info("dns answer changed", zap.String("name", e.name),
			zap.Stringers("old", oldAddrs), zap.Stringers("new", s.ans.Addrs), zap.Duration("ttl", s.ans.TTL),
			zap.String("source", src))
		r.scheduleDelivery(e)
	} else if first {
		// A first lookup that failed still reaches subscribers, as an
		// answer without addresses: the upstream pool stops holding
		// requests for the name's first answer (they fail at once with
		// no address, as they will until the name resolves).
		r.scheduleDelivery(e)
	}
	return s, next
}

func (r *Resolver) setStale(e *entry, stale bool) {
	if e.stale == stale {
		return
	}
	e.stale = stale
	if stale {
		r.m.staleNames.Inc()
	} else {
		r.m.staleNames.Dec()
	}
}

// scheduleDelivery makes sure e's current snapshot reaches every
// subscriber that has not seen its address set. At most one delivery
// goroutine runs per name, which serialises the calls; if one is running,
// it is asked for one more pass, in which it reads the newest snapshot.
// Nothing ever waits on a lock held across subscriber code.
func (r *Resolver) scheduleDelivery(e *entry) {
	e.mu.Lock()
	if e.delivering {
		e.deliverAgain = true
		e.mu.Unlock()
		return
	}
	e.delivering = true
	e.mu.Unlock()
	if !r.goOwned(func() { r.deliver(e) }) {
		e.mu.Lock()
		e.delivering = false
		e.mu.Unlock()
	}
}

// deliver is the body of a delivery goroutine.
func (r *Resolver) deliver(e *entry) {
	for {
		s := e.snap.Load()
		e.mu.Lock()
		e.deliverBuf = append(e.deliverBuf[:0], e.subs...)
		e.mu.Unlock()
		for _, sub := range e.deliverBuf {
			if sub.removed.Load() || sub.called && slices.Equal(sub.last, s.ans.Addrs) {
				continue
			}
			sub.called, sub.last = true, s.ans.Addrs
			r.call(sub, s.ans)
		}
		clear(e.deliverBuf) // do not keep unsubscribed funcs alive
		e.mu.Lock()
		if !e.deliverAgain {
			e.delivering = false
			e.mu.Unlock()
			return
		}
		e.deliverAgain = false
		e.mu.Unlock()
	}
}

// call runs a subscriber's fn. A panic in it is logged with its stack and
// does not take the process down: fn is the caller's code, and the
// resolver's own goroutines are unaffected.
func (r *Resolver) call(sub *subscriber, a Answer) {
	defer func() {
		if v := recover(); v != nil {
			r.log.Error("dns subscriber panicked", zap.String("name", a.Name), zap.Any("panic", v), zap.Stack("stack"))
		}
	}()
	sub.fn(a)
}
