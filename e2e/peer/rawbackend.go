package peer

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RawBackend is a backend on raw TCP for attack tests: it records the exact
// bytes of every connection it accepts, so a test can assert what crossed
// webtier (a smuggled second request, a forged header, a tunnelled
// request) and not only what an HTTP library chose to parse. Each request
// it reads (with net/http's parser, over the recorded bytes) is answered by
// its handler; the default answers 200 with body "<request-URI>\n", so a
// client can tell which request an answer belongs to.
type RawBackend struct {
	ln      net.Listener
	handler RawHandler
	wg      sync.WaitGroup // the accept loop and one goroutine per connection
	open    atomic.Int64
	peak    atomic.Int64 // most connections open at once

	mu     sync.Mutex // guards conns and closed
	conns  []*RawConn
	closed bool
}

// RawHandler answers one request on c. The request's body has been read
// (its length is in RawRequest.BodyLen). It returns false to stop reading
// requests on c, which then closes.
type RawHandler func(c *RawConn, r RawRequest) (again bool)

// RawRequest is what the backend parsed of one request.
type RawRequest struct {
	Conn       int // index of the connection, in accept order
	Method     string
	RequestURI string
	Proto      string
	Host       string
	Header     http.Header
	BodyLen    int64
}

// RawConn is one connection the backend accepted.
type RawConn struct {
	net.Conn
	index int
	rd    *bufio.Reader // reads through rec

	mu  sync.Mutex // guards rec and reqs
	rec bytes.Buffer
	// reqs are the requests parsed on this connection, in order.
	reqs []RawRequest
}

// recorder is the io.Reader under a RawConn's bufio.Reader: every byte
// read from the socket is appended to the record before it is parsed.
type recorder struct{ c *RawConn }

func (r recorder) Read(p []byte) (int, error) {
	n, err := r.c.Conn.Read(p)
	if n > 0 {
		r.c.mu.Lock()
		r.c.rec.Write(p[:n])
		r.c.mu.Unlock()
	}
	return n, err
}

// StartRawBackend starts a RawBackend on 127.0.0.1 and a free port with
// handler h (nil: RawOK). It is closed in t.Cleanup.
func StartRawBackend(t testing.TB, h RawHandler) *RawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("StartRawBackend: %v", err)
	}
	if h == nil {
		h = RawOK
	}
	b := &RawBackend{ln: ln, handler: h}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.Close)
	return b
}

// RawOK is the default handler: 200, "X-Backend: raw", body the request
// URI and a newline.
func RawOK(c *RawConn, r RawRequest) bool {
	return WriteRawResponse(c, 200, r.RequestURI+"\n") == nil
}

// WriteRawResponse writes a complete HTTP/1.1 response with status code,
// Content-Length and body.
func WriteRawResponse(w io.Writer, code int, body string) error {
	_, err := fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nX-Backend: raw\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s",
		code, http.StatusText(code), len(body), body)
	return err
}

func (b *RawBackend) accept() {
	defer b.wg.Done()
	for {
		nc, err := b.ln.Accept()
		if err != nil {
			return // closed
		}
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			nc.Close()
			return
		}
		c := &RawConn{Conn: nc, index: len(b.conns)}
		c.rd = bufio.NewReader(recorder{c})
		b.conns = append(b.conns, c)
		if n := b.open.Add(1); n > b.peak.Load() {
			b.peak.Store(n) // only this goroutine raises open
		}
		b.wg.Add(1)
		b.mu.Unlock()
		go b.serve(c)
	}
}

func (b *RawBackend) serve(c *RawConn) {
	defer b.wg.Done()
	defer b.open.Add(-1)
	defer c.Close()
	for {
		req, err := http.ReadRequest(c.rd)
		if err != nil {
			// EOF, the peer closed, or bytes that are not a request:
			// they are in the record; close. Read what else arrives
			// until the peer closes, so that the record is complete.
			_, _ = io.Copy(io.Discard, c.rd)
			return
		}
		n, err := io.Copy(io.Discard, req.Body)
		r := RawRequest{
			Conn: c.index, Method: req.Method, RequestURI: req.RequestURI, Proto: req.Proto,
			Host: req.Host, Header: req.Header, BodyLen: n,
		}
		c.mu.Lock()
		c.reqs = append(c.reqs, r)
		c.mu.Unlock()
		if err != nil {
			return // the body did not arrive whole
		}
		if !b.handler(c, r) {
			return
		}
	}
}

// Reader returns the connection's reader, for a handler that takes the
// connection over (a tunnel after 101): what it reads is recorded too.
func (c *RawConn) Reader() *bufio.Reader { return c.rd }

// Index returns the connection's number, in accept order from 0.
func (c *RawConn) Index() int { return c.index }

// Bytes returns a copy of everything received on c so far.
func (c *RawConn) Bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.rec.Bytes())
}

// Requests returns the requests parsed on c so far.
func (c *RawConn) Requests() []RawRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]RawRequest(nil), c.reqs...)
}

// Conns returns every connection accepted so far, in accept order.
func (b *RawBackend) Conns() []*RawConn {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]*RawConn(nil), b.conns...)
}

// Requests returns every request parsed so far, connection by connection.
func (b *RawBackend) Requests() []RawRequest {
	var out []RawRequest
	for _, c := range b.Conns() {
		out = append(out, c.Requests()...)
	}
	return out
}

// Received returns everything received on every connection so far,
// connection by connection.
func (b *RawBackend) Received() []byte {
	var out []byte
	for _, c := range b.Conns() {
		out = append(out, c.Bytes()...)
	}
	return out
}

// Open returns how many accepted connections are still open.
func (b *RawBackend) Open() int { return int(b.open.Load()) }

// Peak returns the most connections that were open at once.
func (b *RawBackend) Peak() int { return int(b.peak.Load()) }

// WaitOpen waits until at most max connections are open, for up to
// timeout, and reports whether that happened.
func (b *RawBackend) WaitOpen(max int, timeout time.Duration) bool {
	return poll(timeout, func() bool { return b.Open() <= max })
}

// WaitReceived waits until the backend has received at least n bytes, for
// up to timeout, and reports whether it has.
func (b *RawBackend) WaitReceived(n int, timeout time.Duration) bool {
	return poll(timeout, func() bool { return len(b.Received()) >= n })
}

// Addr returns "127.0.0.1:port".
func (b *RawBackend) Addr() string { return b.ln.Addr().String() }

// URL returns "http://127.0.0.1:port".
func (b *RawBackend) URL() string { return "http://" + b.Addr() }

// Close closes the listener and every connection and waits for their
// goroutines. Safe to call more than once.
func (b *RawBackend) Close() {
	b.mu.Lock()
	already := b.closed
	b.closed = true
	conns := b.conns
	b.mu.Unlock()
	if !already {
		b.ln.Close()
		for _, c := range conns {
			c.Close()
		}
	}
	b.wg.Wait()
}
