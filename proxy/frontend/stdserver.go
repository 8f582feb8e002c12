package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/frontend/h2"
)

// This file is the standard library's engine of a listener (engine: std):
// net/http's server for HTTP/1 on plain listeners instead of the fast path
// (fast*.go, idlepoll), and net/http's bundled HTTP/2 server on TLS
// listeners instead of proxy/h2. The handler, the routes, the forward
// rules and the upstream pools are the same; netHTTPGuard gives both
// servers the head limits, body timeout and write timeout net/http lacks,
// for HTTP/2 requests too. It is there so that an operator can turn
// webtier's own protocol code off, when an advisory lands for it, by
// config or by WEBTIER_ENGINE=std, without a rebuild.

// engineName is e as written in the config, with the default filled in.
func engineName(e proxy.Engine) string {
	if e == "" {
		return string(proxy.DefaultEngine)
	}
	return string(e)
}

// Receive windows and frame size of net/http's HTTP/2 server with engine
// std: those proxy/h2 grants, so that a client can make webtier buffer no
// more on one engine than on the other (net/http's defaults are 1 MiB
// per connection, 1 MiB per stream and 1 MiB frames).
const (
	stdH2ConnWindow   = 1 << 20
	stdH2StreamWindow = 1 << 20
	stdH2MaxFrame     = 16 << 10
)

// configureStd makes srv serve a listener of engine std: on a TLS
// listener, net/http's bundled HTTP/2 server (negotiated by ALPN, as
// srv.TLSConfig lists "h2"; set up by newStdH2Drain) gets the listener's
// limits. The decoded header list is bounded by
// srv.MaxHeaderBytes (max_header_size; net/http advertises it, with some
// slack, as SETTINGS_MAX_HEADER_LIST_SIZE and answers 431 over it), and
// the field count, request line, body timeout and per-write
// write_timeout by netHTTPGuard, which applies to HTTP/2 requests with
// this engine. writeTimeout also ends a connection whose socket writes
// make no progress (WriteByteTimeout), as proxy/h2 does; idle_timeout is
// srv.IdleTimeout, which the HTTP/2 server uses as well. Rapid reset and
// CONTINUATION floods are bounded by net/http itself (the Go advisories
// of 2023 and 2024). Requests carry their connection's life (connLife),
// which ends their backend requests when the client goes away (detach).
func configureStd(srv *http.Server, writeTimeout time.Duration) {
	srv.ConnContext = connLife
	srv.HTTP2 = &http.HTTP2Config{
		MaxConcurrentStreams:          h2.DefaultMaxConcurrentStreams,
		MaxReadFrameSize:              stdH2MaxFrame,
		MaxReceiveBufferPerConnection: stdH2ConnWindow,
		MaxReceiveBufferPerStream:     stdH2StreamWindow,
		WriteByteTimeout:              writeTimeout,
	}
}

// check applies the listener's head limits to a request net/http parsed:
// HTTP/1's (checkRequest), or, with engine std, HTTP/2's as proxy/h2
// counts them: header fields other than pseudo-header fields (net/http
// has turned them into the request line and Host, and joined the cookie
// crumbs into one Cookie field) up to max_header_fields, and the header
// list as SETTINGS_MAX_HEADER_LIST_SIZE counts it (name, value and 32
// bytes a field) up to max_header_size; net/http's own bound on it has
// some slack. No request-line limit: proxy/h2 has none either, :path
// being bounded by the header list.
func (g *netHTTPGuard) check(r *http.Request) (int, string) {
	if r.ProtoMajor == 1 {
		return g.lim.checkRequest(r)
	}
	fields, size := 0, len(":method")+len(r.Method)+len(":path")+len(r.RequestURI)+len(":authority")+len(r.Host)+3*32
	for k, vv := range r.Header {
		for _, v := range vv {
			fields++
			size += len(k) + len(v) + 32
		}
	}
	switch {
	case fields > g.lim.fields:
		return http.StatusRequestHeaderFieldsTooLarge, msgFields
	case size > g.lim.headSize:
		return http.StatusRequestHeaderFieldsTooLarge, msgHeadSize
	}
	return 0, ""
}

// detach keeps an HTTP/2 request of engine std running when its client
// resets the stream: net/http's HTTP/2 server cancels the request's
// context then, the proxy's handler returns at once while its backend
// connect goes on (a connect outlives the request that started it, see
// upstream), and net/http starts the next stream's handler: a client
// sending HEADERS and RST_STREAM in a loop (rapid reset, CVE-2023-44487)
// would open backend connections far beyond SETTINGS_MAX_CONCURRENT_STREAMS.
// Detached, a handler holds its slot until the backend answers
// (response_header_timeout) or a write to the reset stream fails, so
// net/http's bound on running handlers bounds the backend connections
// too, and a client that keeps resetting is sent away by net/http
// (ENHANCE_YOUR_CALM once its queue of unstarted handlers is full). This
// is the own servers' behaviour toward a client that leaves before its
// response headers (HAProxy's abortonclose off).
//
// The end of the connection still ends the request, as on proxy/h2: the
// detached context is cancelled when the client's connection closes
// (connLife), so that a client that drops a connection with streams
// waiting takes their backend requests with it rather than leaving them
// to the backend's answer. release must be called when the handler
// returns. HTTP/1 requests keep net/http's cancellation (release is nil):
// one connection runs one handler.
func (g *netHTTPGuard) detach(r *http.Request) (_ *http.Request, release func()) {
	if r.ProtoMajor != 2 {
		return r, nil
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	if life, ok := r.Context().Value(connLifeKey{}).(context.Context); ok {
		stop := context.AfterFunc(life, cancel)
		return r.WithContext(ctx), func() { stop(); cancel() }
	}
	return r.WithContext(ctx), cancel
}

// connLifeKey is the key of a connection's connLife context in its
// requests' contexts.
type connLifeKey struct{}

// connLifeListener gives each connection of a TLS listener of engine std,
// under its TLS layer, a context that ends when net/http closes the
// connection (connLife): the only sign of a dropped HTTP/2 connection a
// detached handler can wait on, as net/http's HTTP/2 server cancels a
// request's context alike for a reset stream and for a closed connection.
type connLifeListener struct{ net.Listener }

func (l connLifeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	life, end := context.WithCancel(context.Background())
	return &lifeConn{Conn: c, life: life, end: end}, nil
}

// lifeConn is a connection whose life ends at its first Close.
type lifeConn struct {
	net.Conn
	life context.Context
	end  context.CancelFunc
}

func (c *lifeConn) Close() error {
	c.end()
	return c.Conn.Close()
}

// connLife is the http.Server's ConnContext with engine std: it puts the
// connection's life, if it has one (connLifeListener), in the context its
// requests derive from.
func connLife(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if lc, ok := c.(*lifeConn); ok {
		return context.WithValue(ctx, connLifeKey{}, lc.life)
	}
	return ctx
}

// stdListener is a plain listener of engine std: each accepted connection
// gets TCP keep-alive probes (as every connection net/http serves; see
// withKeepAlive) and ends with a reset after a write_timeout.
type stdListener struct{ net.Listener }

func (l stdListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	withKeepAlive(c)
	if tc, ok := c.(*net.TCPConn); ok {
		return resetOnTimeoutConn{tc}, nil
	}
	if pc, ok := c.(*proxiedConn); ok {
		if tc, ok := pc.Conn.(*net.TCPConn); ok {
			pc.Conn = resetOnTimeoutConn{tc} // RemoteAddr stays the client's
		}
	}
	return c, nil
}

// resetOnTimeoutConn makes a client connection end with a reset when a
// write to it fails on write_timeout's deadline (set by netHTTPGuard): the
// client stopped reading, and what is queued for it in the kernel
// (megabytes, with autotuned buffers) would otherwise stay with the
// orphaned socket, which never sends it nor gives up while the client
// keeps its window shut. net/http closes the connection on the failed
// write; the linger set here turns that close into a reset. The fast path
// does the same (rawWriter), as nginx's reset_timedout_connection. The
// other methods, ReadFrom and CloseWrite among them, are the TCPConn's.
type resetOnTimeoutConn struct{ *net.TCPConn }

func (c resetOnTimeoutConn) Write(p []byte) (int, error) {
	n, err := c.TCPConn.Write(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		c.SetLinger(0) //nolint:errcheck // best effort: the connection ends either way
	}
	return n, err
}

// noSniff keeps net/http's servers from adding a Content-Type sniffed
// from the body to a response that has none (a key with no value is
// written as nothing and stops the sniffing), so that engine std passes
// the backend's headers as they are, as the fast path and proxy/h2 do: a
// backend that sends an upload without a type, with nosniff, must not see
// it turned into text/html by the proxy.
func noSniff(h http.Header) {
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}

// stdH2Drain sends the HTTP/2 connections of a TLS listener of engine std
// away at the start of a drain, as proxy/h2's Drain does: a GOAWAY
// (NO_ERROR) to each, whose open streams finish before it closes, so that
// its client reconnects through the balancer. net/http's HTTP/2 server
// sends that GOAWAY only from Server.Shutdown, which closes the listener
// too; so it is set up on a second http.Server that serves nothing
// (goAway), and the listener's server serves each "h2" connection with
// the TLSNextProto function net/http made for goAway. That function
// serves a connection as the server that hands it over (its handler,
// ConnContext, HTTP2 limits, hooks and logger) but registers it with
// goAway, whose Shutdown is then a GOAWAY to every connection and closes
// nothing else. The listener's own Shutdown calls it too, as net/http
// would. Connections opened during the drain get their GOAWAY with their
// first response (Listen's handler says Connection: close, which
// net/http's HTTP/2 server turns into one).
type stdH2Drain struct{ goAway *http.Server }

// newStdH2Drain sets srv's HTTP/2 up so (before srv serves). It returns
// nil, and leaves srv as it is, when net/http serves no HTTP/2
// (GODEBUG=http2server=0): there is nothing to send away then.
func newStdH2Drain(srv *http.Server) h2Drainer {
	ga := &http.Server{IdleTimeout: srv.IdleTimeout, HTTP2: srv.HTTP2}
	ga.Serve(noListener{}) //nolint:errcheck // sets HTTP/2 up on ga, then returns: nothing to accept
	h2 := ga.TLSNextProto["h2"]
	if h2 == nil {
		return nil
	}
	srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){"h2": h2}
	d := stdH2Drain{goAway: ga}
	srv.RegisterOnShutdown(func() { d.Drain(true) })
	return d
}

// Drain, on, sends every HTTP/2 connection a GOAWAY; off, nothing is to
// be undone (connections sent away reconnect as new ones).
func (d stdH2Drain) Drain(on bool) {
	if on {
		d.goAway.Shutdown(context.Background()) //nolint:errcheck // returns at once: goAway has no connection of its own
	}
}

// noListener is a listener that has nothing to accept.
type noListener struct{}

func (noListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (noListener) Close() error              { return nil }
func (noListener) Addr() net.Addr            { return &net.TCPAddr{} }
