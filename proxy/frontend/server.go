package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/caddyserver/certmagic"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/frontend/h2"
	"github.com/webtier/webtier/proxy/upstream"
)

// Server owns the listeners; the Handler they serve, and its swap on a
// reload without touching the listeners or dropping a connection, are
// proxy.Live's.
type Server struct {
	opts proxy.Options // as given to NewServer; Reload does not change it
	log  *zap.Logger
	live *proxy.Live

	reloadMu sync.Mutex // serializes Reload

	drain     *drainState
	drainOpts atomic.Pointer[proxy.DrainOptions] // the current config's
	stop      chan struct{}                      // closed by Stop
	stopOnce  sync.Once

	mu        sync.Mutex // guards listeners, servers, fast, rejected, certs and h2s
	listeners []net.Listener
	servers   []*http.Server
	fast      []http.Handler                  // per listener: the handler without netHTTPGuard
	rejected  []func(*http.Request, int, int) // per listener: logs a request the server answered itself
	certs     []*certSource                   // per listener; nil for a plain one
	h2s       []h2Drainer                     // per listener: its HTTP/2 server; nil for a plain one
	acmeCerts []*certSource                   // those with ACME, set by Listen
}

// NewServer builds the Handler for opts. It does not listen yet.
func NewServer(opts proxy.Options, res upstream.Resolver, log *zap.Logger) (*Server, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if len(opts.Listeners) == 0 {
		return nil, errors.New("proxy: no listeners configured")
	}
	opts.DrainState = &proxy.DrainState{}
	live, err := proxy.NewLive(opts, res, log)
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: log, live: live, drain: &drainState{flag: opts.DrainState}, stop: make(chan struct{})}
	s.drainOpts.Store(&opts.Drain)
	return s, nil
}

// Handler returns the current handler.
func (s *Server) Handler() *proxy.Handler { return s.live.Handler() }

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
func (s *Server) Reload(ctx context.Context, opts proxy.Options, res upstream.Resolver) (restartNeeded []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	running, restartNeeded := mergeListeners(s.opts.Listeners, opts.Listeners)
	opts.Listeners = running
	opts.DrainState = s.drain.flag
	// Certificates are read again first: a renewed one is served from
	// the next handshake, and one that does not load fails the reload
	// before anything changed.
	s.mu.Lock()
	sources := s.certs
	s.mu.Unlock()
	certs := make([][]tls.Certificate, len(sources))
	for i, cs := range sources {
		if cs == nil {
			continue
		}
		if certs[i], err = cs.read(); err != nil {
			return nil, fmt.Errorf("listener %q: %w", s.opts.Listeners[i].Name, err)
		}
	}
	missing, err := s.live.Replace(ctx, opts, res)
	if errors.Is(err, proxy.ErrClosed) {
		return nil, ErrServerClosed
	} else if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		s.log.Warn("reloaded upstream targets have no DNS answer yet; they take requests once it comes",
			zap.Strings("targets", missing))
	}
	s.drainOpts.Store(&opts.Drain)
	for i, c := range certs {
		if sources[i] != nil {
			sources[i].use(c)
		}
	}
	return restartNeeded, nil
}

// Listen opens every configured listener and loads the TLS listeners'
// certificates, so that a port already in use or a bad certificate is
// reported before anything is served.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	http01 := slices.ContainsFunc(s.opts.Listeners, func(lo proxy.ListenerOptions) bool {
		return lo.TLS != nil && lo.TLS.ACME != nil && lo.TLS.ACME.HTTP01
	})
	for i, lo := range s.opts.Listeners {
		ln, tlsConf, cs, err := listen(lo, s.log)
		if err != nil {
			for _, l := range s.listeners {
				l.Close()
			}
			s.stopCerts()
			s.listeners, s.certs, s.acmeCerts, s.fast, s.h2s, s.rejected = nil, nil, nil, nil, nil, nil
			return fmt.Errorf("listener %q: %w", lo.Name, err)
		}
		s.listeners = append(s.listeners, ln)
		s.certs = append(s.certs, cs)
		idx := i
		front := s.live.Front(i)
		std := lo.Engine.Std()
		var acme func(http.ResponseWriter, *http.Request) bool // TLS: ACME HTTP-01 on plain listeners
		if lo.TLS == nil && http01 {
			acme = s.httpChallenge
		}
		inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if acme != nil && acme(w, r) {
				return
			}
			if s.drain.draining() && (r.ProtoMajor == 1 || std) && r.Header.Get("Upgrade") == "" {
				// Draining: the client reconnects through the
				// balancer (the fast path says it on its own; an
				// upgrade's 101 keeps its Connection: Upgrade).
				// net/http's HTTP/2 server (engine std) sends a
				// GOAWAY for it instead: a connection opened
				// during the drain goes after its first response
				// (proxy/h2 after its first stream, on its own).
				w.Header().Set("Connection", "close")
			}
			front.ServeHTTP(w, r)
		})
		s.fast = append(s.fast, inner)
		s.rejected = append(s.rejected, func(r *http.Request, status, bytes int) {
			s.live.Rejected(idx, r, status, bytes)
		})
		lim := newHeadLimits(lo)
		srv := &http.Server{
			// net/http's server (TLS listeners, connections the fast
			// path hands off) gets the limits and timeouts it lacks
			// from the guard; the fast path has them built in.
			Handler: &netHTTPGuard{next: inner, lim: lim, body: newBodyLimits(lo),
				writeTimeout: orDefault(lo.WriteTimeout, proxy.DefaultWriteTimeout), rejected: s.rejected[idx], allProtos: lo.Engine.Std()},
			MaxHeaderBytes:    lim.headSize,
			ReadHeaderTimeout: orDefault(lo.ReadHeaderTimeout, proxy.DefaultReadHeaderTimeout),
			IdleTimeout:       orDefault(lo.IdleTimeout, proxy.DefaultClientIdleTimeout),
			ErrorLog:          zap.NewStdLog(s.log.Named("http")),
			TLSConfig:         tlsConf, // with "h2" in NextProtos: Serve enables HTTP/2
		}
		var h2d h2Drainer
		if lo.Engine.Std() {
			configureStd(srv, orDefault(lo.WriteTimeout, proxy.DefaultWriteTimeout))
			if tlsConf != nil {
				h2d = newStdH2Drain(srv)
			}
		} else if tlsConf != nil {
			// HTTP/2 by webtier's own server (frontend/h2): one write per
			// response where net/http's takes two or more. The listener's
			// head limits bound the decoded header list (max_header_size
			// as SETTINGS_MAX_HEADER_LIST_SIZE counts it), and
			// write_timeout the streams waiting for flow-control window.
			h2s := &h2.Server{
				IdleTimeout:       srv.IdleTimeout,
				ReadHeaderTimeout: srv.ReadHeaderTimeout,
				MaxHeaderBytes:    uint32(lim.headSize),
				MaxHeaderFields:   lim.fields,
				WriteTimeout:      orDefault(lo.WriteTimeout, proxy.DefaultWriteTimeout),
			}
			h2s.Configure(srv)
			h2d = h2s
		}
		s.servers = append(s.servers, srv)
		s.h2s = append(s.h2s, h2d)
		if cs != nil && cs.acme != nil {
			s.acmeCerts = append(s.acmeCerts, cs)
		}
	}
	return nil
}

// httpChallenge answers an ACME HTTP-01 validation request on a plain
// listener, for the certificates of any TLS listener, before routing.
func (s *Server) httpChallenge(w http.ResponseWriter, r *http.Request) bool {
	if !certmagic.LooksLikeHTTPChallenge(r) {
		return false
	}
	for _, cs := range s.acmeCerts {
		if cs.httpChallenge(w, r) {
			return true
		}
	}
	return false
}

// stopCerts stops the certificate sources' maintenance and ACME.
func (s *Server) stopCerts() {
	for _, cs := range s.certs {
		if cs != nil {
			cs.stop()
		}
	}
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

// Serve serves on the listeners opened by Listen until ctx is done or Stop
// is called, then shuts down gracefully: listeners close, idle keep-alive
// connections close, requests in flight finish (bounded by the drain
// timeout), and the upstream pools are closed.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	lns, srvs, fast, h2s, rejected, acmeCerts := s.listeners, s.servers, s.fast, s.h2s, s.rejected, s.acmeCerts
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
	// Plain-HTTP listeners use webtier's own HTTP/1 server (http1.go); TLS ones,
	// where HTTP/2 is negotiated, net/http's server with webtier's own
	// HTTP/2 server (frontend/h2). Engine std: net/http's servers for both
	// (stdserver.go).
	units := make([]serveUnit, len(lns))
	for i := range lns {
		units[i] = &netHTTPUnit{srv: srvs[i], ln: lns[i], h2: h2s[i]}
		if srvs[i].TLSConfig == nil && s.opts.Listeners[i].Engine.Std() {
			units[i] = &netHTTPUnit{srv: srvs[i], ln: stdListener{lns[i]}}
		} else if srvs[i].TLSConfig == nil {
			fs, err := newFastServer(lns[i], srvs[i], fast[i], s.opts.Listeners[i], s.log.Named("http"))
			if err == nil {
				rej := rejected[i]
				fs.rejected = func(remote string, status, bytes int) {
					rej(&http.Request{RemoteAddr: remote, Header: http.Header{}}, status, bytes)
				}
				units[i] = fs
			} else {
				s.log.Warn("serving plain HTTP with net/http's server", zap.Error(err))
				units[i] = &netHTTPUnit{srv: srvs[i], ln: keepAliveListener{lns[i]}}
			}
		}
		go func(u serveUnit) { errc <- u.Serve() }(units[i])
	}
	drainers := make([]drainer, len(units))
	for i, u := range units {
		drainers[i] = u
	}
	s.serveDrain(drainers)
	// ACME starts once every listener serves: the CA's validations reach
	// webtier's own listeners. It runs in the background.
	for _, cs := range acmeCerts {
		cs.manage()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case <-s.stop:
	case serveErr = <-errc:
	}
	s.serveDrain(nil)
	sctx, cancel := context.WithTimeout(context.Background(), orDefault(s.DrainOptions().Timeout, proxy.DefaultDrainTimeout))
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
	s.live.Close()
	s.mu.Lock()
	s.stopCerts()
	s.mu.Unlock()
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
	drainer
}

type netHTTPUnit struct {
	srv *http.Server
	ln  net.Listener
	h2  h2Drainer // nil on a plain listener

	mu  sync.Mutex
	gen int // drain generation: a half-time timer of an older one does nothing
}

// drain sends HTTP/2 connections away at once; HTTP/1 responses say
// Connection: close from the start (Listen's handler), and at half of
// spread keep-alive is turned off, which closes net/http's idle
// connections (all at once: net/http cannot close some of them).
func (u *netHTTPUnit) drain(on bool, spread time.Duration) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.gen++
	if u.h2 != nil {
		u.h2.Drain(on)
	}
	u.srv.SetKeepAlivesEnabled(true)
	if !on {
		return
	}
	gen := u.gen
	time.AfterFunc(spread/2, func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.gen == gen {
			u.srv.SetKeepAlivesEnabled(false)
		}
	})
}

// h2Drainer is a TLS listener's HTTP/2 server as a drain sees it:
// webtier's own (h2.Server) or net/http's (stdH2Drain).
type h2Drainer interface{ Drain(on bool) }

func (u *netHTTPUnit) Serve() error                       { return u.srv.Serve(u.ln) }
func (u *netHTTPUnit) Shutdown(ctx context.Context) error { return u.srv.Shutdown(ctx) }
func (u *netHTTPUnit) Close() error                       { return u.srv.Close() }

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
