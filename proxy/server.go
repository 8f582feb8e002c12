package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/h2"
	"github.com/webtier/webtier/proxy/upstream"
)

// Server owns the listeners and the current Handler. The Handler sits
// behind an atomic pointer so that a reload can swap it without touching the
// listeners or dropping a connection.
type Server struct {
	opts    Options // as given to NewServer; Reload does not change it
	log     *zap.Logger
	handler atomic.Pointer[Handler]

	reloadMu sync.Mutex // serializes Reload

	mu        sync.Mutex // guards listeners, servers, closed, retiring, and handler's swaps (not its loads)
	listeners []net.Listener
	servers   []*http.Server
	fast      []http.Handler        // per listener: the handler without netHTTPGuard
	certs     []*certSource         // per listener; nil for a plain one
	closed    bool                  // Serve has ended; Reload refuses
	retiring  map[*Handler]struct{} // swapped out, still serving requests
}

// NewServer builds the Handler for opts. It does not listen yet.
func NewServer(opts Options, res upstream.Resolver, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if len(opts.Listeners) == 0 {
		return nil, errors.New("proxy: no listeners configured")
	}
	h, err := NewHandler(opts, res, log)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: log, retiring: map[*Handler]struct{}{}}
	h.refs.Add(1) // the Server's reference, dropped when it is swapped out
	s.handler.Store(h)
	return s, nil
}

// Handler returns the current handler.
func (s *Server) Handler() *Handler { return s.handler.Load() }

// acquire returns the current handler with a reference taken for one
// request; the caller releases it when the request is done. The reference
// is taken before the pointer is checked again, so a Reload that swapped
// the handler meanwhile is retried here, and one that swaps it later drops
// the Server's reference only after this one was counted: the old handler
// is never closed under a request.
func (s *Server) acquire() *Handler {
	for {
		h := s.handler.Load()
		h.refs.Add(1)
		if s.handler.Load() == h {
			return h
		}
		h.release()
	}
}

// ErrServerClosed is returned by Reload once Serve has returned.
var ErrServerClosed = errors.New("proxy: server closed")

// Reload builds a Handler for opts and swaps it in: requests that start
// afterwards, on new and on kept-alive connections alike, use the new
// routes, upstreams and trusted proxies, with the same resolver cache.
// Requests already started finish on the old Handler, which is closed when
// the last of them ends, however long that takes (a WebSocket may hold it
// for hours), so that no request fails because of a reload.
//
// Before the swap Reload waits, until ctx is done, for the new upstreams'
// named targets to get their first DNS answer: until then a new pool has no
// address and would answer 502. Targets still unanswered are logged, and
// the new Handler is swapped in anyway, as it would be served at start.
//
// Listeners are not reopened or closed: the listeners opened at start keep
// serving, with the new routes. A listener of opts with the name of a
// running one gives it its trusted proxies; everything else about
// listeners (a changed address, TLS file names or timeouts, a listener
// added, removed or renamed) waits for a restart, and Reload returns one
// line per such listener, as "NAME: what changed". The running TLS
// listeners' certificate and key files are read again (a renewed
// certificate is served from the next handshake); if one does not load,
// Reload fails and nothing changes.
func (s *Server) Reload(ctx context.Context, opts Options, res upstream.Resolver) (restartNeeded []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	running, restartNeeded := mergeListeners(s.opts.Listeners, opts.Listeners)
	opts.Listeners = running
	// Certificates are read again first: a renewed one is served from
	// the next handshake, and one that does not load fails the reload
	// before anything changed.
	s.mu.Lock()
	sources := s.certs
	s.mu.Unlock()
	certs := make([]*tls.Certificate, len(sources))
	for i, cs := range sources {
		if cs == nil {
			continue
		}
		if certs[i], err = cs.read(); err != nil {
			return nil, fmt.Errorf("listener %q: %w", s.opts.Listeners[i].Name, err)
		}
	}
	h, err := NewHandler(opts, res, s.log)
	if err != nil {
		return nil, err
	}
	if missing := h.waitAnswers(ctx); len(missing) > 0 {
		s.log.Warn("reloaded upstream targets have no DNS answer yet; they take requests once it comes",
			zap.Strings("targets", missing))
	}
	h.refs.Add(1)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		h.Close()
		return nil, ErrServerClosed
	}
	prev := s.handler.Swap(h)
	for i, cert := range certs {
		if cert != nil {
			sources[i].cert.Store(cert)
		}
	}
	for r := range s.retiring {
		if r.isClosed() {
			delete(s.retiring, r)
		}
	}
	s.retiring[prev] = struct{}{}
	s.mu.Unlock()
	// The Server's reference; prev's last request closes it, or this
	// does if none is running.
	prev.release()
	return restartNeeded, nil
}

// mergeListeners returns the listener options a reloaded Handler serves
// with: the running listeners, in their order, each with the trusted
// proxies and keep_underscore_headers of the next listener of the same
// name if there is one; and the
// changes to listeners that wait for a restart.
func mergeListeners(running, next []ListenerOptions) (merged []ListenerOptions, restartNeeded []string) {
	byName := make(map[string]ListenerOptions, len(next))
	for _, lo := range next {
		byName[lo.Name] = lo
	}
	seen := make(map[string]bool, len(running))
	for _, lo := range running {
		seen[lo.Name] = true
		nl, ok := byName[lo.Name]
		if !ok {
			restartNeeded = append(restartNeeded, lo.Name+": removed or renamed (still serving)")
			merged = append(merged, lo)
			continue
		}
		var what []string
		if nl.Address != lo.Address {
			what = append(what, "address")
		}
		if nl.Engine.Std() != lo.Engine.Std() {
			what = append(what, "engine")
		}
		if !sameTLS(nl.TLS, lo.TLS) {
			what = append(what, "tls")
		}
		if nl.ReadHeaderTimeout != lo.ReadHeaderTimeout || nl.IdleTimeout != lo.IdleTimeout ||
			nl.BodyTimeout != lo.BodyTimeout || nl.BodyMinRate != lo.BodyMinRate || nl.WriteTimeout != lo.WriteTimeout {
			what = append(what, "timeouts")
		}
		if nl.MaxRequestLine != lo.MaxRequestLine || nl.MaxHeaderFieldSize != lo.MaxHeaderFieldSize ||
			nl.MaxHeaderFields != lo.MaxHeaderFields || nl.MaxHeaderSize != lo.MaxHeaderSize {
			what = append(what, "limits")
		}
		if len(what) > 0 {
			restartNeeded = append(restartNeeded, lo.Name+": "+strings.Join(what, ", ")+" changed")
		}
		lo.TrustedProxies = nl.TrustedProxies
		lo.KeepUnderscoreHeaders = nl.KeepUnderscoreHeaders
		merged = append(merged, lo)
	}
	for _, nl := range next {
		if !seen[nl.Name] {
			restartNeeded = append(restartNeeded, nl.Name+": added (not listening)")
		}
	}
	return merged, restartNeeded
}

func sameTLS(a, b *TLSOptions) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Listen opens every configured listener and loads the TLS listeners'
// certificates, so that a port already in use or a bad certificate is
// reported before anything is served.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, lo := range s.opts.Listeners {
		ln, tlsConf, cs, err := listen(lo)
		if err != nil {
			for _, l := range s.listeners {
				l.Close()
			}
			s.listeners, s.certs, s.fast = nil, nil, nil
			return fmt.Errorf("listener %q: %w", lo.Name, err)
		}
		s.listeners = append(s.listeners, ln)
		s.certs = append(s.certs, cs)
		idx := i
		inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := s.acquire()
			defer h.release()
			h.fronts[idx].ServeHTTP(w, r)
		})
		s.fast = append(s.fast, inner)
		lim := newHeadLimits(lo)
		srv := &http.Server{
			// net/http's server (TLS listeners, connections the fast
			// path hands off) gets the limits and timeouts it lacks
			// from the guard; the fast path has them built in.
			Handler: &netHTTPGuard{next: inner, lim: lim, body: newBodyLimits(lo),
				writeTimeout: orDefault(lo.WriteTimeout, DefaultWriteTimeout), allProtos: lo.Engine.Std()},
			MaxHeaderBytes:    lim.headSize,
			ReadHeaderTimeout: orDefault(lo.ReadHeaderTimeout, DefaultReadHeaderTimeout),
			IdleTimeout:       orDefault(lo.IdleTimeout, DefaultClientIdleTimeout),
			ErrorLog:          zap.NewStdLog(s.log.Named("http")),
			TLSConfig:         tlsConf, // with "h2" in NextProtos: Serve enables HTTP/2
		}
		if lo.Engine.Std() {
			configureStd(srv, orDefault(lo.WriteTimeout, DefaultWriteTimeout))
		} else if tlsConf != nil {
			// HTTP/2 by webtier's own server (proxy/h2): one write per
			// response where net/http's takes two or more. The listener's
			// head limits bound the decoded header list (max_header_size
			// as SETTINGS_MAX_HEADER_LIST_SIZE counts it), and
			// write_timeout the streams waiting for flow-control window.
			(&h2.Server{
				IdleTimeout:       srv.IdleTimeout,
				ReadHeaderTimeout: srv.ReadHeaderTimeout,
				MaxHeaderBytes:    uint32(lim.headSize),
				MaxHeaderFields:   lim.fields,
				WriteTimeout:      orDefault(lo.WriteTimeout, DefaultWriteTimeout),
			}).Configure(srv)
		}
		s.servers = append(s.servers, srv)
	}
	return nil
}

// Addrs returns the bound listener addresses (useful with port 0).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.Addr()
	}
	return out
}

// Serve serves on the listeners opened by Listen until ctx is done, then
// shuts down gracefully: listeners close, idle keep-alive connections close,
// requests in flight finish (bounded by DefaultShutdownTimeout), and the
// upstream pools are closed.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	lns, srvs, fast := s.listeners, s.servers, s.fast
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("proxy: Serve called before Listen")
	}
	errc := make(chan error, len(lns))
	for i := range lns {
		s.log.Info("listening", zap.String("listener", s.opts.Listeners[i].Name),
			zap.Stringer("address", lns[i].Addr()), zap.Bool("tls", srvs[i].TLSConfig != nil),
			zap.String("engine", engineName(s.opts.Listeners[i].Engine)))
	}
	// Plain-HTTP listeners use the fast HTTP/1 path (fast.go); TLS ones,
	// where HTTP/2 is negotiated, net/http's server. Engine std: net/http's
	// server for both (stdserver.go).
	units := make([]serveUnit, len(lns))
	for i := range lns {
		units[i] = &netHTTPUnit{srv: srvs[i], ln: lns[i]}
		if srvs[i].TLSConfig == nil && s.opts.Listeners[i].Engine.Std() {
			units[i] = &netHTTPUnit{srv: srvs[i], ln: stdListener{lns[i]}}
		} else if srvs[i].TLSConfig == nil {
			fs, err := newFastServer(lns[i], srvs[i], fast[i], s.opts.Listeners[i], s.log.Named("http"))
			if err == nil {
				units[i] = fs
			} else {
				s.log.Warn("serving plain HTTP with net/http's server", zap.Error(err))
				units[i] = &netHTTPUnit{srv: srvs[i], ln: keepAliveListener{lns[i]}}
			}
		}
		go func(u serveUnit) { errc <- u.Serve() }(units[i])
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, u := range units {
		wg.Add(1)
		go func(u serveUnit) {
			defer wg.Done()
			if err := u.Shutdown(sctx); err != nil {
				s.log.Warn("shutdown did not finish in time; closing connections", zap.Error(err))
				u.Close()
			}
		}(u)
	}
	wg.Wait()
	// Requests still running now were cut off by the shutdown timeout, or
	// are on upgraded connections, which Shutdown does not wait for: the
	// pools close under them, as they did before reloads existed.
	s.mu.Lock()
	s.closed = true
	hs := []*Handler{s.handler.Load()}
	for h := range s.retiring {
		hs = append(hs, h)
	}
	s.mu.Unlock()
	for _, h := range hs {
		h.Close()
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// serveUnit is one listener being served: by the fast HTTP/1 path or by
// net/http's server.
type serveUnit interface {
	Serve() error
	Shutdown(context.Context) error
	Close() error
}

type netHTTPUnit struct {
	srv *http.Server
	ln  net.Listener
}

func (u *netHTTPUnit) Serve() error                       { return u.srv.Serve(u.ln) }
func (u *netHTTPUnit) Shutdown(ctx context.Context) error { return u.srv.Shutdown(ctx) }
func (u *netHTTPUnit) Close() error                       { return u.srv.Close() }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
