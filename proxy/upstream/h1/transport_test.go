package h1

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
)

// TestResponseFraming reads responses framed every way HTTP/1.1 allows
// and checks whether the connection is reused for a second request.
func TestResponseFraming(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		response  string // the backend's first response, byte for byte
		closeConn bool   // the backend closes the connection after it
		status    int
		body      string
		trailer   string // X-Sum
		length    int64  // resp.ContentLength
		reused    bool
		got1xx    []int // codes passed to Got1xxResponse
	}{
		{name: "content-length", response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
			status: 200, body: "hello", length: 5, reused: true},
		{name: "chunked-with-trailer",
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\nX-Sum: abc\r\n\r\n",
			status:   200, body: "hello", trailer: "abc", length: -1, reused: true},
		{name: "close-delimited", response: "HTTP/1.1 200 OK\r\n\r\nhello", closeConn: true,
			status: 200, body: "hello", length: -1},
		{name: "head", method: "HEAD", response: "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
			status: 200, length: 5, reused: true},
		{name: "no-content", response: "HTTP/1.1 204 No Content\r\n\r\n",
			status: 204, reused: true},
		{name: "not-modified", response: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 5\r\n\r\n",
			status: 304, length: 0, reused: true}, // as net/http reports it
		{name: "100-continue-skipped", response: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", length: 2, reused: true},
		{name: "103-early-hints", response: "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", length: 2, reused: true, got1xx: []int{103}},
		{name: "connection-close", response: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", length: 2},
		{name: "http-1.0", response: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", length: 2},
		{name: "http-1.0-keep-alive", response: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
			status: 200, body: "ok", length: 2, reused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			p := newPeer(t, func(c *peerConn) {
				for {
					if _, _, _, err := c.readRequest(); err != nil {
						return
					}
					resp := ok204
					if c.p.requests.Load() == 1 {
						resp = tt.response
					}
					if c.write(resp) != nil || resp == tt.response && tt.closeConn {
						return
					}
				}
			})
			tr := p.transport(Options{})
			var got1xx []int
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
					got1xx = append(got1xx, code)
					if h.Get("Link") != "</s.css>" {
						t.Errorf("1xx header %v; want Link", h)
					}
					return nil
				},
			})
			method := tt.method
			if method == "" {
				method = "GET"
			}
			req, _ := http.NewRequestWithContext(ctx, method, "http://b/", nil)
			resp, body := roundTrip(t, tr, req)
			if resp.StatusCode != tt.status || body != tt.body || resp.ContentLength != tt.length {
				t.Errorf("got %d %q length %d; want %d %q length %d",
					resp.StatusCode, body, resp.ContentLength, tt.status, tt.body, tt.length)
			}
			if g := resp.Trailer.Get("X-Sum"); g != tt.trailer {
				t.Errorf("trailer X-Sum = %q; want %q", g, tt.trailer)
			}
			if fmt.Sprint(got1xx) != fmt.Sprint(tt.got1xx) {
				t.Errorf("Got1xxResponse codes %v; want %v", got1xx, tt.got1xx)
			}
			get(t, tr, "/second")
			want := int32(2)
			if tt.reused {
				want = 1
			}
			if n := p.accepts.Load(); n != want {
				t.Errorf("%d connections for two requests; want %d", n, want)
			}
		})
	}
}

// TestSwitchingProtocols: a 101 response's body is the connection, read
// through the buffer that may already hold the new protocol's first bytes.
func TestSwitchingProtocols(t *testing.T) {
	p := newPeer(t, func(c *peerConn) {
		if _, _, _, err := c.readRequest(); err != nil {
			return
		}
		// One write: the greeting arrives with the head.
		c.write("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\ngreeting\n")
		line, err := c.br.ReadString('\n')
		if err != nil {
			return
		}
		c.write("echo: " + line)
	})
	tr := p.transport(Options{})
	req, _ := http.NewRequest("GET", "http://b/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "echo")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rwc, ok := resp.Body.(io.ReadWriteCloser)
	if resp.StatusCode != 101 || !ok {
		t.Fatalf("status %d, body %T; want 101 and an io.ReadWriteCloser", resp.StatusCode, resp.Body)
	}
	br := bufio.NewReader(rwc)
	if line, err := br.ReadString('\n'); line != "greeting\n" {
		t.Fatalf("first line %q, %v; want the greeting sent with the head", line, err)
	}
	if _, err := io.WriteString(rwc, "ping\n"); err != nil {
		t.Fatal(err)
	}
	if line, err := br.ReadString('\n'); line != "echo: ping\n" {
		t.Errorf("read %q, %v; want \"echo: ping\\n\"", line, err)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections; an upgraded connection is never pooled", n)
	}
}

// TestConnectionReuse: sequential requests share one connection, and
// GotConn says so.
func TestConnectionReuse(t *testing.T) {
	checkGoroutines(t)
	p := newPeer(t, serveAll("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	tr := p.transport(Options{})
	var infos []httptrace.GotConnInfo
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { infos = append(infos, i) },
	})
	const n = 20
	for i := range n {
		var req *http.Request
		if i%2 == 0 {
			req, _ = http.NewRequestWithContext(ctx, "GET", "http://b/"+strconv.Itoa(i), nil)
		} else {
			req, _ = http.NewRequestWithContext(ctx, "POST", "http://b/"+strconv.Itoa(i), strings.NewReader("body"))
		}
		if _, b := roundTrip(t, tr, req); b != "ok" {
			t.Fatalf("request %d: body %q", i, b)
		}
	}
	if a := p.accepts.Load(); a != 1 {
		t.Errorf("%d connections for %d sequential requests; want 1", a, n)
	}
	if len(infos) != n {
		t.Fatalf("GotConn called %d times; want %d", len(infos), n)
	}
	if infos[0].Reused || infos[0].WasIdle {
		t.Errorf("first GotConn %+v; want a new connection", infos[0])
	}
	for i, info := range infos[1:] {
		if !info.Reused || !info.WasIdle || info.Conn == nil {
			t.Errorf("GotConn %d: %+v; want a reused idle connection", i+1, info)
		}
	}
}

// TestNotReused: connections that may hold the rest of a response (or
// garbage) are closed, and the next request gets a new one.
func TestNotReused(t *testing.T) {
	tests := []struct {
		name     string
		response string
		hold     bool // after the response, keep the connection open and silent
		read     int  // bytes of the body read before Close (-1: all)
		wantErr  bool // reading the body fails
		reused   bool
	}{
		{name: "closed-early-remainder-on-the-wire",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n0123456789", hold: true, read: 5},
		{name: "closed-early-remainder-buffered",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", read: 5, reused: true},
		{name: "closed-early-chunked-buffered",
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", read: 3, reused: true},
		{name: "closed-before-reading-buffered",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789", read: 0, reused: true},
		{name: "malformed-chunk",
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\nzz\r\n", read: -1, wantErr: true},
		{name: "truncated-content-length",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n0123456789", read: -1, wantErr: true},
		{name: "extra-bytes-after-response",
			response: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", read: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			release := make(chan struct{})
			p := newPeer(t, func(c *peerConn) {
				for {
					if _, _, _, err := c.readRequest(); err != nil {
						return
					}
					if c.p.requests.Load() > 1 {
						c.write(ok204)
						continue
					}
					c.write(tt.response)
					if tt.wantErr {
						return // a truncated response: the connection ends
					}
					if tt.hold {
						<-release
						return
					}
				}
			})
			defer close(release)
			tr := p.transport(Options{})
			resp, err := tr.RoundTrip(httpGet(t, "/first"))
			if err != nil {
				t.Fatal(err)
			}
			if tt.read < 0 {
				_, err = io.ReadAll(resp.Body)
				if (err != nil) != tt.wantErr {
					t.Errorf("reading the body: %v; want error %v", err, tt.wantErr)
				}
			} else {
				buf := make([]byte, tt.read)
				if _, err := io.ReadFull(resp.Body, buf); err != nil {
					t.Fatal(err)
				}
				if tt.reused {
					// Wait until the rest of the response is in the read
					// buffer: Close keeps the connection only then.
					waitBuffered(t, resp, tt.response[len(tt.response)-5:])
				}
			}
			resp.Body.Close()
			if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
				t.Errorf("Read after Close succeeded")
			}
			get(t, tr, "/second")
			want := int32(2)
			if tt.reused {
				want = 1
			}
			if n := p.accepts.Load(); n != want {
				t.Errorf("%d connections for two requests; want %d", n, want)
			}
		})
	}
}

func httpGet(t *testing.T, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", "http://b"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// waitBuffered blocks until the response's read buffer ends with tail,
// the last bytes of the response.
func waitBuffered(t *testing.T, resp *http.Response, tail string) {
	t.Helper()
	br := resp.Body.(*body).ex.pc.br
	for {
		b, _ := br.Peek(br.Buffered())
		if strings.HasSuffix(string(b), tail) {
			return
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil { // blocks for more
			t.Fatalf("waiting for the rest of the response: %v", err)
		}
	}
}

// TestDeadPooledConnection: a pooled connection the backend closed is
// replaced by a new one and the request sent again, once, only when the
// backend cannot have acted on it or it is replayable; never after its
// body was read.
func TestDeadPooledConnection(t *testing.T) {
	tests := []struct {
		name string
		// drop: how the backend treats requests after the first: "close"
		// reads one and closes without answering, "close-idle" closes the
		// first connection right after the first response.
		drop       string
		dropAll    bool // also on new connections
		method     string
		body       string
		wantErr    bool
		wantConns  int32
		wantServed int32 // requests the backend read in full
	}{
		{name: "get-dropped-retried", drop: "close", method: "GET", wantConns: 2, wantServed: 3},
		{name: "get-closed-idle-retried", drop: "close-idle", method: "GET", wantConns: 2, wantServed: 2},
		{name: "get-retried-once-only", drop: "close", dropAll: true, method: "GET", wantErr: true, wantConns: 2, wantServed: 3},
		{name: "post-body-read-not-retried", drop: "close", method: "POST", body: "payload", wantErr: true, wantConns: 1, wantServed: 2},
		{name: "post-without-body-not-retried", drop: "close", method: "POST", wantErr: true, wantConns: 1, wantServed: 2},
		{name: "post-closed-idle-found-by-peek", drop: "close-idle", method: "POST", body: "payload", wantConns: 2, wantServed: 2},
		{name: "delete-closed-idle-found-by-peek", drop: "close-idle", method: "DELETE", wantConns: 2, wantServed: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			closedIdle := make(chan struct{})
			p := newPeer(t, func(c *peerConn) {
				for {
					_, body, _, err := c.readRequest()
					if err != nil {
						return
					}
					first := c.p.requests.Load() == 1
					if !first && tt.drop == "close" && (c.n == 1 || tt.dropAll) {
						return // read it, drop it unanswered
					}
					if string(body) != tt.body && !first {
						c.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
						continue
					}
					c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
					if first && tt.drop == "close-idle" {
						c.Close()
						close(closedIdle)
						return
					}
				}
			})
			tr := p.transport(Options{})
			get(t, tr, "/first")
			if tt.drop == "close-idle" {
				<-closedIdle
				// The FIN is on its way over loopback; wait until the
				// pooled connection can see it, as a real idle one would.
				pc, _, _, _ := tr.idle.Get()
				waitFor(t, "the backend's FIN", func() bool { return !pc.alive() })
				tr.idle.Put(pc)
			}
			b := newTrackedBody(strings.NewReader(tt.body))
			var body io.Reader
			if tt.body != "" {
				body = b
			}
			req, _ := http.NewRequest(tt.method, "http://b/second", body)
			resp, err := tr.RoundTrip(req)
			if err == nil {
				rb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || string(rb) != "ok" {
					t.Errorf("second request: %d %q; want 200 ok", resp.StatusCode, rb)
				}
			}
			if (err != nil) != tt.wantErr {
				t.Errorf("second request error: %v; want error %v", err, tt.wantErr)
			}
			if tt.wantErr && !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("error %v; want one wrapping io.EOF or ECONNRESET", err)
			}
			if n := p.accepts.Load(); n != tt.wantConns {
				t.Errorf("%d connections; want %d", n, tt.wantConns)
			}
			p.close() // wait for the backend to finish reading
			if n := p.requests.Load(); n != tt.wantServed {
				t.Errorf("backend read %d requests; want %d", n, tt.wantServed)
			}
			if tt.body != "" {
				<-b.closed
			}
		})
	}
}

// zeroBody is a request body of n zero bytes that reports Close.
func zeroBody(n int64) *trackedBody {
	return newTrackedBody(io.LimitReader(zeros{}, n))
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// TestEarlyResponse: a backend answers before reading a large request
// body (413). The response arrives while the body is still being written;
// the connection is not reused, and the body writer stops and closes the
// request body once the exchange is over.
func TestEarlyResponse(t *testing.T) {
	checkGoroutines(t)
	p := newPeer(t, func(c *peerConn) {
		if c.n > 1 {
			serveAll(ok204)(c)
			return
		}
		if _, err := http.ReadRequest(c.br); err != nil { // the head only
			return
		}
		c.write("HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
		c.waitEOF() // never reads the body on purpose: only its kernel buffer does
	})
	tr := p.transport(Options{})
	const size = 64 << 20 // far beyond socket buffers
	b := zeroBody(size)
	req, _ := http.NewRequest("POST", "http://b/upload", b)
	req.ContentLength = size
	resp, body := roundTrip(t, tr, req)
	if resp.StatusCode != 413 || body != "too big!" {
		t.Errorf("got %d %q; want 413 \"too big!\"", resp.StatusCode, body)
	}
	<-b.closed // the writer gave up once the connection closed
	if n := b.read.Load(); n >= size {
		t.Errorf("the whole body (%d bytes) was read; want the writer stopped", n)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections after an early response; want 0", n)
	}
	get(t, tr, "/next")
	if n := p.accepts.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (no reuse after an early response)", n)
	}
}

// TestLargeBodies sends bodies larger than the write buffer both ways,
// with a known length and chunked, and checks the backend got every byte.
func TestLargeBodies(t *testing.T) {
	p := newPeer(t, func(c *peerConn) {
		for {
			req, body, _, err := c.readRequest()
			if err != nil {
				return
			}
			sum := 0
			for _, b := range body {
				sum += int(b)
			}
			resp := fmt.Sprintf("%d %d %s %s", len(body), sum, req.Trailer.Get("X-Sum"), strings.Join(req.TransferEncoding, ","))
			c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(resp), resp))
		}
	})
	tr := p.transport(Options{})
	payload := strings.Repeat("abcdefghij", 100_000) // 1 MB
	sum := 0
	for _, b := range []byte(payload) {
		sum += int(b)
	}
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			req, _ := http.NewRequest("PUT", "http://b/", io.NopCloser(iotestHalfReader{strings.NewReader(payload)}))
			want := fmt.Sprintf("%d %d  ", len(payload), sum)
			req.ContentLength = int64(len(payload))
			if chunked {
				req.ContentLength = -1
				req.Trailer = http.Header{"X-Sum": nil}
				want = fmt.Sprintf("%d %d %d chunked", len(payload), sum, sum)
			}
			// Like a server's request body: the trailer's value is known
			// once the body is read.
			if chunked {
				req.Body = &trailerFiller{ReadCloser: req.Body, t: req.Trailer, v: strconv.Itoa(sum)}
			}
			if _, got := roundTrip(t, tr, req); got != want {
				t.Errorf("backend saw %q; want %q", got, want)
			}
		})
	}
	if n := p.accepts.Load(); n != 1 {
		t.Errorf("%d connections; want 1", n)
	}
}

// iotestHalfReader returns at most half of what is asked (at least one
// byte), so the writer sees short reads.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:(len(p)+1)/2])
}

// trailerFiller sets a trailer value at EOF, as net/http's server does.
type trailerFiller struct {
	io.ReadCloser
	t http.Header
	v string
}

func (f *trailerFiller) Read(p []byte) (int, error) {
	n, err := f.ReadCloser.Read(p)
	if err == io.EOF {
		f.t.Set("X-Sum", f.v)
	}
	return n, err
}

// TestShortRequestBody: a body shorter than its ContentLength fails the
// request and closes the connection (the backend would wait for the rest).
func TestShortRequestBody(t *testing.T) {
	checkGoroutines(t)
	gotEOF := make(chan bool, 1)
	p := newPeer(t, func(c *peerConn) { gotEOF <- c.waitEOF() })
	tr := p.transport(Options{})
	b := newTrackedBody(strings.NewReader("12345"))
	req, _ := http.NewRequest("POST", "http://b/", b)
	req.ContentLength = 10
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("RoundTrip error %v; want one wrapping io.ErrUnexpectedEOF", err)
	}
	if !<-gotEOF {
		t.Errorf("connection not closed after a short body")
	}
	<-b.closed
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections; want 0", n)
	}
}

// TestResponseHeaderTimeout: no response head in time is a net.Error
// with Timeout() true (the proxy answers 504), and the connection closes.
func TestResponseHeaderTimeout(t *testing.T) {
	checkGoroutines(t)
	gotEOF := make(chan bool, 1)
	p := newPeer(t, func(c *peerConn) {
		c.readRequest()
		gotEOF <- c.waitEOF()
	})
	tr := p.transport(Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	_, err := tr.RoundTrip(httpGet(t, "/"))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("RoundTrip error %v; want a net.Error with Timeout() true", err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v looks like a cancellation", err)
	}
	if !strings.Contains(err.Error(), "response_header_timeout") {
		t.Errorf("message %q does not name the setting", err)
	}
	if !<-gotEOF {
		t.Errorf("connection not closed after the timeout")
	}
}

// TestRouteTimeout: with RouteTimeouts, a route's timeout in the
// request's context replaces ResponseHeaderTimeout, and its expiry names
// the route's timeout; without RouteTimeouts the context is not looked at.
func TestRouteTimeout(t *testing.T) {
	checkGoroutines(t)
	p := newPeer(t, func(c *peerConn) {
		c.readRequest()
		c.waitEOF()
	})
	req := httpGet(t, "/")
	req = req.WithContext(backendconn.WithHeaderTimeout(req.Context(), 50*time.Millisecond))
	tr := p.transport(Options{ResponseHeaderTimeout: time.Hour, RouteTimeouts: true})
	_, err := tr.RoundTrip(req)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !strings.Contains(err.Error(), "the route's timeout") {
		t.Fatalf("RoundTrip error %v; want a net.Error with Timeout() true naming the route's timeout", err)
	}
	tr = p.transport(Options{ResponseHeaderTimeout: 50 * time.Millisecond})
	req = httpGet(t, "/")
	_, err = tr.RoundTrip(req.WithContext(backendconn.WithHeaderTimeout(req.Context(), time.Hour)))
	if err == nil || !strings.Contains(err.Error(), "response_header_timeout") {
		t.Fatalf("without RouteTimeouts: error %v; want the upstream's response_header_timeout", err)
	}
}

var errCause = errors.New("test: stopped by the test")

// TestContextCancel: the request's context ending interrupts the request
// wherever it waits, and the error wraps the cause.
func TestContextCancel(t *testing.T) {
	t.Run("waiting-for-head", func(t *testing.T) {
		checkGoroutines(t)
		received, gotEOF := make(chan struct{}), make(chan bool, 1)
		p := newPeer(t, func(c *peerConn) {
			c.readRequest()
			close(received)
			gotEOF <- c.waitEOF()
		})
		tr := p.transport(Options{})
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() { <-received; cancel(errCause) }()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://b/", nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, errCause) {
			t.Fatalf("RoundTrip error %v; want one wrapping the cause", err)
		}
		if !<-gotEOF {
			t.Errorf("connection not closed")
		}
	})
	t.Run("reading-body", func(t *testing.T) {
		checkGoroutines(t)
		p := newPeer(t, func(c *peerConn) {
			c.readRequest()
			c.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart")
			c.waitEOF()
		})
		tr := p.transport(Options{})
		ctx, cancel := context.WithCancelCause(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://b/", nil)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(resp.Body, buf); err != nil {
			t.Fatal(err)
		}
		go cancel(errCause)
		if _, err := resp.Body.Read(buf); !errors.Is(err, errCause) {
			t.Errorf("Read after cancel: %v; want an error wrapping the cause", err)
		}
		resp.Body.Close()
	})
	t.Run("writing-body", func(t *testing.T) {
		checkGoroutines(t)
		received := make(chan struct{})
		p := newPeer(t, func(c *peerConn) {
			http.ReadRequest(c.br)
			close(received)
			c.waitEOF()
		})
		tr := p.transport(Options{})
		ctx, cancel := context.WithCancelCause(context.Background())
		pr, pw := io.Pipe() // a client that sends a few bytes, then stalls
		go pw.Write([]byte("first bytes"))
		go func() { <-received; cancel(errCause) }()
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://b/", pr)
		req.ContentLength = 1000
		if _, err := tr.RoundTrip(req); !errors.Is(err, errCause) {
			t.Fatalf("RoundTrip error %v; want one wrapping the cause", err)
		}
		pw.Close() // the client goes away; the body writer ends
	})
	t.Run("while-connecting", func(t *testing.T) {
		checkGoroutines(t)
		p := newPeer(t, serveAll(ok204))
		addr := p.ln.Addr().String()
		dialing, release := make(chan struct{}), make(chan struct{})
		tr := NewTransport(Options{Dial: func(ctx context.Context) (net.Conn, error) {
			close(dialing)
			<-release // a connect that ignores the request's cancellation
			return net.Dial("tcp", addr)
		}})
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithCancelCause(context.Background())
		go func() { <-dialing; cancel(errCause) }()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://b/", nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, errCause) {
			t.Fatalf("RoundTrip error %v; want one wrapping the cause", err)
		}
		close(release)
		// The connect finishes after the request left: its connection is
		// kept for the next request.
		waitFor(t, "the abandoned connection to be pooled", func() bool { return tr.idleCount() == 1 })
	})
	t.Run("lost-in-got-conn", func(t *testing.T) {
		p := newPeer(t, serveAll(ok204))
		tr := p.transport(Options{})
		ctx, cancel := context.WithCancelCause(context.Background())
		ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			GotConn: func(httptrace.GotConnInfo) { cancel(errCause) }, // as a lost connect race does
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://b/", nil)
		if _, err := tr.RoundTrip(req); !errors.Is(err, errCause) {
			t.Fatalf("RoundTrip error %v; want one wrapping the cause", err)
		}
		if n := tr.idleCount(); n != 1 {
			t.Errorf("%d idle connections; want the unused one pooled", n)
		}
		get(t, tr, "/")
		if n := p.accepts.Load(); n != 1 {
			t.Errorf("%d connections; want 1", n)
		}
	})
}

// TestCloseIdleConnections pins net/http's contract: idle connections are
// closed at once, connections finishing later are closed instead of
// pooled, until the next RoundTrip.
func TestCloseIdleConnections(t *testing.T) {
	hold, started := make(chan struct{}), make(chan struct{})
	p := newPeer(t, func(c *peerConn) {
		for {
			req, _, _, err := c.readRequest()
			if err != nil {
				return
			}
			if req.URL.Path == "/slow" {
				close(started)
				<-hold
			}
			c.write(ok204)
		}
	})
	tr := p.transport(Options{})
	get(t, tr, "/")
	if n := tr.idleCount(); n != 1 {
		t.Fatalf("%d idle; want 1", n)
	}
	tr.CloseIdleConnections()
	if n := tr.idleCount(); n != 0 {
		t.Fatalf("%d idle after CloseIdleConnections; want 0", n)
	}

	// In flight across CloseIdleConnections: closed when it finishes.
	done := make(chan struct{})
	go func() {
		defer close(done)
		get(t, tr, "/slow")
	}()
	<-started
	tr.CloseIdleConnections()
	close(hold)
	<-done
	if n := tr.idleCount(); n != 0 {
		t.Errorf("request finishing after CloseIdleConnections was pooled (%d idle)", n)
	}
	// The next RoundTrip undoes it.
	get(t, tr, "/")
	if n := tr.idleCount(); n != 1 {
		t.Errorf("after the next RoundTrip: %d idle; want 1", n)
	}
}

func TestIdleTimeoutAndMaxIdle(t *testing.T) {
	t.Run("idle-timeout", func(t *testing.T) {
		p := newPeer(t, serveAll(ok204))
		tr := p.transport(Options{IdleTimeout: 20 * time.Millisecond})
		get(t, tr, "/")
		waitFor(t, "the idle timer to close the connection", func() bool { return tr.idleCount() == 0 })
	})
	t.Run("keep-alive-off", func(t *testing.T) {
		p := newPeer(t, serveAll(ok204))
		tr := p.transport(Options{MaxIdle: -1})
		get(t, tr, "/")
		get(t, tr, "/")
		if n, a := tr.idleCount(), p.accepts.Load(); n != 0 || a != 2 {
			t.Errorf("MaxIdle -1: %d idle, %d connections; want 0, 2", n, a)
		}
	})
	t.Run("max-idle", func(t *testing.T) {
		const concurrent = 3
		arrived, release := make(chan struct{}, concurrent), make(chan struct{})
		p := newPeer(t, func(c *peerConn) {
			for {
				if _, _, _, err := c.readRequest(); err != nil {
					return
				}
				arrived <- struct{}{}
				<-release
				c.write(ok204)
			}
		})
		tr := p.transport(Options{MaxIdle: 2})
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() { get(t, tr, "/") })
		}
		for range concurrent {
			<-arrived // all three on their own connections
		}
		close(release)
		wg.Wait()
		if n := tr.idleCount(); n != 2 {
			t.Errorf("%d idle; want MaxIdle 2", n)
		}
	})
}

// dialErr stands for the upstream pool's *DialError.
type dialErr struct{ err error }

func (e *dialErr) Error() string { return "connect: " + e.err.Error() }
func (e *dialErr) Unwrap() error { return e.err }

// timedOutConn is a connection whose reads fail the way a connection the
// kernel gave up on (TCP_USER_TIMEOUT) does.
type timedOutConn struct{ net.Conn }

func (c timedOutConn) Read([]byte) (int, error) {
	return 0, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ETIMEDOUT)}
}

// TestErrorsKeepTheirCause: callers branch on what the dialer and the
// kernel said, through the transport's wrapping.
func TestErrorsKeepTheirCause(t *testing.T) {
	t.Run("dial-error", func(t *testing.T) {
		want := &dialErr{err: syscall.ECONNREFUSED}
		tr := NewTransport(Options{Dial: func(context.Context) (net.Conn, error) { return nil, want }})
		_, err := tr.RoundTrip(httpGet(t, "/"))
		var de *dialErr
		if !errors.As(err, &de) || de != want {
			t.Errorf("RoundTrip error %v; want one wrapping the dial error", err)
		}
	})
	t.Run("etimedout", func(t *testing.T) {
		p := newPeer(t, func(c *peerConn) { c.readRequest(); c.waitEOF() })
		addr := p.ln.Addr().String()
		var dials int
		tr := NewTransport(Options{Dial: func(context.Context) (net.Conn, error) {
			dials++
			c, err := net.Dial("tcp", addr)
			return timedOutConn{c}, err
		}})
		defer tr.CloseIdleConnections()
		_, err := tr.RoundTrip(httpGet(t, "/"))
		if !errors.Is(err, syscall.ETIMEDOUT) {
			t.Errorf("RoundTrip error %v; want one wrapping ETIMEDOUT", err)
		}
		if dials != 1 {
			t.Errorf("%d dials; a dead connection is not retried on a new one", dials)
		}
	})
}

// TestHeadersTooLarge: a backend sending an endless head is cut off.
func TestHeadersTooLarge(t *testing.T) {
	p := newPeer(t, func(c *peerConn) {
		c.readRequest()
		c.write("HTTP/1.1 200 OK\r\n")
		line := "X-Filler: " + strings.Repeat("x", 1000) + "\r\n"
		for c.write(line) == nil {
		}
	})
	tr := p.transport(Options{})
	if _, err := tr.RoundTrip(httpGet(t, "/")); !errors.Is(err, errHeadersTooLarge) {
		t.Errorf("RoundTrip error %v; want errHeadersTooLarge", err)
	}
}

// TestConcurrentRequests runs requests in parallel (under -race) and checks
// each gets its own answer.
func TestConcurrentRequests(t *testing.T) {
	checkGoroutines(t)
	p := newPeer(t, func(c *peerConn) {
		for {
			req, body, _, err := c.readRequest()
			if err != nil {
				return
			}
			r := req.URL.Path + " " + strconv.Itoa(len(body))
			c.write(fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r), r))
		}
	})
	tr := p.transport(Options{MaxIdle: 4})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				path := fmt.Sprintf("/%d/%d", g, i)
				var req *http.Request
				want := path + " 0"
				if i%3 == 0 {
					body := strings.Repeat("b", i*100)
					req, _ = http.NewRequest("POST", "http://b"+path, strings.NewReader(body))
					want = path + " " + strconv.Itoa(len(body))
				} else {
					req, _ = http.NewRequest("GET", "http://b"+path, nil)
				}
				resp, err := tr.RoundTrip(req)
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != want {
					t.Errorf("%s: %q, %v; want %q", path, b, err, want)
				}
			}
		})
	}
	wg.Wait()
}
