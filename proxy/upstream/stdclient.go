package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"

	"github.com/webtier/webtier/proxy/internal/backendconn"
)

// This file is the standard library's backend client: net/http's
// Transport, for https:// targets always and for http:// targets of an
// upstream with Engine std (instead of proxy/h1). It sits behind the same
// seam as the own clients (backendTransport), so Pool.send has one path
// for every client: the dial is the Endpoint's (a fixed address the Pool
// picked from the shared resolver's answer, so the Transport never sees a
// name and never resolves one; a failed connect counts toward ejection and
// is a DialError, retried elsewhere), and a try is rescued or loses a
// connect race by its context, as net/http has no other way to stop a
// request.

// stdMaxResponseHead bounds a response head from a backend, as proxy/h1
// does (net/http's default is 10 MiB).
const stdMaxResponseHead = 1 << 20

// newStdTransport returns net/http's Transport dialing through dial, with
// the pool's timeouts and limits; tlsConf is nil for http:// targets.
// net/http makes the TLS handshake on the dialed connection (so that a
// WebSocket upgrade gets a connection offering HTTP/1.1 only: HTTP/2 has
// no Upgrade); tryFailed tells a refused certificate from the error.
// HTTP/2 (ALPN h2 on https:// targets unless protocol is http1; prior
// knowledge with protocol h2c) is golang.org/x/net/http2's Transport under
// this one: the same dial, so the same address choice, and
// CloseIdleConnections closes its idle connections too (net/http finds
// it, Go issue 22891).
func (p *Pool) newStdTransport(dial func(context.Context) (net.Conn, error), tlsConf *tls.Config, onStray func([]byte)) backendTransport {
	h2c := tlsConf == nil && p.opts.Protocol == ProtocolH2C
	plain := tlsConf == nil && !h2c
	if plain {
		// Plain HTTP/1.1: the connection catches a backend's stray bytes
		// (straybytes.go). Not under TLS, where a server may send
		// session tickets after the handshake, before any request, nor
		// with HTTP/2, whose server speaks first (its SETTINGS).
		inner := dial
		dial = func(ctx context.Context) (net.Conn, error) {
			c, err := inner(ctx)
			if err != nil {
				return nil, err
			}
			return &strayConn{Conn: c, onStray: onStray}, nil
		}
	}
	tr := &http.Transport{
		// The address is fixed: the transport never sees a hostname, so
		// it can never resolve one.
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		Proxy:       nil, // never honour HTTP_PROXY for backends
		// A copy: net/http and x/net adjust NextProtos on the one they
		// are given.
		TLSClientConfig:        tlsConf.Clone(),
		TLSHandshakeTimeout:    p.opts.ConnectTimeout,
		MaxIdleConnsPerHost:    p.httpsMaxIdle(),
		IdleConnTimeout:        p.opts.IdleConnTimeout,
		ResponseHeaderTimeout:  max(p.opts.ResponseHeaderTimeout, p.opts.MaxRouteTimeout),
		MaxResponseHeaderBytes: stdMaxResponseHead,
		ExpectContinueTimeout:  1 * time.Second,
		// The proxy passes the client's Accept-Encoding through; it must not
		// add its own and decompress behind the client's back.
		DisableCompression: true,
	}
	if p.opts.MaxIdlePerAddress < 0 {
		tr.DisableKeepAlives = true
	}
	if h2c {
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	}
	if h2c || (tlsConf != nil && p.opts.Protocol != ProtocolHTTP1) {
		// Cannot fail: tr has no TLSNextProto of its own yet.
		if _, err := http2.ConfigureTransports(tr); err != nil {
			panic(fmt.Sprintf("upstream: configuring HTTP/2: %v", err))
		}
	}
	st := stdTransport{Transport: tr, plain: plain}
	if p.opts.MaxRouteTimeout > 0 {
		st.rht = p.opts.ResponseHeaderTimeout
	}
	return st
}

// stdTransport is net/http's Transport with the request checked first,
// so that a request net/http would refuse to write fails as the
// request's fault (errInvalidRequest), never counted against the backend
// (the outlier count would otherwise let a client eject a healthy
// address with requests the Transport refuses).
//
// With route timeouts (Options.MaxRouteTimeout) the Transport's own
// ResponseHeaderTimeout is the longest of the upstream's and the routes',
// since net/http has no per-request one, and a request whose timeout is
// shorter gets a timer of its own (headerTimer).
type stdTransport struct {
	*http.Transport
	plain bool          // http:// targets: connections are strayConns
	rht   time.Duration // the upstream's response_header_timeout when routes have timeouts; else 0
}

// errInvalidRequest is matched by the error of a request the std client
// refuses to send: proxy/h1's ErrInvalidRequest for net/http's Transport.
var errInvalidRequest = errors.New("upstream: invalid request")

func (t stdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.rht > 0 {
		d, route := backendconn.HeaderTimeout(req.Context(), t.rht)
		if d < t.Transport.ResponseHeaderTimeout {
			return t.headerTimer(req, d, route)
		}
	}
	return t.roundTrip(req)
}

// errHeaderTimer is the cause of a context headerTimer ended.
var errHeaderTimer = errors.New("upstream: response header timer fired")

// headerTimer sends req with a response header timeout d shorter than
// the Transport's: a context of its own, ended when no head has come
// within d of the request's write (httptrace's WroteRequest, where
// net/http starts its own ResponseHeaderTimeout, so that a slow upload
// does not count). Once the head has come the context ends only with
// req's (a client that leaves) or when the body is closed, so the body is
// never cut off by the timer.
func (t stdTransport) headerTimer(req *http.Request, d time.Duration, route bool) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	ht := &headerTimerState{d: d}
	ht.timer = time.AfterFunc(time.Hour, func() { cancel(errHeaderTimer) })
	ht.timer.Stop()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: ht.wrote})
	resp, err := t.roundTrip(req.WithContext(ctx))
	if ht.end() {
		if resp != nil {
			resp.Body.Close() // its head came as the timer fired: too late
		}
		return nil, &headerTimeoutError{d: d, route: route}
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	c := cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	if rw, ok := resp.Body.(io.ReadWriteCloser); ok {
		// An upgraded connection (101) stays one.
		resp.Body = &cancelOnCloseRW{cancelOnClose: c, w: rw}
	} else {
		resp.Body = &c
	}
	return resp, nil
}

// headerTimerState arms a headerTimer when the request has been written
// (again, for net/http's retry on a new connection), never after the
// round trip returned: net/http can return a response that came before
// the write ended, and report the write later.
type headerTimerState struct {
	d     time.Duration
	timer *time.Timer

	mu    sync.Mutex
	ended bool
	armed bool // the request was written: the timer counts
}

func (h *headerTimerState) wrote(httptrace.WroteRequestInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ended {
		h.timer.Reset(h.d)
		h.armed = true
	}
}

// end stops the timer and reports whether it fired.
func (h *headerTimerState) end() (fired bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ended = true
	return h.armed && !h.timer.Stop()
}

// cancelOnClose releases a headerTimer context with the body it carried.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

type cancelOnCloseRW struct {
	cancelOnClose
	w io.Writer
}

func (b *cancelOnCloseRW) Write(p []byte) (int, error) { return b.w.Write(p) }

// headerTimeoutError is the error of a request headerTimer ended. It is a
// net.Error whose Timeout reports true, answered 504 as net/http's own
// response header timeout is.
type headerTimeoutError struct {
	d     time.Duration
	route bool // d is the route's timeout, not the upstream's
}

func (e *headerTimeoutError) Error() string {
	if e.route {
		return fmt.Sprintf("upstream: no response headers within %v (the route's timeout)", e.d)
	}
	return fmt.Sprintf("upstream: no response headers within %v (the upstream's response_header_timeout)", e.d)
}
func (e *headerTimeoutError) Timeout() bool   { return true }
func (e *headerTimeoutError) Temporary() bool { return true }

func (t stdTransport) roundTrip(req *http.Request) (*http.Response, error) {
	if err := checkStdRequest(req); err != nil {
		if req.Body != nil {
			req.Body.Close() // as RoundTrip does on every error
		}
		return nil, err
	}
	if !t.plain {
		return checkLength(t.Transport.RoundTrip(req))
	}
	out := withStrayTrace(req)
	resp, err := t.Transport.RoundTrip(out)
	if err != nil && errors.Is(err, errStrayBytes) {
		// Nothing of the request was written: once more, on a new
		// connection (the poisoned one is closed), if its body can be.
		if g, ok := req.Body.(*bodyGuard); ok && g.read.n.Load() == 0 {
			out.Body = &bodyGuard{read: g.read}
		} else if req.Body != nil && req.Body != http.NoBody {
			return nil, err
		}
		resp, err = t.Transport.RoundTrip(out)
	}
	return resp, err
}

// errContentLength is the error of a response with conflicting
// Content-Length values.
var errContentLength = errors.New("upstream: backend sent conflicting Content-Length values")

// checkLength refuses a response with several different Content-Length
// values, which RFC 9110 8.6 makes an unrecoverable error: net/http's
// HTTP/1 client refuses it, golang.org/x/net/http2's passes the fields on
// (it frames by DATA frames), and a front end that writes them would hand
// an HTTP/1.1 client two framings. Equal values are made one.
func checkLength(resp *http.Response, err error) (*http.Response, error) {
	if err != nil {
		return resp, err
	}
	if cl := resp.Header["Content-Length"]; len(cl) > 1 {
		for _, v := range cl[1:] {
			if v != cl[0] {
				resp.Body.Close()
				return nil, fmt.Errorf("%w: %q", errContentLength, cl)
			}
		}
		resp.Header["Content-Length"] = cl[:1]
	}
	return resp, nil
}

// checkStdRequest applies the checks net/http's Transport makes before it
// writes a request (method, Host, header names and values), whose errors
// have no type to tell them from a backend's failure.
func checkStdRequest(req *http.Request) error {
	if req.Method != "" && !validMethod(req.Method) {
		return fmt.Errorf("%w: invalid method %q", errInvalidRequest, req.Method)
	}
	if req.Host != "" && !httpguts.ValidHostHeader(req.Host) {
		return fmt.Errorf("%w: invalid Host %q", errInvalidRequest, req.Host)
	}
	for k, vv := range req.Header {
		if !httpguts.ValidHeaderFieldName(k) {
			return fmt.Errorf("%w: invalid header name %q", errInvalidRequest, k)
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				return fmt.Errorf("%w: invalid value for header %q", errInvalidRequest, k)
			}
		}
	}
	return nil
}

// validMethod is net/http's rule: a token.
func validMethod(m string) bool {
	for i := 0; i < len(m); i++ {
		if !httpguts.IsTokenRune(rune(m[i])) {
			return false
		}
	}
	return len(m) > 0
}
