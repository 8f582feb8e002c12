package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
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
		ResponseHeaderTimeout:  p.opts.ResponseHeaderTimeout,
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
	return stdTransport{Transport: tr, plain: plain}
}

// stdTransport is net/http's Transport with the request checked first,
// so that a request net/http would refuse to write fails as the
// request's fault (errInvalidRequest), never counted against the backend
// (the outlier count would otherwise let a client eject a healthy
// address with requests the Transport refuses).
type stdTransport struct {
	*http.Transport
	plain bool // http:// targets: connections are strayConns
}

// errInvalidRequest is matched by the error of a request the std client
// refuses to send: proxy/h1's ErrInvalidRequest for net/http's Transport.
var errInvalidRequest = errors.New("upstream: invalid request")

func (t stdTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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
