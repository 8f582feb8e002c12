// Package proxy is webtier's Handler: routing by Host and path prefix,
// path cleaning, and the reverse-proxy rules (hop-by-hop headers,
// X-Forwarded-*, streaming, 502/504 answers). Backend addresses come only from
// proxy/upstream pools, which follow the shared resolver; nothing here looks
// up a name. The listeners and the servers that call the Handler are
// proxy/frontend's.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/accesslog"
	"github.com/webtier/webtier/proxy/compress"
	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/proxy/rules/errpage"
	"github.com/webtier/webtier/proxy/upstream"
	"github.com/webtier/webtier/proxy/upstream/ajp"
	"github.com/webtier/webtier/resolver"
)

// Handler routes requests to upstream pools. One Handler serves every
// listener; a config reload builds a new Handler and swaps it in.
type Handler struct {
	router *router
	pools  []*upstream.Pool
	fronts []*front // one per listener, in Options.Listeners order
	log    *zap.Logger

	// refs counts the requests the listeners are serving with this
	// handler, plus one while it is Live's current handler. Whoever
	// takes it to zero closes the handler, so a reload closes the old one
	// only after its last request, however long that takes.
	refs      atomic.Int64
	closeOnce sync.Once
	closed    chan struct{} // closed by Close

	// answers, by pool index, are closed when the pool has applied the
	// first DNS answer of one of its named targets (see waitAnswers).
	answers [][]answerWait
	// hostHeaders, by pool index, are the upstreams' HostHeader options:
	// the Host of a request that came without one.
	hostHeaders []string
}

// answerWait is one named target's first DNS answer, awaited by a reload.
type answerWait struct {
	host string
	got  chan struct{}
}

// front is the Handler as seen from one listener: the listener decides
// whose X-Forwarded-* headers are trusted, so each listener has its own
// reverse proxies.
type front struct {
	h       *Handler
	name    string
	trusted []netip.Prefix
	// clientAddrOf is clientAddr as a func value, made once so that the
	// rewrite rules can ask for the client without an allocation.
	clientAddrOf func(*http.Request) netip.Addr
	rps          []*httputil.ReverseProxy // by pool index
	// keepUnderscores forwards header fields with "_" in their name
	// (ListenerOptions.KeepUnderscoreHeaders).
	keepUnderscores bool
	health          health
	// forwarded sends HTTP backends RFC 7239 Forwarded too
	// (ListenerOptions.ForwardedHeader; client.go).
	forwarded bool

	// observe: requests go through serveObserved, for the access log
	// and the request metrics; false when both are off.
	observe   bool
	accessLog *accesslog.Writer // nil: no access log
	logFormat accesslog.Format
	metrics   *frontMetrics // nil: no request metrics
	reqID     RequestIDOptions

	// TLS: redirect_https and hsts (proxy/tls.go); nil when neither.
	tls *frontTLS
	// Header rules, error pages, limits and access control (rules.go).
	index        int            // in Handler.fronts
	noRoutePages *errpage.Pages // the listener's 404 page; nil: none
	// Compression (proxy/compress), by route index: the route's own or
	// the listener's. Nil when no route of this listener compresses.
	compress []*compress.Compressor
}

// maxRouteTimeout returns the longest `timeout` of the routes to the
// upstream name (upstream.Options.MaxRouteTimeout), 0 when none has one.
func maxRouteTimeout(routes []RouteOptions, name string) time.Duration {
	var d time.Duration
	for _, r := range routes {
		if r.Upstream == name && r.Rules != nil && r.Rules.Access != nil {
			d = max(d, r.Rules.Access.Timeout)
		}
	}
	return d
}

// NewHandler builds the pools for opts.Upstreams (subscribing their names to
// res) and the routing table.
func NewHandler(opts Options, res upstream.Resolver, log *zap.Logger) (*Handler, error) {
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{log: log, closed: make(chan struct{})}
	index := map[string]int{}
	logging := opts.AccessLog != nil && opts.AccessLogFormat != accesslog.FormatOff
	// One limit for every upstream of this handler: a reload's new handler
	// has its own, while the old one's pools drain and close theirs.
	maxIdle := opts.MaxIdleBackendConns
	if maxIdle == 0 {
		maxIdle = DefaultMaxIdleBackendConns
	}
	idleLimit := idlepool.NewLimit(maxIdle)
	for _, uo := range opts.Upstreams {
		uo.Metrics = opts.Metrics
		uo.IdleLimit = idleLimit
		uo.Timing = logging || opts.RequestMetrics != nil
		uo.AJP.RequestIDHeader = opts.RequestID.Header
		uo.AJP.RequestIDAttribute = opts.RequestID.AJPAttribute
		uo.MaxRouteTimeout = maxRouteTimeout(opts.Routes, uo.Name)
		pres := res
		var watch *answerWatch
		if res != nil {
			watch = &answerWatch{Resolver: res}
			pres = watch
		}
		p, err := upstream.New(uo, pres, log.Named("upstream"))
		if err != nil {
			h.Close()
			return nil, fmt.Errorf("building upstream %q: %w", uo.Name, err)
		}
		index[uo.Name] = len(h.pools)
		h.pools = append(h.pools, p)
		var waits []answerWait
		if watch != nil {
			waits = watch.waits()
		}
		h.answers = append(h.answers, waits)
		h.hostHeaders = append(h.hostHeaders, uo.HostHeader)
	}
	for _, ro := range opts.Routes {
		if err := checkStatic(ro); err != nil { // static files (proxy/static)
			h.Close()
			return nil, err
		} else if ro.Static != nil {
			continue
		}
		if _, ok := index[ro.Upstream]; !ok && !(ro.Upstream == "" && ro.Rewrite != nil && ro.Rewrite.AnswersAll()) {
			h.Close()
			return nil, fmt.Errorf("route %s%s: unknown upstream %q", ro.Host, ro.PathPrefix, ro.Upstream)
		}
		for _, u := range ro.Upgrades {
			if strings.EqualFold(u, "h2c") {
				h.Close()
				return nil, fmt.Errorf("route %s%s: upgrades: h2c cannot be forwarded (its tunnel would carry later requests past routing and every rule)", ro.Host, ro.PathPrefix)
			}
		}
	}
	h.router = newRouter(opts.Routes, index)
	for _, lo := range opts.Listeners {
		f := &front{h: h, name: lo.Name, trusted: lo.TrustedProxies, keepUnderscores: lo.KeepUnderscoreHeaders,
			reqID: opts.RequestID, tls: newFrontTLS(lo), index: len(h.fronts)}
		f.forwarded = lo.ForwardedHeader // client.go
		f.clientAddrOf = f.clientAddr    // for the rewrite rules' client conditions, made once
		var err error
		if f.health, err = newHealth(lo, h, index, opts.DrainState); err != nil {
			h.Close()
			return nil, err
		}
		if logging {
			f.accessLog, f.logFormat = opts.AccessLog, opts.AccessLogFormat
		}
		if opts.RequestMetrics != nil {
			f.metrics = opts.RequestMetrics.forFront(lo.Name, opts.Routes, h.pools)
		}
		f.observe = f.accessLog != nil || f.metrics != nil
		if f.compress, err = compressors(lo, opts.Routes); err != nil { // compression (proxy/compress)
			h.Close()
			return nil, err
		}
		for _, p := range h.pools {
			f.rps = append(f.rps, f.newReverseProxy(p))
		}
		h.fronts = append(h.fronts, f)
	}
	if err := h.compileRules(opts); err != nil { // header rules, error pages, limits, access
		h.Close()
		return nil, err
	}
	return h, nil
}

// Pool returns the pool of the named upstream, or nil.
func (h *Handler) Pool(name string) *upstream.Pool {
	for _, p := range h.pools {
		if p.Name() == name {
			return p
		}
	}
	return nil
}

// Pools returns the handler's upstream pools, in config order. For the
// address metrics and status pages.
func (h *Handler) Pools() []*upstream.Pool { return slices.Clone(h.pools) }

// Close stops every pool: health checks and the maintain pass end, idle
// upstream connections close, and the pools take no more requests (a
// request that would pick an address afterwards, for a first try or a
// retry, gets 502). Responses already being read finish. Close is
// idempotent.
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		for _, p := range h.pools {
			p.Close()
		}
		close(h.closed)
	})
}

func (h *Handler) IsClosed() bool {
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

// release drops one reference; the last one closes the handler.
func (h *Handler) release() {
	if h.refs.Add(-1) == 0 {
		// Not on this goroutine: it may be a request's, whose response
		// is not finished until the handler returns.
		go h.Close()
	}
}

// waitAnswers waits until every pool has applied a DNS answer with
// addresses for each of its named targets, or until ctx is done. A pool built moments
// ago has no address for a named target until then: the resolver delivers
// answers on its own goroutines, even when the name is already in its
// cache, and a new name needs a query. It returns "upstream: host" for each
// target still without an answer.
func (h *Handler) waitAnswers(ctx context.Context) (missing []string) {
	for i, waits := range h.answers {
		for _, w := range waits {
			select {
			case <-w.got:
			case <-ctx.Done():
				select {
				case <-w.got:
				default:
					missing = append(missing, h.pools[i].Name()+": "+w.host)
				}
			}
		}
	}
	return missing
}

// answerWatch is the resolver as one pool sees it: it notes when each
// subscription has had its first answer applied.
type answerWatch struct {
	upstream.Resolver

	mu   sync.Mutex // guards subs
	subs []answerWait
}

func (w *answerWatch) Subscribe(name string, fn func(resolver.Answer)) (unsubscribe func()) {
	aw := answerWait{host: name, got: make(chan struct{})}
	w.mu.Lock()
	w.subs = append(w.subs, aw)
	w.mu.Unlock()
	first := sync.OnceFunc(func() { close(aw.got) })
	return w.Resolver.Subscribe(name, func(a resolver.Answer) {
		fn(a) // the pool publishes the addresses before it returns
		if len(a.Addrs) > 0 {
			// A first lookup that failed arrives as an answer without
			// addresses: the target is still one Reload warns about.
			first()
		}
	})
}

func (w *answerWatch) waits() []answerWait {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.subs
}

// ServeHTTP serves r as the first listener would. Listeners use their own
// front (see Server); this is for embedding and tests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.fronts[0].ServeHTTP(w, r)
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.observe {
		f.serveObserved(w, r)
		return
	}
	f.serve(w, r, nil)
}

// serve routes and forwards r; x is the observed exchange (w itself), or
// nil.
func (f *front) serve(w http.ResponseWriter, r *http.Request, x *exchange) {
	r, rt := f.route(w, r)
	if rt == nil {
		return
	}
	if x != nil {
		x.rt = rt
	}
	if rt.rules != nil { // header rules, error pages, limits, access (rules.go)
		if r = f.applyRules(w, r, rt, x); r == nil {
			return
		}
	}
	// Static files and compression (proxy/static, proxy/compress).
	if f.compress != nil {
		if cw := f.compress[rt.index].Wrap(w, r); cw != nil {
			defer cw.Finish()
			w = cw
		}
	}
	if rt.static != nil {
		rt.static.ServeHTTP(w, r)
		return
	}
	if f.h.pools[rt.pool].Scheme() == "ajp" && r.ContentLength != 0 {
		// Tomcat may ask for more of the request body after it has sent
		// the response headers; net/http's HTTP/1 server would stop the
		// body at the first response write.
		http.NewResponseController(w).EnableFullDuplex() //nolint:errcheck // HTTP/2 is full duplex already
	}
	f.forward(w, r, rt, f.h.pools[rt.pool], f.rps[rt.pool], x)
}

// route applies the rules that come before a request is forwarded and
// finds its route. It returns the request to forward (r itself, or a copy
// with the cleaned path or the Host given by the route) and the route, or
// a nil route when it has answered the request itself.
//
//   - The path is cleaned (cleanPath) before it is routed, and the backend
//     gets exactly the path that was routed; a path climbing above "/" is
//     a 400.
//   - A request without Host (HTTP/1.0) can only match a route for any
//     host; it gets its upstream's host_header
//     as Host and X-Forwarded-Host, or 400 when there is none, instead of
//     the backend's own address.
func (f *front) route(w http.ResponseWriter, r *http.Request) (*http.Request, *route) {
	u, err := cleanPath(r.URL)
	if err != nil {
		http.Error(w, "400 Bad Request: "+err.Error(), http.StatusBadRequest)
		return r, nil
	}
	if f.health.matches(u.Path) {
		f.health.serve(w, r)
		return r, nil
	}
	if f.tls != nil && f.tls.answer(w, r) { // TLS: redirect_https, hsts
		return r, nil
	}
	rt := f.h.router.match(r.Host, u.Path)
	if rt == nil {
		f.noRoute(w, r)
		return r, nil
	}
	host := r.Host
	if host == "" && rt.static == nil {
		if host = f.h.hostHeaders[rt.pool]; host == "" {
			http.Error(w, "400 Bad Request: Host header required", http.StatusBadRequest)
			return r, nil
		}
	}
	// Rewrite rules (proxy/rules/rewrite): redirects, rewrites, remapping.
	if rt.rewrite != nil && rt.rewrite.OnRequest() {
		return f.rewrite(w, r, u, host, rt)
	}
	if u != r.URL || host != r.Host {
		r2 := new(http.Request)
		*r2 = *r
		r2.URL, r2.Host = u, host
		r = r2
	}
	return r, rt
}

var bufPool = &bufferPool{p: sync.Pool{New: func() any { return new([copyBufSize]byte) }}}

const copyBufSize = 32 << 10

// bufferPool lends the 32 KiB copy buffers of every reverse proxy, so that a
// streamed body costs no allocation per request. It pools array pointers:
// converting the slice back to one on Put allocates nothing (pooling
// *[]byte would allocate a slice header per Put).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufSize]byte)[:] }
func (b *bufferPool) Put(v []byte) {
	if cap(v) >= copyBufSize {
		b.p.Put((*[copyBufSize]byte)(v[:copyBufSize]))
	}
}

func (f *front) newReverseProxy(p *upstream.Pool) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Transport:  p,
		BufferPool: bufPool,
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The pool sets scheme and host to the address it picks.
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = p.Name()
			// Byte for byte, as httpd and nginx pass it: ReverseProxy
			// has dropped a query with ";" or a malformed escape (its
			// guard against parameter cloaking, which the backend's
			// own parser decides).
			pr.Out.URL.RawQuery = pr.In.URL.RawQuery
			// ReverseProxy keeps the one upgrade forward let through.
			delete(pr.Out.Header, "Http2-Settings")
			if !f.keepUnderscores {
				for k := range pr.Out.Header {
					if strings.IndexByte(k, '_') >= 0 {
						delete(pr.Out.Header, k)
					}
				}
			}
			f.setForwarded(pr.In, pr.Out)
			pr.Out.RemoteAddr = f.clientRemote(pr.In) // client.go
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			f.upstreamError(w, r, p, nil, err)
		},
		ErrorLog: zap.NewStdLog(f.h.log.Named("reverseproxy")),

		// Rewrite rules (proxy/rules/rewrite): ProxyPassReverse on upgrades.
		ModifyResponse: f.reverseUpgrade,
	}
}

// setForwarded writes X-Forwarded-For, -Proto and -Host. ReverseProxy has
// already removed them from the outbound request; they are carried over from
// the inbound one only when the peer is a trusted proxy (the ELB), so that a
// client cannot forge its address.
func (f *front) setForwarded(in, out *http.Request) {
	f.setForwardedIn(in, out, new([3]string))
}

// setForwardedIn is setForwarded with the values' backing array given, so
// that forward can hand it the one in its per-request state and save an
// allocation per proxied request.
func (f *front) setForwardedIn(in, out *http.Request, vals *[3]string) {
	peer, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		peer = in.RemoteAddr
	}
	trusted := f.trusts(peer)
	xff := peer
	if prior := in.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + peer
	}
	// The three values share one backing array; each slice is capped at
	// its one element, so an append to one cannot overwrite the next.
	vals[0] = xff
	out.Header["X-Forwarded-For"] = vals[0:1:1]
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if v := in.Header["X-Forwarded-Proto"]; trusted && len(v) > 0 {
		proto = v[0]
	}
	vals[1] = proto
	out.Header["X-Forwarded-Proto"] = vals[1:2:2]
	host := in.Host
	if v := in.Header["X-Forwarded-Host"]; trusted && len(v) > 0 {
		host = v[0]
	}
	vals[2] = host
	out.Header["X-Forwarded-Host"] = vals[2:3:3]
	if f.forwarded {
		out.Header["Forwarded"] = []string{forwardedValue(xff, proto, host)}
	}
}

func (f *front) trusts(peer string) bool {
	if len(f.trusted) == 0 {
		return false
	}
	ip, err := netip.ParseAddr(peer)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range f.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// upstreamError answers a request whose upstream could not give a response:
// 504 when the backend did not answer in time, 502 otherwise (no address, a
// connect failure, a broken connection). The body is short and generic (or
// the route's error page); the details go to the log, never to the
// client. rt is nil on the upgrade path.
func (f *front) upstreamError(w http.ResponseWriter, r *http.Request, p *upstream.Pool, rt *route, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; there is nobody to answer.
		w.WriteHeader(499)
		return
	}
	if errors.Is(err, upstream.ErrRequestBody) {
		f.requestBodyError(w, r, p, err)
		return
	}
	status := http.StatusBadGateway
	var dialErr *upstream.DialError
	var netErr net.Error
	var ajpErr *ajp.Error
	switch {
	case errors.Is(err, ajp.ErrUpgrade):
		status = http.StatusNotImplemented
	case errors.As(err, &ajpErr) && ajpErr.Kind == ajp.KindHeadersTooLarge:
		status = http.StatusRequestHeaderFieldsTooLarge
	case errors.As(err, &ajpErr) && ajpErr.Kind == ajp.KindTimeout:
		status = http.StatusGatewayTimeout
	case errors.As(err, &dialErr):
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		status = http.StatusGatewayTimeout
	}
	f.h.log.Warn("upstream request failed",
		zap.String("listener", f.name),
		zap.String("upstream", p.Name()),
		zap.String("method", r.Method),
		zap.String("host", r.Host),
		zap.String("path", r.URL.Path),
		zap.String("client", r.RemoteAddr), // the outbound request's: the client (client.go)
		zap.Int("status", status),
		zap.String("request_id", f.requestIDOf(r)),
		zap.Error(err))
	if rt != nil && rt.rules != nil && f.errorPage(w, r, rt, status) { // error_pages (rules.go)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	switch status {
	case http.StatusGatewayTimeout:
		fmt.Fprintln(w, "504 Gateway Timeout: the backend did not answer in time")
	case http.StatusNotImplemented:
		fmt.Fprintln(w, "501 Not Implemented: WebSocket and other upgrades cannot be proxied to this backend")
	case http.StatusRequestHeaderFieldsTooLarge:
		fmt.Fprintln(w, "431 Request Header Fields Too Large")
	default:
		fmt.Fprintln(w, "502 Bad Gateway: no backend could be reached")
	}
}

// hold takes a reference: Live takes one while h is its current handler,
// and one per request it serves with h; release drops it.
func (h *Handler) hold() { h.refs.Add(1) }

// Front returns the handler as listener i of Options.Listeners serves it
// (with that listener's trusted proxies).
func (h *Handler) Front(i int) http.Handler { return h.fronts[i] }

// Rejected logs and counts, for listener i, a request the front server
// answered itself (a head over its limits, a body timeout): the access
// log and request metrics see it as they see a proxied one.
func (h *Handler) Rejected(i int, r *http.Request, status, bytes int) {
	h.fronts[i].rejected(r, status, bytes)
}

// Done is closed when the handler has been closed.
func (h *Handler) Done() <-chan struct{} { return h.closed }

// ReverseProxyFront is Front(i) with net/http's httputil.ReverseProxy in
// place of forward, routed the same way (path and Host rules too): the
// reference the frontend's differential test compares forward with.
func (h *Handler) ReverseProxyFront(i int) http.Handler {
	f := h.fronts[i]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, rt := f.route(w, r)
		if rt == nil {
			return
		}
		if rt.static != nil {
			rt.static.ServeHTTP(w, r)
			return
		}
		f.rps[rt.pool].ServeHTTP(w, r)
	})
}
