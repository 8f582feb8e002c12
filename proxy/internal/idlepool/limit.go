package idlepool

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Limit bounds the idle connections of many pools together: the pools of
// every backend address of a process share one, so that no fixed
// per-address cap is needed. A pool keeps as many idle connections as its
// load left it, for at most its idle timeout, and the Limit bounds their
// sum, which bounds the memory and file descriptors they hold. When it is
// reached, the connection idle the longest, in whichever pool, is closed
// to make room: it is the one least likely to be wanted again.
//
// The count is an atomic; the request path takes no Limit-wide lock. Only
// a Put that finds the Limit reached looks at the other pools (taking each
// pool's own lock in turn), and only pool creation, CloseIdle and the
// first Get after it change the set of pools (under that pool's lock, then
// mu; nothing takes them in the other order). A Put into a pool at its own
// cap may, when the Limit is reached too, close another pool's oldest as
// well as its own: rare, and never more than the Limit allows.
type Limit struct {
	max int64
	n   atomic.Int64 // idle connections held, plus Puts that reserved a place

	mu    sync.Mutex                    // serializes changes to members
	pools atomic.Pointer[[]limitMember] // copied on change; read without lock
}

// limitMember is what a Limit needs of a Pool of any connection type.
type limitMember interface {
	// oldestIdle returns when the pool's oldest idle connection became
	// idle; ok is false if it has none.
	oldestIdle() (at time.Time, ok bool)
	// evictOldest closes the pool's oldest idle connection, releasing its
	// place in the Limit; false if it had none.
	evictOldest() bool
}

// NewLimit returns a Limit of max idle connections; max ≤ 0 means no limit.
func NewLimit(max int) *Limit {
	l := &Limit{max: int64(max)}
	l.pools.Store(&[]limitMember{})
	return l
}

// Max returns the limit (≤ 0: none).
func (l *Limit) Max() int { return int(l.max) }

// Idle returns the number of idle connections the pools sharing l hold.
func (l *Limit) Idle() int { return int(l.n.Load()) }

// acquire reserves a place for one more idle connection, closing the
// connection idle the longest in any member pool when l is full. It
// returns false if no place could be made (every member pool empty while
// others hold reservations): the caller closes its connection instead.
// The caller must not hold a pool's lock.
func (l *Limit) acquire() bool {
	if l.max <= 0 {
		l.n.Add(1)
		return true
	}
	// A few rounds: each eviction frees a place, which a concurrent Put
	// may take first.
	for range 4 {
		for n := l.n.Load(); n < l.max; n = l.n.Load() {
			if l.n.CompareAndSwap(n, n+1) {
				return true
			}
		}
		if !l.evictOldest() {
			return false
		}
	}
	return false
}

// release gives back n places.
func (l *Limit) release(n int) {
	if n != 0 {
		l.n.Add(-int64(n))
	}
}

// evictOldest closes the connection idle the longest across the member
// pools. It reads each pool's oldest under that pool's lock, one at a
// time, and then evicts the oldest of the pool that had the oldest: if
// that pool changed meanwhile, the connection evicted is its oldest now,
// which is close enough.
func (l *Limit) evictOldest() bool {
	var victim limitMember
	var oldest time.Time
	for _, m := range *l.pools.Load() {
		if at, ok := m.oldestIdle(); ok && (victim == nil || at.Before(oldest)) {
			victim, oldest = m, at
		}
	}
	return victim != nil && victim.evictOldest()
}

// join adds m to the pools l evicts from.
func (l *Limit) join(m limitMember) {
	if l.max <= 0 {
		return // nothing is ever evicted
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.pools.Load()
	if slices.Contains(old, m) {
		return
	}
	next := append(slices.Clip(old), m)
	l.pools.Store(&next)
}

// leave removes m, once it holds no idle connections (CloseIdle), so that
// the pools of addresses gone from DNS are not kept.
func (l *Limit) leave(m limitMember) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	old := *l.pools.Load()
	i := slices.Index(old, m)
	if i < 0 {
		return
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	l.pools.Store(&next)
}

// members returns the number of member pools (for tests).
func (l *Limit) members() int { return len(*l.pools.Load()) }
