package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// fastServer serves one plain-HTTP listener with its own HTTP/1.x
// connection handling instead of net/http's server. Measured on the
// benchmark (README, Performance), net/http's server costs most of
// webtier's CPU per proxied request and keeps 8 KiB of buffers plus a
// grown goroutine stack on every idle keep-alive connection. Here:
//
//   - an idle connection holds no buffer and only a small goroutine parked
//     on the poller, waiting for readability without reading;
//   - a readable connection is handed to a worker goroutine, which borrows
//     pooled buffers, parses the request with net/http's own parser
//     (http.ReadRequest: the same header and framing checks as net/http's
//     server, request-smuggling rules included), runs the same Handler
//     (httputil.ReverseProxy and the upstream pools), writes the response
//     with one write where it fits, and returns the buffers;
//   - what this path does not implement is handed, with the bytes already
//     read, to a net/http server with the same handler: protocol upgrades
//     (WebSocket) and CONNECT, Expect, request heads over fastHeadSize,
//     bare-LF line endings, obs-folded headers, and anything not HTTP/1.0
//     or HTTP/1.1. That connection stays with net/http until it closes.
type fastServer struct {
	ln          net.Listener
	handler     http.Handler
	srv         *http.Server // serves handed-off connections
	hand        *handoffListener
	log         *zap.Logger
	headTimeout time.Duration
	idleTimeout time.Duration

	work    chan *fastConn // idle workers wait here
	closing atomic.Bool

	mu    sync.Mutex
	conns map[*fastConn]struct{}
	wg    sync.WaitGroup // connection goroutines
}

// fastHeadSize is the largest request head (request line and headers) the
// fast path parses; larger heads (big cookies) go to net/http, which
// accepts up to http.DefaultMaxHeaderBytes.
const fastHeadSize = 8 << 10

// fastWriteSize is the write buffer: a response head and an 8 KiB body go
// out in one write.
const fastWriteSize = 16 << 10

// workerIdle is how long a worker goroutine waits for a connection before
// it exits; workers (and their grown stacks) follow the request load.
const workerIdle = 10 * time.Second

func newFastServer(ln net.Listener, srv *http.Server, log *zap.Logger) *fastServer {
	return &fastServer{
		ln:          ln,
		handler:     srv.Handler,
		srv:         srv,
		hand:        newHandoffListener(ln.Addr()),
		log:         log,
		headTimeout: orDefault(srv.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		idleTimeout: orDefault(srv.IdleTimeout, DefaultClientIdleTimeout),
		work:        make(chan *fastConn),
		conns:       map[*fastConn]struct{}{},
	}
}

// Serve accepts connections until the listener is closed. It returns
// http.ErrServerClosed after Shutdown.
func (s *fastServer) Serve() error {
	go s.srv.Serve(s.hand) //nolint:errcheck // ends with ErrServerClosed at Shutdown
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
		go fc.serve()
	}
}

// Shutdown stops accepting, closes idle connections at once, lets requests
// in flight finish (their responses say Connection: close), and waits for
// them until ctx is done. Handed-off connections are shut down by net/http.
func (s *fastServer) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing.Store(true)
	s.ln.Close()
	for fc := range s.conns {
		fc.closeIfIdle()
	}
	s.mu.Unlock()
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
	return err
}

// Close closes the listener and every connection now.
func (s *fastServer) Close() error {
	s.mu.Lock()
	s.closing.Store(true)
	s.ln.Close()
	for fc := range s.conns {
		fc.c.Close()
	}
	s.mu.Unlock()
	return s.srv.Close()
}

func (s *fastServer) forget(fc *fastConn) {
	s.mu.Lock()
	delete(s.conns, fc)
	s.mu.Unlock()
	s.wg.Done()
}

// Connection states, for Shutdown: only an idle connection is closed from
// outside; an active one closes itself when its request is done.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// fastConn is one client connection. While idle it is this struct, the
// net.Conn and a parked goroutine: no buffers.
type fastConn struct {
	s      *fastServer
	c      net.Conn
	rc     syscall.RawConn
	remote string
	ctx    context.Context // carries the local address, as net/http's does
	state  atomic.Int32
	done   chan outcome // the worker's verdict on a request batch
	peek   [1]byte
	waitFn func(fd uintptr) bool // fc.readable, bound once
	woke   bool                  // the poller reported readiness
	eof    bool                  // the client closed its side
	rw     fastWriter            // reused by every request on the connection
	body   fastBody              // likewise
}

type outcome uint8

const (
	keepOpen outcome = iota
	closeConn
	handedOff // the connection now belongs to the net/http server
)

func (s *fastServer) newConn(c net.Conn) (*fastConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("proxy: %T has no raw connection", c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	fc := &fastConn{s: s, c: c, rc: rc, remote: c.RemoteAddr().String(), done: make(chan outcome, 1)}
	// The AJP client sends the local address and port to Tomcat
	// (getLocalAddr, getServerPort) from http.LocalAddrContextKey.
	fc.ctx = context.WithValue(context.WithValue(context.Background(),
		http.ServerContextKey, s.srv), http.LocalAddrContextKey, c.LocalAddr())
	fc.waitFn = fc.readable
	return fc, nil
}

// serve is the connection's goroutine. It only waits: requests run on
// workers, so this goroutine's stack stays small however deep a request
// goes.
func (fc *fastConn) serve() {
	defer fc.s.forget(fc)
	timeout := fc.s.headTimeout // the first request is expected at once
	for {
		if !fc.waitReadable(timeout) || !fc.state.CompareAndSwap(connIdle, connActive) {
			fc.close()
			return
		}
		switch fc.s.dispatch(fc) {
		case handedOff:
			return // net/http closes it
		case closeConn:
			fc.close()
			return
		}
		if !fc.state.CompareAndSwap(connActive, connIdle) || fc.s.closing.Load() {
			fc.close()
			return
		}
		timeout = fc.s.idleTimeout
	}
}

func (fc *fastConn) close() {
	fc.state.Store(connClosed)
	fc.c.Close()
}

// closeIfIdle closes the connection if no request is running on it; the
// parked goroutine wakes up with an error and exits.
func (fc *fastConn) closeIfIdle() {
	if fc.state.CompareAndSwap(connIdle, connClosed) {
		fc.c.Close()
	}
}

// waitReadable parks until the client sends something, closes, or the
// timeout passes, without a read buffer. It reports whether a request may
// follow.
func (fc *fastConn) waitReadable(timeout time.Duration) bool {
	if err := fc.c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return false
	}
	fc.woke, fc.eof = false, false
	if err := fc.rc.Read(fc.waitFn); err != nil {
		return false
	}
	return !fc.eof
}

// readable is called by the poller: first to check for bytes already
// there (a peek, since a request may have arrived before we parked), then
// after each readiness event. After an event it does not peek again: the
// request is read right away, and a spurious wake-up only means that read
// waits on the poller.
func (fc *fastConn) readable(fd uintptr) bool {
	if fc.woke {
		return true
	}
	fc.woke = true
	n, _, err := syscall.Recvfrom(int(fd), fc.peek[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return false
	case err == nil && n == 0:
		fc.eof = true
	}
	return true
}

// dispatch runs fc's next requests on an idle worker, or a new one, and
// waits for the outcome.
func (s *fastServer) dispatch(fc *fastConn) outcome {
	select {
	case s.work <- fc:
	default:
		go s.worker(fc)
	}
	return <-fc.done
}

func (s *fastServer) worker(fc *fastConn) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		fc.done <- fc.handle()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(workerIdle)
		select {
		case fc = <-s.work:
		case <-t.C:
			return
		}
	}
}

var (
	fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastHeadSize) }}
	fastWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, fastWriteSize) }}
)

// handle serves the requests the client has sent (several when it
// pipelines) and reports what to do with the connection.
func (fc *fastConn) handle() (out outcome) {
	br := fastReaders.Get().(*bufio.Reader)
	br.Reset(fc.c)
	bw := fastWriters.Get().(*bufio.Writer)
	bw.Reset(fc.c)
	defer func() {
		br.Reset(nil)
		fastReaders.Put(br)
		bw.Reset(nil)
		fastWriters.Put(bw)
	}()
	for {
		if err := fc.c.SetReadDeadline(time.Now().Add(fc.s.headTimeout)); err != nil {
			return closeConn
		}
		head, err := readHead(br)
		switch {
		case errors.Is(err, errNotFast):
			if fc.s.handoff(fc, br) {
				return handedOff
			}
			return closeConn
		case err != nil:
			if errors.Is(err, os.ErrDeadlineExceeded) && br.Buffered() > 0 {
				fc.reject(bw, http.StatusRequestTimeout, "request head not received in time")
			}
			return closeConn
		}
		if msg := head.check(); msg != "" {
			fc.reject(bw, http.StatusBadRequest, msg)
			return closeConn
		}
		req, err := http.ReadRequest(br)
		if err != nil {
			fc.reject(bw, http.StatusBadRequest, err.Error())
			return closeConn
		}
		if err := fc.c.SetReadDeadline(time.Time{}); err != nil {
			return closeConn
		}
		req = req.WithContext(fc.ctx)
		req.RemoteAddr = fc.remote
		if !fc.serveRequest(req, bw) {
			return closeConn
		}
		if br.Buffered() == 0 {
			return keepOpen
		}
	}
}

// serveRequest runs the handler for req and finishes the response. It
// reports whether the connection can carry another request.
func (fc *fastConn) serveRequest(req *http.Request, bw *bufio.Writer) (keep bool) {
	w := &fc.rw
	w.reset(bw, req, &fc.s.closing)
	defer func() {
		if v := recover(); v != nil {
			// Send what the handler got out, as net/http does: the
			// client sees the response break off, then the close.
			keep = false
			bw.Flush()
			if v != http.ErrAbortHandler {
				fc.s.log.Error("panic serving request", zap.String("remote", fc.remote),
					zap.String("method", req.Method), zap.String("uri", req.RequestURI),
					zap.Any("panic", v), zap.ByteString("stack", debug.Stack()))
			}
		}
	}()
	var body *fastBody
	if req.Body != nil && req.Body != http.NoBody {
		body = &fc.body
		body.reset(req.Body)
		req.Body = body
	}
	fc.s.handler.ServeHTTP(w, req)
	if !w.finish() {
		return false
	}
	if body != nil && !body.drain() {
		return false
	}
	return !w.closeAfter
}

// fastBody is a request body as the handler sees it. Closing it does not
// read the rest (net/http's parser would read all of it, however large);
// after the handler, drain reads what is left up to net/http's limit so
// that the next request can be parsed, and beyond it the connection closes.
type fastBody struct {
	mu     sync.Mutex // a transport may still read while the proxy closes
	r      io.ReadCloser
	eof    bool
	closed bool
}

func (b *fastBody) reset(r io.ReadCloser) {
	b.mu.Lock()
	b.r, b.eof, b.closed = r, false, false
	b.mu.Unlock()
}

func (b *fastBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

func (b *fastBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads the unread rest of the body, up to maxPostHandlerDrain, and
// reports whether the connection can carry another request.
func (b *fastBody) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	n, err := io.CopyN(io.Discard, b.r, maxPostHandlerDrain+1)
	return n <= maxPostHandlerDrain && (err == nil || err == io.EOF)
}

// maxPostHandlerDrain is how much of an unread request body is read and
// thrown away to keep the connection (net/http's maxPostHandlerReadBytes).
const maxPostHandlerDrain = 256 << 10

// reject answers a request the proxy cannot parse and closes the
// connection, as net/http's server does.
func (fc *fastConn) reject(bw *bufio.Writer, status int, msg string) {
	fc.s.log.Debug("bad request", zap.String("remote", fc.remote), zap.Int("status", status), zap.String("error", msg))
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n%d %s: %s\n",
		status, http.StatusText(status), status, http.StatusText(status), sanitizeLine(msg))
	bw.Flush()
}

// sanitizeLine keeps a message on one line of printable ASCII.
func sanitizeLine(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// handoff gives fc, with the bytes already buffered, to the net/http
// server. It reports false if that server is shut down.
func (s *fastServer) handoff(fc *fastConn, br *bufio.Reader) bool {
	if err := fc.c.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	buffered, _ := br.Peek(br.Buffered())
	rc := &replayConn{Conn: fc.c, pending: append([]byte(nil), buffered...)}
	// No longer ours to close when idle; serve forgets it when it returns.
	fc.state.Store(connClosed)
	return s.hand.give(rc)
}

// replayConn is a connection whose first bytes were already read.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handoffListener feeds handed-off connections to net/http's Serve.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
