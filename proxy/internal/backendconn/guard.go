// Package backendconn is the part of a backend connection that webtier's
// HTTP/1.1 and AJP clients share: who owns the connection, its deadlines,
// how another goroutine interrupts it (a request's context ending, the
// pool's rescue or stall watch, a response body closed late), and the
// check before a pooled connection carries a request.
//
// The rule it keeps: once interrupted, a connection is broken for good. An
// interruption sets a deadline in the past to wake any blocked read or
// write; every later deadline change goes through the same lock and is
// refused, so a late change can never undo it, and a broken connection is
// never pooled again.
package backendconn

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// aLongTimeAgo is a deadline in the past, set to wake a blocked read or
// write at once (net/http and miekg/dns use the same trick).
var aLongTimeAgo = time.Unix(1, 0)

// Guard guards one backend connection. A client's connection type embeds
// it and calls Init once; its methods are safe from any goroutine, except
// Fit and the Probe, which only the goroutine that owns the connection
// uses.
type Guard struct {
	conn net.Conn

	mu      sync.Mutex // guards broken, waiting, owner and every deadline change
	broken  bool       // a past deadline was set to interrupt it: never reuse
	waiting bool       // a response head is awaited: body writes extend the read deadline
	owner   any        // the exchange using it (a pointer); nil otherwise

	// Probe looks at a pooled connection before it is reused; Unchecked
	// says one was just taken from the pool and not looked at yet.
	Probe     idlepool.Probe
	Unchecked bool
}

// Init sets the connection the guard guards.
func (g *Guard) Init(c net.Conn) { g.conn = c }

// Interrupt wakes any blocked read or write and marks the connection
// broken (an interrupt.Target).
func (g *Guard) Interrupt() {
	g.mu.Lock()
	g.broken = true
	g.conn.SetDeadline(aLongTimeAgo)
	g.mu.Unlock()
}

// InterruptFor interrupts only if owner still uses the connection: a
// response body closed late must not break the connection after it went
// back to the pool and on to another request.
func (g *Guard) InterruptFor(owner any) {
	g.mu.Lock()
	if g.owner == owner {
		g.broken = true
		g.conn.SetDeadline(aLongTimeAgo)
	}
	g.mu.Unlock()
}

// BreakWith runs fn under the guard's lock and interrupts the connection:
// fn records why (a request body that could not be read), and whoever
// asks later (Locked) sees it together with the broken connection.
func (g *Guard) BreakWith(fn func()) {
	g.mu.Lock()
	fn()
	g.broken = true
	g.conn.SetDeadline(aLongTimeAgo)
	g.mu.Unlock()
}

// Locked runs fn under the guard's lock.
func (g *Guard) Locked(fn func()) {
	g.mu.Lock()
	fn()
	g.mu.Unlock()
}

// alwaysStopped is the stop function of a context that never ends.
func alwaysStopped() bool { return true }

// Watch calls interrupt (the connection's Interrupt, as a method value
// made once: making it per call would allocate) when ctx ends, until the
// returned stop is called. stop reports false if the interruption
// happened (or is happening).
func Watch(ctx context.Context, interrupt func()) (stop func() bool) {
	if ctx.Done() == nil {
		return alwaysStopped
	}
	return context.AfterFunc(ctx, interrupt)
}

// SetOwner records which exchange uses the connection (nil: none).
func (g *Guard) SetOwner(owner any) {
	g.mu.Lock()
	g.owner = owner
	g.mu.Unlock()
}

// Release ends the ownership of the exchange; it reports whether the
// connection is still fit for another request.
func (g *Guard) Release() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.owner = nil
	return !g.broken
}

// SetDeadline sets the read and write deadline unless the connection was
// interrupted; it reports whether it did.
func (g *Guard) SetDeadline(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.broken {
		return false
	}
	g.conn.SetDeadline(t)
	return true
}

// SetReadDeadline sets the read deadline unless the connection was
// interrupted; it reports whether it did.
func (g *Guard) SetReadDeadline(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.broken {
		return false
	}
	g.conn.SetReadDeadline(t)
	return true
}

// AwaitHeaders sets the read deadline for the response head, unless the
// connection was interrupted; it reports whether it did.
func (g *Guard) AwaitHeaders(deadline time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.broken {
		return false
	}
	g.waiting = true
	g.conn.SetReadDeadline(deadline)
	return true
}

// ExtendHeaderWait restarts the response head clock after a body write,
// if the head is still awaited.
func (g *Guard) ExtendHeaderWait(d time.Duration) {
	g.mu.Lock()
	if g.waiting && !g.broken {
		g.conn.SetReadDeadline(time.Now().Add(d))
	}
	g.mu.Unlock()
}

// GotHeaders clears the read deadline once the response head is in and
// makes owner the connection's owner; false if it was interrupted.
func (g *Guard) GotHeaders(owner any) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting = false
	if g.broken {
		return false
	}
	g.owner = owner
	g.conn.SetReadDeadline(time.Time{})
	return true
}

// Stalled reports whether the backend left the bytes sent on the
// connection unacknowledged (an interrupt.Staller): the pool's stall
// watch re-sends such a request elsewhere instead of waiting for
// TCP_USER_TIMEOUT.
func (g *Guard) Stalled() bool { return interrupt.Unacknowledged(g.conn) }

// Fit checks a connection just taken from the pool: it may carry a
// request only if nothing is readable on it. A backend that closed it
// while idle has sent FIN or RST; bytes nobody asked for (a backend that
// sent more than its response) would be read as the answer to this
// request, so the connection is dropped and the first of them passed to
// report, if not nil. It clears Unchecked.
func (g *Guard) Fit(report func(head []byte)) bool {
	g.Unchecked = false
	return g.Probe.Fit(g.Probe.Check(g.conn), report)
}
