package h1

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"github.com/webtier/webtier/proxy/internal/idlepool"
)

// Defaults for Options.
const (
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 15 * time.Second // below Tomcat's stock 20 s keep-alive
)

const (
	// writeBufSize is each connection's write buffer: a typical request
	// head fits, so a bodiless request is one write.
	writeBufSize = 4 << 10

	// readBufSize is each connection's read buffer: a response head and
	// a body of up to about 16 KiB that the backend sent together are one
	// read (with 4 KiB, an 8 KiB response took two).
	readBufSize = 16 << 10

	// maxHeaderBytes bounds the bytes read from a connection while waiting
	// for a response head (1xx responses included), so that a broken
	// backend cannot make the proxy buffer without limit.
	maxHeaderBytes = 1 << 20

	// max1xx bounds the informational responses skipped before the final
	// one (net/http's historical limit).
	max1xx = 5
)

// Options configure a Transport. The zero value of every field but Dial
// selects the default given in its comment; so does a negative duration.
type Options struct {
	// Dial opens a connection to the backend's fixed address. Required.
	// Its errors are returned wrapped; errors.As finds them.
	//
	// When the request's context can be cancelled, Dial runs on a
	// goroutine of its own and a request that gives up (a connect race it
	// lost, a client that left) returns at once; a connection Dial returns
	// after that is pooled. Dial decides whether ctx's cancellation stops
	// the connect: the upstream pool's does not, so that the connect ends
	// either pooled or counted as a failure of the address.
	Dial func(ctx context.Context) (net.Conn, error)

	// ResponseHeaderTimeout is how long to wait for the response head
	// once the request head is written. While a request body is being
	// written the clock restarts after each write, so a slow upload does
	// not count. Expiry returns a net.Error whose Timeout is true.
	// Default 60s.
	ResponseHeaderTimeout time.Duration

	// RouteTimeouts says that some requests carry a route's timeout in
	// their context (backendconn.WithHeaderTimeout), which takes the
	// place of ResponseHeaderTimeout for them. Without it no request's
	// context is looked at.
	RouteTimeouts bool

	// IdleTimeout is how long a pooled connection may stay idle before it
	// is closed. Default 15s.
	IdleTimeout time.Duration

	// MaxIdle, when positive, caps the idle connections kept; when the
	// pool is full the oldest is closed. Zero (the default): no cap of the
	// transport's own, every connection a request leaves idle is kept
	// until IdleTimeout, within IdleLimit. Negative: no keep-alive (every
	// request says "Connection: close" and its connection is closed after
	// it).
	MaxIdle int

	// IdleLimit, if set, bounds the idle connections of every transport
	// sharing it; when it is reached the connection idle the longest, in
	// any of them, is closed to make room. Nil: no shared limit.
	IdleLimit *idlepool.Limit

	// OnUnsolicited, if set, is called when a connection is found holding
	// bytes that no request asked for: at the end of a response, or on a
	// pooled connection about to be reused. The connection is closed
	// instead, so those bytes are never read as the answer to another
	// request; this reports them, for the log. head is up to 64 of the
	// first of them, valid only during the call. It must not block.
	OnUnsolicited func(head []byte)
}

// Transport is an http.RoundTripper that speaks HTTP/1.1 to one backend
// address through a pool of connections, each carrying one request at a
// time. Transport values must not be copied; use NewTransport.
type Transport struct {
	o Options // defaults applied

	idle *idlepool.Pool[*persistConn]
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport using o. It panics if o.Dial is nil.
func NewTransport(o Options) *Transport {
	if o.Dial == nil {
		panic("h1: Options.Dial is required")
	}
	if o.ResponseHeaderTimeout <= 0 {
		o.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	return &Transport{o: o, idle: idlepool.New[*persistConn](o.MaxIdle, o.IdleTimeout, o.IdleLimit)}
}

// RoundTrip sends req and returns the response as soon as its head has
// arrived; the Body streams the rest. Reading the Body to EOF returns the
// connection to the pool (before EOF is returned); closing it earlier
// closes the connection unless the rest of the response was already
// buffered. RoundTrip closes req.Body, also on errors, possibly after it
// returns (the body is written on a goroutine of its own).
//
// req.URL.RequestURI() is the request target and req.Host (else
// req.URL.Host) the Host header; req.URL's scheme and host are not used
// otherwise, since the address is fixed. The request head is written from
// req.Header as it is (minus Host, Content-Length, Transfer-Encoding and
// Trailer, which RoundTrip writes itself), so "Connection: Upgrade" and
// "Upgrade" pass for WebSocket. An invalid request returns an error
// wrapping ErrInvalidRequest before anything is written.
//
// A request is sent again, once and on a new connection, when a pooled
// connection turns out to have been closed by the backend while it was
// idle (net/http's rule): when writing to it failed and no byte of the
// request body had been read, or when reading the response got EOF or a
// reset before any byte of it, no byte of the request body had been read
// and the request is replayable (GET, HEAD, OPTIONS, TRACE, or an
// Idempotency-Key header).
//
// Every request checks a pooled connection with a non-blocking peek
// before it writes to it: one that the backend closed, or that holds bytes
// no request asked for (see Options.OnUnsolicited), is closed, and the
// next pooled connection or a new one is used.
//
// A timeout waiting for the response head is a net.Error whose Timeout
// is true. When req's context ends, a blocked read or write is
// interrupted and the error wraps the context's cause. Other errors wrap
// what the connection returned, so errors.Is(err, syscall.ETIMEDOUT)
// holds for a connection the kernel gave up on.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.RoundTripInterruptible(req, nil)
}

// HasIdle reports whether a pooled connection is waiting for a request:
// the next request would most likely not need to connect. The upstream
// pool races connects only for requests that would.
func (t *Transport) HasIdle() bool { return t.idle.Len() > 0 }

// CloseIdleConnections closes the idle connections now, and closes
// connections that finish their request later instead of pooling them,
// until the next RoundTrip. In-flight requests are not interrupted. This is
// net/http's contract, which drain relies on.
func (t *Transport) CloseIdleConnections() { t.idle.CloseIdle() }

// getConn returns a connection for ex: the most recently pooled one that
// is fit, unless fresh is set, or a new one. reused reports which. It
// calls httptrace's GotConn.
func (t *Transport) getConn(ex *exchange, fresh bool) (pc *persistConn, reused bool, err error) {
	for !fresh {
		pc, now, idle := t.popIdle()
		if pc == nil {
			break
		}
		// Checked before the first byte goes out: a request without a
		// body by its flush (flushAwait), in the same step as the write;
		// one with a body here, before its writer can read any of it.
		pc.Unchecked = true
		if ex.reqBody != nil && !pc.fit() {
			pc.close() // not giving it back: closed, or holding stray bytes
			continue
		}
		ex.start = now
		gotConn(ex.trace, pc, true, idle)
		return pc, true, nil
	}
	pc, err = t.dial(ex.ctx)
	if err != nil {
		return nil, false, err
	}
	ex.start = time.Now()
	gotConn(ex.trace, pc, false, 0)
	return pc, false, nil
}

func gotConn(trace *httptrace.ClientTrace, pc *persistConn, reused bool, idle time.Duration) {
	if trace != nil && trace.GotConn != nil {
		trace.GotConn(httptrace.GotConnInfo{Conn: pc.conn, Reused: reused, WasIdle: reused, IdleTime: idle})
	}
}

// dialing is a connect that the request waiting for it may abandon.
type dialing struct {
	done chan struct{} // closed when pc or err is set, unless abandoned

	mu        sync.Mutex // guards the fields below
	pc        *persistConn
	err       error
	abandoned bool // the request left; a connection goes to the pool
}

// dial opens a new connection. With a context that can end it connects on
// a goroutine of its own, so that the request can leave while the connect
// goes on (see Options.Dial).
func (t *Transport) dial(ctx context.Context) (*persistConn, error) {
	if ctx.Err() != nil {
		return nil, canceledError(ctx)
	}
	if ctx.Done() == nil {
		conn, err := t.o.Dial(ctx)
		if err != nil {
			return nil, fmt.Errorf("h1: connecting: %w", err)
		}
		return newPersistConn(t, conn), nil
	}
	d := &dialing{done: make(chan struct{})}
	go t.dialFor(ctx, d)
	select {
	case <-d.done:
		if d.err != nil {
			return nil, fmt.Errorf("h1: connecting: %w", d.err)
		}
		return d.pc, nil
	case <-ctx.Done():
	}
	d.mu.Lock()
	pc := d.pc
	d.abandoned = pc == nil && d.err == nil
	d.mu.Unlock()
	if pc != nil {
		// Connected just as the request left: keep it for the next one.
		t.putIdle(pc)
	}
	return nil, canceledError(ctx)
}

// dialFor runs a connect for d.
func (t *Transport) dialFor(ctx context.Context, d *dialing) {
	conn, err := t.o.Dial(ctx)
	var pc *persistConn
	if err == nil {
		pc = newPersistConn(t, conn)
	}
	d.mu.Lock()
	if d.abandoned {
		d.mu.Unlock()
		if pc != nil {
			t.putIdle(pc)
		}
		return
	}
	d.pc, d.err = pc, err
	d.mu.Unlock()
	close(d.done)
}

// popIdle takes the most recently used idle connection that has not
// expired (nil if none), and re-enables pooling after
// CloseIdleConnections (a request wants a connection). now is the time it
// looked, idle how long pc was idle.
func (t *Transport) popIdle() (pc *persistConn, now time.Time, idle time.Duration) {
	pc, _, now, idle = t.idle.Get()
	if pc != nil {
		pc.attachBuffers()
	}
	return pc, now, idle
}

// putIdle pools pc, without its buffers, or closes it when pooling is off,
// after CloseIdleConnections, or when it holds bytes nobody asked for. The
// connection idle the longest makes room when the pool is full.
func (t *Transport) putIdle(pc *persistConn) {
	if idlepool.Leftover(pc.br, t.o.OnUnsolicited) {
		pc.close() // never reused: Options.OnUnsolicited says why
		return
	}
	if !pc.detachBuffers() {
		pc.close() // a request head left unsent: never reused
		return
	}
	t.idle.Put(pc)
}

// idleCount returns the number of pooled connections (for tests).
func (t *Transport) idleCount() int { return t.idle.Len() }
