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
)

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

func (*connContext) Done() <-chan struct{} { return nil }

func (*connContext) Err() error { return nil }

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
	w.raw = &wk.cw // file bodies with sendfile (http1sendfile.go)
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
	tc, ok := tcpConn(fc.c)
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
