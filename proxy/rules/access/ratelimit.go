package access

import (
	"container/list"
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// DefaultMaxClients is rate_limit.max_clients when not given: about 16 MB
// of buckets at most (a bucket, its list element and map entry take
// about 165 bytes).
const DefaultMaxClients = 100000

// RateLimit is rate_limit as configured.
type RateLimit struct {
	// Rate is the refill, requests per second (> 0).
	Rate float64
	// Burst is the bucket size, requests (>= 1).
	Burst int
	// MaxClients bounds the addresses remembered; the least recently seen
	// is forgotten first. Default DefaultMaxClients.
	MaxClients int
}

// limiterShards spreads the addresses over locks, so that clients do not
// contend on one mutex.
const limiterShards = 32

// Limiter is a token bucket per client address, in bounded memory: each
// shard holds at most its share of MaxClients buckets, in least recently
// used order, and evicts the oldest to make room. Safe for concurrent use.
type Limiter struct {
	rate   float64
	burst  float64
	max    int // per shard
	seed   maphash.Seed
	shards [limiterShards]shard
}

type shard struct {
	mu  sync.Mutex // guards m and lru
	m   map[netip.Addr]*list.Element
	lru list.List // of *bucket, most recently used first
}

type bucket struct {
	addr   netip.Addr
	tokens float64
	last   time.Time
}

// NewLimiter returns a Limiter for o.
func NewLimiter(o RateLimit) *Limiter {
	max := o.MaxClients
	if max <= 0 {
		max = DefaultMaxClients
	}
	l := &Limiter{rate: o.Rate, burst: float64(max1(o.Burst)), max: (max + limiterShards - 1) / limiterShards,
		seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Addr]*list.Element)
	}
	return l
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// Allow takes a token from a's bucket at time now. When there is none it
// returns false and how long until there is one.
func (l *Limiter) Allow(a netip.Addr, now time.Time) (bool, time.Duration) {
	a = bucketKey(a)
	s := &l.shards[maphash.Comparable(l.seed, a)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	var b *bucket
	if e, ok := s.m[a]; ok {
		b = e.Value.(*bucket)
		s.lru.MoveToFront(e)
		if dt := now.Sub(b.last).Seconds(); dt > 0 {
			b.tokens = math.Min(l.burst, b.tokens+dt*l.rate)
		}
		b.last = now
	} else {
		if s.lru.Len() >= l.max {
			old := s.lru.Back()
			s.lru.Remove(old)
			delete(s.m, old.Value.(*bucket).addr)
		}
		b = &bucket{addr: a, tokens: l.burst, last: now}
		s.m[a] = s.lru.PushFront(b)
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, wait
}

// bucketKey is the address a bucket is kept for: an IPv4 address, or an
// IPv6 address's /64, which one client usually holds whole (a client
// that could pick any of 2^64 addresses would otherwise get a new bucket
// for each and push everyone else's out).
func bucketKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return a
}

// Len returns the number of addresses remembered.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
