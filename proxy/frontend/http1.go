package frontend

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

	"github.com/webtier/webtier/proxy"
)

// fastServer serves one plain-HTTP listener with its own HTTP/1.x
// connection handling instead of net/http's server. Measured on the
// benchmark (README, Performance), net/http's server costs most of
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
//     included), runs the same Handler
//     (httputil.ReverseProxy and the upstream pools), writes the response
//     with one write where it fits, and parks the connection again;
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

// Connection states: the poller hands over only an idle connection, and
// only an idle one is closed from outside (timeouts, Shutdown); an active
// one is its worker's.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// fastConn is one client connection. While idle it is this struct and its
// socket, registered with the idle poller; each parked connection pays
// for every byte here, so the small fields sit together (112 bytes, Go's
// 112-byte size class).
type fastConn struct {
	s        *fastServer
	c        net.Conn
	fd       int
	rc       syscall.RawConn
	remote   string
	polled   bool        // registered with the idle poller (by the worker that parks it)
	pending  atomic.Bool // the poller saw it readable while a worker had it
	state    atomic.Int32
	gen      uint32       // set before registration, then fixed
	deadline atomic.Int64 // UnixNano after which an idle connection is closed

	// In the idle wheel: the second of its bucket (0: not filed), and
	// its neighbours there (under the wheel's lock).
	due          atomic.Int64
	wprev, wnext *fastConn
}

type outcome uint8

const (
	keepOpen outcome = iota
	closeConn
	handedOff // the connection now belongs to the net/http server
	notYet    // a new connection without its first request yet
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
	fd, err := connFD(rc)
	if err != nil {
		return nil, err
	}
	fc := &fastConn{s: s, c: c, fd: fd, rc: rc, remote: c.RemoteAddr().String()}
	return fc, nil
}

// connContext is the context of a connection's requests: net/http's
// server and local-address values (the AJP client sends the local address
// and port to Tomcat from http.LocalAddrContextKey), never done, like
// Background. It is the connection itself, converted: no allocation and
// no bytes of its own on a parked connection (two context.WithValue
// layers would be two allocations per connection, a context stored in
// the connection 56 bytes).
type connContext fastConn

func (fc *fastConn) context() context.Context { return (*connContext)(fc) }

func (*connContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*connContext) Done() <-chan struct{}       { return nil }
func (*connContext) Err() error                  { return nil }

func (c *connContext) Value(key any) any {
	switch key {
	case http.ServerContextKey:
		return c.s.srv
	case http.LocalAddrContextKey:
		return c.c.LocalAddr()
	}
	return nil
}

// close closes the connection unless it is closed already; it is the one
// place a connection ends (but for a hand-off).
func (fc *fastConn) close() {
	if fc.state.Swap(connClosed) != connClosed {
		fc.end(true)
	}
}

// closeIfIdle closes the connection if no request is running on it.
func (fc *fastConn) closeIfIdle() {
	if fc.state.CompareAndSwap(connIdle, connClosed) {
		fc.end(true)
	}
}

func (fc *fastConn) end(closeSocket bool) {
	fc.s.poller.remove(fc)
	fc.s.wheel.remove(fc)
	if closeSocket {
		fc.c.Close()
	} else if fc.polled {
		fc.s.poller.unregister(fc)
	}
	fc.s.mu.Lock()
	delete(fc.s.conns, fc)
	fc.s.mu.Unlock()
	fc.s.wg.Done()
}

// park makes an active connection idle and waits for its next request.
// With keepDeadline (nothing was read: a new connection whose first request
// has not come, or a stale edge) the deadline stays as it was. It reports
// true when the connection became readable meanwhile and is the caller's
// to serve again.
//
// The poller's registration is edge-triggered and stays for the life of the
// connection, so parking costs no system call. An edge that came while a
// worker had the connection is not lost: the poller sets pending, and park
// looks at it after making the connection idle (an edge after that finds it
// idle and dispatches it). An edge may be stale (its bytes were read
// already, by the worker that had the connection): so the first read of
// every turn on a connection does not wait, and one that finds nothing
// parks the connection again (notYet) instead of blocking a worker with
// no deadline.
func (fc *fastConn) park(keepDeadline bool) (resume bool) {
	if !keepDeadline {
		fc.deadline.Store(time.Now().Add(fc.s.idleTimeout).UnixNano())
	}
	if !fc.state.CompareAndSwap(connActive, connIdle) {
		fc.close()
		return false
	}
	if fc.s.closing.Load() {
		fc.closeIfIdle()
		return false
	}
	// Filed once, then only when the deadline comes before its bucket
	// (or the bucket came while a request ran): see idleWheel.
	if due := fc.due.Load(); due == 0 || fc.deadline.Load() <= (due-1)*int64(time.Second) {
		fc.s.wheel.file(fc)
	}
	if !fc.polled {
		// Idle before registered: data already there gives an edge at
		// once, which finds it idle.
		fc.polled = true
		fc.pending.Store(false)
		if err := fc.s.poller.add(fc); err != nil {
			fc.closeIfIdle()
		}
		return false
	}
	return fc.pending.Swap(false) && fc.state.CompareAndSwap(connIdle, connActive)
}

// dispatch runs a readable connection on an idle worker, or a new one. It
// is the poller's callback and must not block.
func (s *fastServer) dispatch(fc *fastConn) {
	select {
	case s.work <- fc:
	default:
		go s.worker(fc)
	}
}

// worker is a goroutine that serves connections one after another. It
// borrows its buffers per connection, so that workers waiting for work
// hold none.
type worker struct {
	br  *bufio.Reader
	bw  *bufio.Writer
	rw  fastWriter
	hr  headReader
	raw rawReader
	cw  rawWriter
	req http.Request // parseRequest's result, which WithContext copies
}

// headReader is the connection as the worker's bufio.Reader sees it. Its
// first read does not wait (see park). It puts the request-head timeout on
// the socket only when a head needs a second read: most heads arrive in
// one segment, and that saves two deadline updates (timer operations) per
// request. Likewise the body timeout is put on the socket only when a body
// needs a read of its own: a body that came with its head costs nothing.
type headReader struct {
	c       net.Conn
	rc      syscall.RawConn
	raw     *rawReader
	timeout time.Duration
	first   bool // no read yet this turn
	head    bool // reading a request head
	armed   bool // the head deadline is set

	lim          *bodyLimits
	body         bool      // reading a request body
	bodyArmed    bool      // a body deadline is set on the socket
	bodyDeadline time.Time // when the body must have come, as far as it has
}

// bodyLimits are mod_reqtimeout's body=TIMEOUT,MinRate=RATE: the body's
// first bytes must come within timeout, and each byte received then
// pushes the deadline back by 1/rate seconds.
type bodyLimits struct {
	timeout time.Duration
	rate    int64 // bytes per second
}

func newBodyLimits(lo proxy.ListenerOptions) bodyLimits {
	return bodyLimits{
		timeout: orDefault(lo.BodyTimeout, proxy.DefaultBodyTimeout),
		rate:    int64(orDefaultInt(lo.BodyMinRate, proxy.DefaultBodyMinRate)),
	}
}

// extend returns the deadline d pushed back for n bytes received.
func (l *bodyLimits) extend(d time.Time, n int) time.Time {
	return d.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
}

func (r *headReader) Read(p []byte) (int, error) {
	if r.first {
		r.first = false
		return r.raw.read(r.rc, p)
	}
	if r.body {
		return r.readBody(p)
	}
	if r.head && !r.armed {
		if err := r.c.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
			return 0, err
		}
		r.armed = true
	}
	return r.c.Read(p)
}

// readBody reads body bytes from the socket within the body deadline. The
// deadline on the socket is set once, at the body's first read; the
// extensions the bytes earn are put on the socket only when it expires
// (then the read is tried again), so that a steady body costs no timer
// operation per read.
func (r *headReader) readBody(p []byte) (int, error) {
	if !r.bodyArmed {
		r.bodyDeadline = time.Now().Add(r.lim.timeout)
		if err := r.c.SetReadDeadline(r.bodyDeadline); err != nil {
			return 0, err
		}
		r.bodyArmed = true
	}
	for {
		n, err := r.c.Read(p)
		if n > 0 {
			r.bodyDeadline = r.lim.extend(r.bodyDeadline, n)
		}
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(r.bodyDeadline) {
			if err := r.c.SetReadDeadline(r.bodyDeadline); err != nil {
				return 0, err
			}
			continue
		}
		return n, err
	}
}

// endHead marks the head read. It reports false if the socket failed.
func (r *headReader) endHead() bool {
	r.head = false
	if !r.armed {
		return true
	}
	r.armed = false
	return r.c.SetReadDeadline(time.Time{}) == nil
}

// startBody makes the following reads a request body's.
func (r *headReader) startBody() { r.body = true }

// endBody ends the body's reads and its deadline. It reports false if the
// socket failed.
func (r *headReader) endBody() bool {
	r.body = false
	if !r.bodyArmed {
		return true
	}
	r.bodyArmed = false
	return r.c.SetReadDeadline(time.Time{}) == nil
}

var (
	// Two bytes over fastHeadSize: a request line of the default
	// max_request_line (8 KiB) with its CRLF fits, and one longer shows
	// it is over the limit without a hand-off to net/http.
	fastReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, fastHeadSize+2) }}
	fastWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, fastWriteSize) }}
)

func (s *fastServer) worker(fc *fastConn) {
	w := &worker{}
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
	serve:
		switch fc.handle(w) {
		case keepOpen:
			if fc.park(false) {
				goto serve
			}
		case notYet:
			if fc.park(true) {
				goto serve
			}
		case closeConn:
			fc.close()
		case handedOff:
			if fc.state.Swap(connClosed) != connClosed {
				fc.end(false) // net/http closes the socket
			}
		}
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
		case <-s.stop:
			return
		}
	}
}

// handle serves the requests the client has sent (several when it
// pipelines) and reports what to do with the connection.
func (fc *fastConn) handle(wk *worker) (out outcome) {
	wk.hr = headReader{c: fc.c, rc: fc.rc, raw: &wk.raw, timeout: fc.s.headTimeout, first: true, lim: &fc.s.body}
	wk.cw.reset(fc.c, fc.rc, fc.s.writeTimeout)
	br := fastReaders.Get().(*bufio.Reader)
	br.Reset(&wk.hr)
	bw := fastWriters.Get().(*bufio.Writer)
	bw.Reset(&wk.cw)
	wk.br, wk.bw = br, bw
	defer func() {
		br.Reset(nil)
		fastReaders.Put(br)
		bw.Reset(nil)
		fastWriters.Put(bw)
		wk.br, wk.bw = nil, nil
		wk.hr = headReader{} // no reference to the connection while the worker waits
		if !wk.cw.disarm() {
			out = closeConn
		}
		wk.req = http.Request{}
	}()
	for {
		wk.hr.head = true
		head, err := readHead(br, &fc.s.lim)
		switch {
		case errors.Is(err, errNotReady) && br.Buffered() == 0:
			return notYet
		case errors.Is(err, errNotFast):
			if !wk.cw.disarm() {
				return closeConn
			}
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
		if status, msg := head.check(); status != 0 {
			fc.reject(bw, status, msg)
			if status != http.StatusBadRequest {
				// Over a limit: the client is likely still sending.
				fc.lingerClose()
			}
			return closeConn
		}
		req := &wk.req
		if !parseRequest(br, head.size, req) {
			req, err = http.ReadRequest(br)
		}
		if err != nil {
			// The parser's words quote the client's bytes: log them, do
			// not echo them (net/http's server answers as tersely).
			fc.s.log.Debug("malformed request", zap.String("remote", fc.remote), zap.Error(err))
			fc.reject(bw, http.StatusBadRequest, "malformed request")
			return closeConn
		}
		if !wk.hr.endHead() {
			return closeConn
		}
		req = req.WithContext(fc.context())
		req.RemoteAddr = fc.remote
		if !fc.serveRequest(wk, req, head.closeAfter) {
			return closeConn
		}
		if br.Buffered() == 0 {
			return keepOpen
		}
	}
}

// serveRequest runs the handler for req and finishes the response. It
// reports whether the connection can carry another request.
func (fc *fastConn) serveRequest(wk *worker, req *http.Request, closeAfter bool) (keep bool) {
	bw := wk.bw
	w := &wk.rw
	w.reset(bw, req, &fc.s.closing)
	w.log = fc.s.log
	w.closeAfter = w.closeAfter || closeAfter || fc.s.draining.Load()
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
		// One per request, never reused: a transport's body writer may
		// outlive the handler (a backend that answered early), and must
		// then find this body closed, not the next request's.
		body = &fastBody{r: req.Body}
		req.Body = body
		w.body = body
		wk.hr.startBody()
	}
	fc.s.handler.ServeHTTP(w, req)
	if !w.finish() {
		return false
	}
	if body != nil && (!body.drain() || !wk.hr.endBody()) {
		return false
	}
	return !w.closeAfter
}

// fastBody is a request body as the handler sees it. Closing it does not
// read the rest (net/http's parser would read all of it, however large);
// after the handler, drain reads what is left up to net/http's limit so
// that the next request can be parsed, and beyond it the connection closes.
type fastBody struct {
	mu      sync.Mutex // a transport may still read while the proxy closes
	r       io.ReadCloser
	eof     bool
	closed  bool
	expired atomic.Bool // the body timeout ran out (the response says 408)
}

func (b *fastBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.expired.Store(true)
		err = errBodyTimeout
	}
	return n, err
}

// errBodyTimeout is the error of a request body read when the client sent
// it too slowly (body_timeout, body_min_rate).
var errBodyTimeout = errors.New("proxy: request body timeout: the client sent it too slowly")

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
	body := fmt.Sprintf("%d %s: %s\n", status, http.StatusText(status), sanitizeLine(msg))
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), body)
	bw.Flush()
	if fc.s.rejected != nil {
		fc.s.rejected(fc.remote, status, len(body))
	}
}

// lingerClose ends a connection whose client may still be sending: the
// write side is shut (the answer is out), and what the client sends
// meanwhile is read and thrown away for a short while, so that closing
// does not reset the connection before the client has read the answer
// (net/http's server does the same). The caller closes.
func (fc *fastConn) lingerClose() {
	tc, ok := fc.c.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		return
	}
	if fc.c.SetReadDeadline(time.Now().Add(lingerTime)) != nil {
		return
	}
	io.CopyN(io.Discard, fc.c, lingerMax) //nolint:errcheck // best effort
}

// lingerTime and lingerMax bound lingerClose: it holds a worker at most
// this long, for at most this many bytes.
const (
	lingerTime = 500 * time.Millisecond
	lingerMax  = 4 << 20
)

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
	withKeepAlive(fc.c)
	buffered, _ := br.Peek(br.Buffered())
	rc := &replayConn{Conn: fc.c, pending: append([]byte(nil), buffered...)}
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
