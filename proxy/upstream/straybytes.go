package upstream

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
)

// This file keeps a backend's stray bytes from reaching another client
// when the client of http:// targets is net/http's Transport (engine std).
// A backend that sends bytes after a complete response (a wrong
// Content-Length, a body on a 204, 304 or HEAD answer, a response split by
// the application) would have them read as the answer to the next request
// on that connection: response-queue poisoning. The Transport drops a
// connection that becomes readable while idle, but only if its read loop
// looks before the next request takes the connection, a race the attack
// suite lost under load; proxy/h1 checks at reuse. Here the connection
// checks: bytes read while it is idle (from the end of a response, when
// the Transport pools it, to the next request taking it), or after a
// request took it and before the request's first byte is written, or
// waiting on the socket at that first write, are stray, and the
// connection fails rather than pass them on. The request, of which
// nothing was written, is sent again on a new connection.

// errStrayBytes is the error of a try whose connection held a backend's
// stray bytes when the request was about to be written.
var errStrayBytes = errors.New("upstream: backend sent bytes before the request (after a complete response); connection closed")

// strayConn is a connection to an http:// target of engine std.
type strayConn struct {
	net.Conn
	onStray func(head []byte) // logs, naming the backend

	mu      sync.Mutex
	use     uint64 // counts the requests that took c
	idle    bool   // the response of request use is complete
	written bool   // request use's first bytes were written
	stray   bool   // stray bytes were seen: the connection fails
}

// begin marks the start of a request on c: until its first write, any
// byte read is stray. It returns the request's number.
func (c *strayConn) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.use++
	c.idle, c.written = false, false
	return c.use
}

// pooled marks the end of request use's response: c is idle until the
// next request takes it. (The Transport may have handed c to the next
// request already: then nothing changes.)
func (c *strayConn) pooled(use uint64) {
	c.mu.Lock()
	if c.use == use {
		c.idle = true
	}
	c.mu.Unlock()
}

func (c *strayConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.stray {
		c.mu.Unlock()
		return 0, errStrayBytes
	}
	if !c.written {
		c.written = true
		if head, ok := peekPending(c.Conn); ok {
			c.stray = true
			c.mu.Unlock()
			c.onStray(head)
			return 0, errStrayBytes
		}
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *strayConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	c.mu.Lock()
	stray := c.stray || c.idle || !c.written
	if stray && !c.stray {
		c.stray = true
		c.mu.Unlock()
		c.onStray(p[:min(n, 128)])
		return 0, errStrayBytes
	}
	c.mu.Unlock()
	if stray {
		return 0, errStrayBytes
	}
	return n, err
}

// strayUse follows one request's connection: GotConn says which, and
// PutIdleConn (called by the Transport's read loop when the response is
// complete, before it reads again) that it is idle.
type strayUse struct {
	trace httptrace.ClientTrace
	c     *strayConn
	use   uint64
}

// withStrayTrace returns req with a trace that keeps its connection's
// state (see strayConn).
func withStrayTrace(req *http.Request) *http.Request {
	u := &strayUse{}
	u.trace.GotConn = func(info httptrace.GotConnInfo) {
		if c, ok := info.Conn.(*strayConn); ok {
			u.c, u.use = c, c.begin()
		}
	}
	u.trace.PutIdleConn = func(err error) {
		if err == nil && u.c != nil {
			u.c.pooled(u.use)
		}
	}
	return req.WithContext(httptrace.WithClientTrace(req.Context(), &u.trace))
}
