package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	opts    Options
	log     *zap.Logger
	handler atomic.Pointer[Handler]

	mu        sync.Mutex // guards listeners and servers
	listeners []net.Listener
	servers   []*http.Server
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
	s := &Server{opts: opts, log: log}
	s.handler.Store(h)
	return s, nil
}

// Handler returns the current handler.
func (s *Server) Handler() *Handler { return s.handler.Load() }

// acquire returns the current handler with its in-flight count raised. The
// count is raised before the pointer is checked again, so a Reload that
// swapped the handler meanwhile is retried here, and a Reload that swaps it
// later sees the count: the old handler is never closed under a request.
func (s *Server) acquire() *Handler {
	for {
		h := s.handler.Load()
		h.inflight.Add(1)
		if s.handler.Load() == h {
			return h
		}
		h.inflight.Add(-1)
	}
}

// ErrListenersChanged is returned by Reload when the new options add,
// remove or rename listeners: sockets are opened only at start.
var ErrListenersChanged = errors.New("listeners added, removed or renamed; restart webtier to apply")

// Reload builds a Handler for opts and swaps it in: requests that start
// afterwards, on new and on kept-alive connections alike, use the new
// routes, upstreams and trusted proxies, with the same resolver cache.
// Requests already started finish on the old Handler, which is closed once
// they have (or after DefaultShutdownTimeout, as at shutdown).
//
// Listeners are not reopened. opts must name the same listeners in the same
// order, or Reload changes nothing and returns ErrListenersChanged. A
// listener whose address, TLS files or timeouts differ keeps its old ones
// until a restart; Reload returns those listeners' names.
func (s *Server) Reload(opts Options, res upstream.Resolver) (restartNeeded []string, err error) {
	s.mu.Lock()
	old := s.opts.Listeners
	s.mu.Unlock()
	if len(opts.Listeners) != len(old) {
		return nil, ErrListenersChanged
	}
	for i, lo := range opts.Listeners {
		if lo.Name != old[i].Name {
			return nil, ErrListenersChanged
		}
		if lo.Address != old[i].Address || lo.ReadHeaderTimeout != old[i].ReadHeaderTimeout ||
			lo.IdleTimeout != old[i].IdleTimeout || !sameTLS(lo.TLS, old[i].TLS) {
			restartNeeded = append(restartNeeded, lo.Name)
		}
	}
	h, err := NewHandler(opts, res, s.log)
	if err != nil {
		return nil, err
	}
	prev := s.handler.Swap(h)
	go s.retire(prev)
	return restartNeeded, nil
}

// retire closes a swapped-out handler once no request uses it. Requests
// are short, so it polls; an upgraded connection (WebSocket) may hold the
// handler for hours, so the wait is bounded like a shutdown's, after which
// closing only stops the old pools' health checks and idle connections.
func (s *Server) retire(h *Handler) {
	const poll = 20 * time.Millisecond
	deadline := time.Now().Add(DefaultShutdownTimeout)
	for h.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(poll)
	}
	if n := h.inflight.Load(); n > 0 {
		s.log.Warn("closing the previous configuration's upstreams with requests still in flight",
			zap.Int64("in_flight", n))
	}
	h.Close()
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
		ln, tlsConf, err := listen(lo)
		if err != nil {
			for _, l := range s.listeners {
				l.Close()
			}
			s.listeners = nil
			return fmt.Errorf("listener %q: %w", lo.Name, err)
		}
		s.listeners = append(s.listeners, ln)
		idx := i
		srv := &http.Server{
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h := s.acquire()
				defer h.inflight.Add(-1)
				h.fronts[idx].ServeHTTP(w, r)
			}),
			ReadHeaderTimeout: orDefault(lo.ReadHeaderTimeout, DefaultReadHeaderTimeout),
			IdleTimeout:       orDefault(lo.IdleTimeout, DefaultClientIdleTimeout),
			ErrorLog:          zap.NewStdLog(s.log.Named("http")),
			TLSConfig:         tlsConf, // with "h2" in NextProtos: Serve enables HTTP/2
		}
		if tlsConf != nil {
			// HTTP/2 by webtier's own server (proxy/h2): one write per
			// response where net/http's takes two or more.
			(&h2.Server{IdleTimeout: srv.IdleTimeout, ReadHeaderTimeout: srv.ReadHeaderTimeout}).Configure(srv)
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
	lns, srvs := s.listeners, s.servers
	s.mu.Unlock()
	if len(lns) == 0 {
		return errors.New("proxy: Serve called before Listen")
	}
	errc := make(chan error, len(lns))
	for i := range lns {
		s.log.Info("listening", zap.String("listener", s.opts.Listeners[i].Name),
			zap.Stringer("address", lns[i].Addr()), zap.Bool("tls", srvs[i].TLSConfig != nil))
	}
	// Plain-HTTP listeners use the fast HTTP/1 path (fast.go); TLS ones,
	// where HTTP/2 is negotiated, net/http's server.
	units := make([]serveUnit, len(lns))
	for i := range lns {
		units[i] = &netHTTPUnit{srv: srvs[i], ln: lns[i]}
		if srvs[i].TLSConfig == nil {
			fs, err := newFastServer(lns[i], srvs[i], s.log.Named("http"))
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
	s.handler.Load().Close()
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
