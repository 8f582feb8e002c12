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
				s.handler.Load().fronts[idx].ServeHTTP(w, r)
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
