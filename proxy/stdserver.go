package proxy

import (
	"net/http"
	"time"

	"github.com/webtier/webtier/proxy/h2"
	"github.com/webtier/webtier/proxy/upstream"
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

// Engine picks whose protocol code serves a listener or an upstream; see
// upstream.Engine.
type Engine = upstream.Engine

// The engines; see upstream.EngineWebtier and upstream.EngineStd.
const (
	EngineWebtier = upstream.EngineWebtier
	EngineStd     = upstream.EngineStd
	DefaultEngine = upstream.DefaultEngine
)

// engineName is e as written in the config, with the default filled in.
func engineName(e Engine) string {
	if e == "" {
		return string(DefaultEngine)
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

// configureStdHTTP2 sets the HTTP/2 limits of srv, which serves a TLS
// listener with net/http's bundled HTTP/2 server (negotiated by ALPN, as
// srv.TLSConfig lists "h2"). The decoded header list is bounded by
// srv.MaxHeaderBytes (max_header_size; net/http advertises it, with some
// slack, as SETTINGS_MAX_HEADER_LIST_SIZE and answers 431 over it), and
// the field count, request line, body timeout and per-write
// write_timeout by netHTTPGuard, which applies to HTTP/2 requests with
// this engine. writeTimeout also ends a connection whose socket writes
// make no progress (WriteByteTimeout), as proxy/h2 does; idle_timeout is
// srv.IdleTimeout, which the HTTP/2 server uses as well. Rapid reset and
// CONTINUATION floods are bounded by net/http itself (the Go advisories
// of 2023 and 2024).
func configureStdHTTP2(srv *http.Server, writeTimeout time.Duration) {
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
