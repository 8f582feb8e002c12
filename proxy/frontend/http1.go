package frontend

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// fastServer serves one plain-HTTP listener with its own HTTP/1.x
// connection handling instead of net/http's server. Measured on the
// benchmark (e2e/bench/README.md), net/http's server costs most of
// webtier's CPU per proxied request and keeps 8 KiB of buffers plus a
// grown goroutine stack on every idle keep-alive connection. Here:
//
//   - an idle connection is parked in an epoll set (idlePoller): no
//     goroutine, no buffer;
//   - a readable connection is handed to a worker goroutine, which owns
//     the buffers, parses the request (a bodiless one of the common kind
//     with parseRequest, which reads it exactly as net/http does, anything
//     else with net/http's own parser http.ReadRequest: the same header
//     and framing checks as net/http's server, request-smuggling rules
//     included), runs the same Handler (proxy's forward rules and the
//     upstream pools), writes the response
//     with one write where it fits, and parks the connection again;
//   - what this path does not implement is handed, with the bytes already
//     read, to a net/http server with the same handler: protocol upgrades
//     (WebSocket) and CONNECT, Expect, request heads over fastHeadSize,
//     bare-LF line endings, obs-folded headers, and anything not HTTP/1.0
//     or HTTP/1.1. That connection stays with net/http until it closes.
//
// The server is here; a connection's states, park and worker are in
// http1conn.go, the request head and body readers in http1body.go, the
// hand-off in http1handoff.go, the response writer in http1writer.go, the
// idle poller in idlepoll_*.go and the idle timeouts in idlewheel.go.
type fastServer struct {
	ln          net.Listener
	handler     http.Handler
	srv         *http.Server // serves handed-off connections
	hand        *handoffListener
	poller      *idlePoller
	wheel       *idleWheel // idle connections by deadline
	log         *zap.Logger
	headTimeout time.Duration
	idleTimeout time.Duration
	lim         headLimits
	body        bodyLimits
	// writeTimeout ends a response write that makes no progress this
	// long (rawWriter).
	writeTimeout time.Duration
	// rejected, when set, is told of each request the server answers
	// itself without parsing it (400, 408, 414, 431): the access log's
	// and the metrics' record of it.
	rejected func(remote string, status, bytes int)

	work    chan *fastConn // idle workers wait here
	closing atomic.Bool
	stop    chan struct{} // closed by Shutdown and Close

	// draining makes every response end its connection (fastdrain.go).
	draining  atomic.Bool
	drainMu   sync.Mutex
	drainStop chan struct{} // ends the spread close of idle connections

	mu    sync.Mutex
	conns map[*fastConn]struct{}
	wg    sync.WaitGroup // open connections
}

// fastHeadSize is the largest request head (request line and headers) the
// fast path parses; larger heads (big cookies) go to net/http, which
// accepts up to http.DefaultMaxHeaderBytes.
const fastHeadSize = 8 << 10

// fastWriteSize is the write buffer: a response head and an 8 KiB body go
// out in one write.
const fastWriteSize = 16 << 10

// workerIdle is how long a worker goroutine waits for a connection before
// it exits; workers (and their buffers and grown stacks) follow the load.
const workerIdle = 10 * time.Second

// newFastServer serves ln with handler; srv serves the connections it
// hands off. lo gives the limits and timeouts (zero: the defaults).
func newFastServer(ln net.Listener, srv *http.Server, handler http.Handler, lo proxy.ListenerOptions, log *zap.Logger) (*fastServer, error) {
	s := &fastServer{
		ln:           ln,
		handler:      handler,
		srv:          srv,
		hand:         newHandoffListener(ln.Addr()),
		log:          log,
		headTimeout:  orDefault(srv.ReadHeaderTimeout, proxy.DefaultReadHeaderTimeout),
		idleTimeout:  orDefault(srv.IdleTimeout, proxy.DefaultClientIdleTimeout),
		lim:          newHeadLimits(lo),
		body:         newBodyLimits(lo),
		writeTimeout: orDefault(lo.WriteTimeout, proxy.DefaultWriteTimeout),
		work:         make(chan *fastConn),
		stop:         make(chan struct{}),
		conns:        map[*fastConn]struct{}{},
	}
	p, err := newIdlePoller(s.dispatch)
	if err != nil {
		return nil, err
	}
	s.poller = p
	s.wheel = newIdleWheel(time.Now(), s.expireIdle)
	return s, nil
}

// Serve accepts connections until the listener is closed. It returns
// http.ErrServerClosed after Shutdown.
func (s *fastServer) Serve() error {
	go s.srv.Serve(s.hand) //nolint:errcheck // ends with ErrServerClosed at Shutdown
	go s.poller.run()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors: wait for some to close, as
				// net/http does, instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", zap.Error(err), zap.Duration("retry_in", backoff))
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		fc, err := s.newConn(c)
		if err != nil {
			s.log.Warn("cannot serve connection", zap.Error(err))
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[fc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		// The first request is expected at once. Most clients send it
		// with (or right after) the handshake, so a worker tries to read
		// it now and parks the connection in the poller only if it has
		// not come yet: a connection per request then costs no epoll
		// registration and no poller wake-up.
		fc.deadline.Store(time.Now().Add(s.headTimeout).UnixNano())
		fc.state.Store(connActive)
		s.dispatch(fc)
	}
}

// expireIdle closes the idle connections past their deadline
// (idle_timeout, read_header_timeout): the idle wheel's timer runs it when
// a bucket of them comes due, so they close within a second of it.
func (s *fastServer) expireIdle() {
	for _, fc := range s.wheel.expire(time.Now()) {
		fc.closeIfIdle()
	}
}

// Shutdown stops accepting, closes idle connections at once, lets requests
// in flight finish (their responses say Connection: close), and waits for
// them until ctx is done. Handed-off connections are shut down by net/http.
func (s *fastServer) Shutdown(ctx context.Context) error {
	s.beginClose()
	s.mu.Lock()
	idle := make([]*fastConn, 0, len(s.conns))
	for fc := range s.conns {
		idle = append(idle, fc)
	}
	s.mu.Unlock()
	for _, fc := range idle {
		fc.closeIfIdle()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if serr := s.srv.Shutdown(ctx); err == nil {
		err = serr
	}
	s.poller.close()
	return err
}

func (s *fastServer) beginClose() {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.stop)
		s.wheel.stop()
	}
	s.ln.Close()
	s.mu.Unlock()
}

// Close closes the listener and every connection now.
func (s *fastServer) Close() error {
	s.beginClose()
	s.mu.Lock()
	all := make([]*fastConn, 0, len(s.conns))
	for fc := range s.conns {
		all = append(all, fc)
	}
	s.mu.Unlock()
	for _, fc := range all {
		fc.c.Close() // an active one ends its request with an error
		fc.closeIfIdle()
	}
	s.poller.close()
	return s.srv.Close()
}
