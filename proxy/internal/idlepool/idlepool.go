// Package idlepool keeps the idle connections of a backend client (the
// HTTP/1.1 client in proxy/upstream/h1 and the AJP one in
// proxy/upstream/ajp): the most
// recently used goes out first, so that few connections stay warm and the
// rest age out; each is closed once it has been idle for the timeout; and
// a Limit shared by the pools of all backend addresses bounds their sum,
// closing the connection idle the longest when it is reached. A pool may
// also have a cap of its own, whose oldest connection makes room.
//
// The idle timer of a connection is armed once, when it first becomes
// idle, and re-armed from its own expiry for whatever is left, instead of
// being reset on every request: a busy connection costs no timer work.
//
// A Probe checks an idle connection before its reuse: a backend may have
// sent bytes after its response, which must never be read as the answer
// to the next request.
package idlepool

import (
	"slices"
	"sync"
	"time"
)

// Conn is a pooled connection: a pointer type that embeds an Entry.
type Conn interface {
	comparable
	// IdleEntry returns the connection's Entry.
	IdleEntry() *Entry
	// Close closes the connection. The pool calls it without its lock
	// held; it may be called more than once.
	Close()
}

// Entry is the pool's bookkeeping in each connection. Its fields are
// guarded by the pool's lock.
type Entry struct {
	at      time.Time // when it last entered the pool
	timerOn bool      // timer is armed
	timer   *time.Timer
}

// StopTimer stops the idle timer, for the connection's Close. It is safe
// to call at any time.
func (e *Entry) StopTimer() {
	if e.timer != nil {
		e.timer.Stop()
	}
}

// Pool is a set of idle connections. The zero value is not ready: use New.
type Pool[C Conn] struct {
	max     int           // < 0: pool nothing; 0: no cap of its own
	timeout time.Duration // how long a connection may stay idle
	limit   *Limit        // shared with other pools; never nil

	mu     sync.Mutex
	idle   []C  // oldest first
	closed bool // CloseIdle was called: close connections as they become idle
}

// New returns a pool that keeps connections for at most timeout each,
// within limit (nil: no shared limit). max is the pool's own cap: 0 means
// none (as many as the load leaves idle), a negative value pools nothing.
func New[C Conn](max int, timeout time.Duration, limit *Limit) *Pool[C] {
	if limit == nil {
		limit = NewLimit(0)
	}
	p := &Pool[C]{max: max, timeout: timeout, limit: limit}
	if max >= 0 {
		limit.join(p)
	}
	return p
}

// Track readies c for the pool: it makes c's idle timer, stopped. Call it
// once, before c can be Put.
func (p *Pool[C]) Track(c C) {
	// Created stopped and only ever Reset, so the field is written once,
	// before any timer goroutine can read it.
	e := c.IdleEntry()
	e.timer = time.AfterFunc(time.Hour, func() { p.expire(c) })
	e.timer.Stop()
}

// Get takes the most recently used connection that has not expired, and
// pools connections again after CloseIdle (a request wants one). Expired
// connections are closed. ok is false when there is none; idle is how long
// c was idle, and now the time Get looked.
func (p *Pool[C]) Get() (c C, ok bool, now time.Time, idle time.Duration) {
	now = time.Now()
	var expired []C
	p.mu.Lock()
	if p.closed {
		p.closed = false
		p.limit.join(p)
	}
	taken := 0
	for n := len(p.idle); n > 0; n = len(p.idle) {
		x := p.idle[n-1]
		var zero C
		p.idle[n-1] = zero
		p.idle = p.idle[:n-1]
		taken++
		if idle = now.Sub(x.IdleEntry().at); idle > p.timeout {
			expired = append(expired, x)
			continue
		}
		c, ok = x, true
		break
	}
	p.mu.Unlock()
	p.limit.release(taken)
	for _, x := range expired {
		x.Close()
	}
	return c, ok, now, idle
}

// Put pools c, or closes it when pooling is off or after CloseIdle. When
// the shared Limit is reached, the connection idle the longest in any of
// its pools is closed to make room; when the pool's own cap is reached, its
// oldest is. Put never blocks on another pool's lock while holding its own.
func (p *Pool[C]) Put(c C) {
	if p.max < 0 {
		c.Close()
		return
	}
	if !p.limit.acquire() {
		c.Close()
		return
	}
	now := time.Now()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.limit.release(1)
		c.Close()
		return
	}
	var evict C
	evicted := false
	if p.max > 0 && len(p.idle) >= p.max {
		evict, evicted = p.idle[0], true
		p.idle = slices.Delete(p.idle, 0, 1)
	}
	e := c.IdleEntry()
	e.at = now
	p.idle = append(p.idle, c)
	if !e.timerOn {
		e.timerOn = true
		e.timer.Reset(p.timeout)
	}
	p.mu.Unlock()
	if evicted {
		p.limit.release(1)
		evict.Close()
	}
}

// oldestIdle and evictOldest make p a member of its Limit.
func (p *Pool[C]) oldestIdle() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return time.Time{}, false
	}
	return p.idle[0].IdleEntry().at, true
}

func (p *Pool[C]) evictOldest() bool {
	p.mu.Lock()
	if len(p.idle) == 0 {
		p.mu.Unlock()
		return false
	}
	c := p.idle[0]
	p.idle = slices.Delete(p.idle, 0, 1)
	p.mu.Unlock()
	p.limit.release(1)
	c.Close()
	return true
}

// expire runs when c's idle timer fires: it closes c if c has been idle
// for the timeout. If c was used meanwhile and is idle again, the timer is
// re-armed for the rest; if c is in use, Put re-arms it.
func (p *Pool[C]) expire(c C) {
	e := c.IdleEntry()
	p.mu.Lock()
	i := slices.Index(p.idle, c)
	if i < 0 {
		e.timerOn = false
		p.mu.Unlock()
		return
	}
	if rest := p.timeout - time.Since(e.at); rest > 0 {
		e.timer.Reset(rest)
		p.mu.Unlock()
		return
	}
	p.idle = slices.Delete(p.idle, i, i+1)
	e.timerOn = false
	p.mu.Unlock()
	p.limit.release(1)
	c.Close()
}

// CloseIdle closes the idle connections now, and those that become idle
// later instead of pooling them, until the next Get. This is net/http's
// CloseIdleConnections contract, which drain relies on.
func (p *Pool[C]) CloseIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	if !p.closed {
		p.closed = true
		p.limit.leave(p) // an address gone from DNS is not kept
	}
	p.mu.Unlock()
	p.limit.release(len(idle))
	for _, c := range idle {
		c.Close()
	}
}

// Len returns the number of idle connections.
func (p *Pool[C]) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
