// Package admin is webtier's admin listener: a separate HTTP server, on
// loopback by default, for what operators and their tools ask of a
// running webtier (today /metrics for Prometheus). It is never on a
// client-facing listener, and off a loopback address it answers only
// requests with the configured bearer token.
package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// DefaultAddress is the admin listener's address when the config has an
// admin section without one: loopback only, and not 9090, which is
// Prometheus's own port (often on the same host).
const DefaultAddress = "127.0.0.1:9180"

// Options configure the admin listener.
type Options struct {
	// Address is host:port. Default DefaultAddress. An address that is
	// not loopback (including ":9180", every interface) requires Token.
	Address string
	// Token, when set, is required as "Authorization: Bearer TOKEN" on
	// every request, whatever the address. Never logged.
	Token string
}

// String hides the token, so that printing options never leaks it.
func (o Options) String() string {
	token := "<empty>"
	if o.Token != "" {
		token = "<set>"
	}
	return fmt.Sprintf("{Address:%s Token:%s}", o.Address, token)
}

// GoString hides the token from %#v as well.
func (o Options) GoString() string { return "admin.Options" + o.String() }

// IsLoopback reports whether the host of addr (host:port) can only be
// reached from this machine: a loopback IP or "localhost".
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Server is the admin listener.
type Server struct {
	mux    *http.ServeMux
	public *http.ServeMux // what is served without the token: the page's static parts
	srv    *http.Server
	ln     net.Listener
	addr   string
	token  [sha256.Size]byte
	auth   bool
	log    *zap.Logger
}

// New builds the admin server; gatherer's metrics are served at
// /metrics. More handlers are added with Handle before Serve.
func New(o Options, gatherer prometheus.Gatherer, log *zap.Logger) (*Server, error) {
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Token == "" && !IsLoopback(o.Address) {
		return nil, fmt.Errorf("admin: address %s is not loopback; set a token", o.Address)
	}
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{mux: http.NewServeMux(), public: http.NewServeMux(), addr: o.Address, log: log}
	if o.Token != "" {
		s.auth, s.token = true, sha256.Sum256([]byte(o.Token))
	}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:          zap.NewStdLog(log),
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	}))
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       75 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log),
	}
	return s, nil
}

// Handle adds a handler for pattern (http.ServeMux syntax), behind the
// same token check. For the status page and actions.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Public adds a handler served without the token: the status page's HTML,
// script and style, which hold no data (the script asks for the token and
// sends it with every API call). For the status page.
func (s *Server) Public(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.public.Handle(pattern, h)
}

// ServeHTTP checks the token and serves the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.auth && !s.authorized(r) {
		if h, pattern := s.public.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="webtier admin"`)
		http.Error(w, "401 Unauthorized: send the admin token as Authorization: Bearer TOKEN", http.StatusUnauthorized)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized compares the request's bearer token with the configured one
// in constant time: both are hashed first, so that neither the content nor
// the length of the token leaks through timing.
func (s *Server) authorized(r *http.Request) bool {
	v := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], s.token[:]) == 1
}

// Listen opens the listener, so that a port in use is reported at start.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin listener: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr returns the bound address (useful with port 0).
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close closes a listener Listen opened that Serve will not serve (the
// proxy's own listeners failed to open).
func (s *Server) Close() error {
	if s.ln == nil {
		return nil
	}
	return s.ln.Close()
}

// Serve serves until ctx is done, then shuts down (scrapes in progress
// get a few seconds).
func (s *Server) Serve(ctx context.Context) error {
	if s.ln == nil {
		return errors.New("admin: Serve called before Listen")
	}
	s.log.Info("admin listener serving", zap.Stringer("address", s.ln.Addr()), zap.Bool("token", s.auth))
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.srv.Close()
	}
	<-errc
	return nil
}
