package ajp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// okServe answers every request with 200 "hello" and reuse=1.
func okServe(c *cconn, _ *decodedRequest, _ []byte) error {
	return c.respond(200, []respHeader{{Code: RespContentType, Value: "text/plain"}}, []byte("hello"), 8184, true)
}

// errorRecorder collects OnError kinds and OnRejected errors.
type errorRecorder struct {
	mu       sync.Mutex
	kinds    []string
	rejected []*Error
}

func (r *errorRecorder) onError(kind string) {
	r.mu.Lock()
	r.kinds = append(r.kinds, kind)
	r.mu.Unlock()
}

func (r *errorRecorder) onRejected(_ *http.Request, err *Error) {
	r.mu.Lock()
	r.rejected = append(r.rejected, err)
	r.mu.Unlock()
}

func (r *errorRecorder) get() ([]string, []*Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.kinds...), append([]*Error(nil), r.rejected...)
}

// roundTrip sends req and returns the response with its whole body.
func roundTrip(t *testing.T, tr *Transport, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

func TestRoundTripGet(t *testing.T) {
	var got *decodedRequest
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		got = req
		return c.respond(200, []respHeader{
			{Code: RespContentType, Value: "text/plain"},
			{Code: RespContentLength, Value: "5"},
			{Name: "X-Backend", Value: "t1"},
		}, []byte("hello"), 8184, true)
	})
	tr := fc.transport(Options{Secret: "s3cret"})
	req := httptest.NewRequest("GET", "http://example.com:8080/app/a%20b?x=1&y=%20z", nil)
	req.RemoteAddr = "192.0.2.7:41234"
	req.Header.Set("User-Agent", "test/1")
	req.Header.Add("X-Multi", "a")
	req.Header.Add("X-Multi", "b")
	ctx := context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 18081})
	ctx = WithRoute(ctx, "node1")
	ctx = WithRemoteUser(ctx, "alice", "Basic")
	req = req.WithContext(ctx)

	resp, b := roundTrip(t, tr, req)
	if resp.Status != "200 OK" || resp.StatusCode != 200 {
		t.Errorf("Status = %q; want \"200 OK\" (Tomcat sends \"200\" as the reason)", resp.Status)
	}
	if b != "hello" || resp.ContentLength != 5 {
		t.Errorf("body %q, ContentLength %d", b, resp.ContentLength)
	}
	if v := resp.Header.Get("X-Backend"); v != "t1" {
		t.Errorf("X-Backend = %q", v)
	}

	checks := []struct{ name, got, want string }{
		{"method", got.Method, "GET"},
		{"protocol", got.Protocol, "HTTP/1.1"},
		{"uri", got.URI, "/app/a%20b"},
		{"remote_addr", got.RemoteAddr, "192.0.2.7"},
		{"remote_host", got.RemoteHost, "192.0.2.7"},
		{"server_name", got.ServerName, "example.com"},
		{"server_port", fmt.Sprint(got.ServerPort), "18081"},
		{"is_ssl", fmt.Sprint(got.IsSSL), "false"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.name, c.got, c.want)
		}
	}
	headers := []struct{ name, want string }{
		{"host", "example.com:8080"},
		{"user-agent", "test/1"},
	}
	for _, h := range headers {
		if v, _ := got.header(h.name); v != h.want {
			t.Errorf("header %s = %q; want %q", h.name, v, h.want)
		}
	}
	if _, ok := got.header("content-length"); ok {
		t.Errorf("GET without body sent a content-length header")
	}
	var multi []string
	for _, h := range got.Headers {
		if h.Name == "X-Multi" {
			multi = append(multi, h.Value)
		}
	}
	if fmt.Sprint(multi) != "[a b]" {
		t.Errorf("X-Multi sent as %q; want two headers a, b", multi)
	}
	attrs := []struct {
		code AttributeCode
		want string
	}{
		{AttrQueryString, "x=1&y=%20z"},
		{AttrSecret, "s3cret"},
		{AttrRoute, "node1"},
		{AttrRemoteUser, "alice"},
		{AttrAuthType, "Basic"},
	}
	for _, a := range attrs {
		if v, ok := got.attr(a.code); v != a.want {
			t.Errorf("attribute %v = %q (present %v); want %q", a.code, v, ok, a.want)
		}
	}
	if v, _ := got.reqAttr(ReqAttrRemotePort); v != "41234" {
		t.Errorf("AJP_REMOTE_PORT = %q; want 41234", v)
	}
	if v, _ := got.reqAttr(ReqAttrLocalAddr); v != "10.1.2.3" {
		t.Errorf("AJP_LOCAL_ADDR = %q; want 10.1.2.3", v)
	}
	if _, ok := got.attr(AttrSSLCipher); ok {
		t.Errorf("ssl_cipher sent for a plain-HTTP client")
	}
}

// TestGhostcat: nothing the client sends may become a request attribute
// (CVE-2020-1938): only the fixed set, with values from the proxy itself.
func TestGhostcat(t *testing.T) {
	var got *decodedRequest
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, raw []byte) error {
		got = req
		return okServe(c, req, raw)
	})
	tr := fc.transport(Options{Secret: "real"})
	req := httptest.NewRequest("GET", "http://example.com/x?javax.servlet.include.request_uri=/WEB-INF/web.xml", nil)
	req.RemoteAddr = "192.0.2.9:5000"
	evil := map[string]string{
		"X-Attr":                               "javax.servlet.include.path_info",
		"Ajp-Secret":                           "guess",
		"Javax.servlet.include.request_uri":    "/WEB-INF/web.xml",
		"javax.servlet.include.servlet_path":   "/",
		"AJP_REMOTE_PORT":                      "1",
		"Ajp_local_addr":                       "6.6.6.6",
		"X-Ajp-Route":                          "evil",
		"Jk_lb_activation":                     "DIS",
		"Org.apache.catalina.jsp_file":         "/WEB-INF/x.jsp",
		"Jakarta.servlet.request.cipher_suite": "NULL",
	}
	for k, v := range evil {
		req.Header[k] = []string{v}
	}
	roundTrip(t, tr, req)

	allowed := map[AttributeCode]bool{AttrQueryString: true, AttrSecret: true, AttrReqAttr: true}
	for _, a := range got.Attrs {
		if !allowed[a.Code] {
			t.Errorf("unexpected attribute %v = %q", a.Code, a.Value)
		}
		if a.Code == AttrReqAttr && a.Name != ReqAttrRemotePort {
			t.Errorf("req_attribute %q = %q sent", a.Name, a.Value)
		}
	}
	if v, _ := got.attr(AttrSecret); v != "real" {
		t.Errorf("secret = %q; want the configured one", v)
	}
	if v, _ := got.reqAttr(ReqAttrRemotePort); v != "5000" {
		t.Errorf("AJP_REMOTE_PORT = %q; want 5000 (from RemoteAddr, not the header)", v)
	}
	// The client's headers still travel, as headers.
	for k, v := range evil {
		if hv, ok := got.header(k); !ok || hv != v {
			t.Errorf("header %q = %q, %v; want %q", k, hv, ok, v)
		}
	}
}

func TestRoundTripPostContentLength(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 70000) // 1.1 MB
	want := sha256.Sum256(body)
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		if v, _ := req.header("content-length"); v != fmt.Sprint(len(body)) {
			return fmt.Errorf("content-length = %q", v)
		}
		// The first body packet follows the Forward Request unasked.
		h := sha256.New()
		data, err := c.readBody()
		if err != nil {
			return err
		}
		if len(data) != DefaultPacketSize-bodyOverhead {
			return fmt.Errorf("first body packet has %d bytes; want %d", len(data), DefaultPacketSize-bodyOverhead)
		}
		h.Write(data)
		n := len(data)
		for n < len(body) {
			if err := c.write(appendGetBodyChunk(nil, 8186)); err != nil {
				return err
			}
			data, err := c.readBody()
			if err != nil {
				return err
			}
			if len(data) == 0 || len(data) > 8186 {
				return fmt.Errorf("body packet of %d bytes at %d", len(data), n)
			}
			h.Write(data)
			n += len(data)
		}
		sum := fmt.Sprintf("%x", h.Sum(nil))
		return c.respond(200, nil, []byte(sum), 8184, true)
	})
	tr := fc.transport(Options{})
	req := httptest.NewRequest("POST", "http://example.com/upload", bytes.NewReader(body))
	_, got := roundTrip(t, tr, req)
	if got != fmt.Sprintf("%x", want) {
		t.Errorf("container saw body sha256 %s; want %x", got, want)
	}
}

// trackingBody is a request body that records whether it was read.
type trackingBody struct {
	io.Reader
	mu     sync.Mutex
	reads  int
	closed bool
}

func (b *trackingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	b.reads++
	b.mu.Unlock()
	return b.Reader.Read(p)
}

func (b *trackingBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

func (b *trackingBody) state() (int, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reads, b.closed
}

// strictBody fails reads after Close, as a server request body does.
type strictBody struct {
	io.Reader
	closed bool
}

func (b *strictBody) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read after close")
	}
	return b.Reader.Read(p)
}

func (b *strictBody) Close() error { b.closed = true; return nil }

func TestRoundTripPostChunked(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 1<<20+123)
	tb := &trackingBody{Reader: bytes.NewReader(body)}
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		if _, ok := req.header("content-length"); ok {
			return errors.New("content-length sent for a body of unknown length")
		}
		if _, ok := req.header("transfer-encoding"); ok {
			return errors.New("transfer-encoding sent")
		}
		if reads, _ := tb.state(); reads != 0 {
			return fmt.Errorf("body read %d times before Tomcat asked: an unasked packet would be taken for the next request", reads)
		}
		n := 0
		for {
			if err := c.write(appendGetBodyChunk(nil, 8186)); err != nil {
				return err
			}
			data, err := c.readBody()
			if err != nil {
				return err
			}
			if len(data) == 0 {
				break
			}
			n += len(data)
		}
		return c.respond(200, nil, []byte(fmt.Sprint(n)), 8184, true)
	})
	tr := fc.transport(Options{})
	req := httptest.NewRequest("POST", "http://example.com/upload", nil)
	req.Body = tb
	req.ContentLength = -1
	_, got := roundTrip(t, tr, req)
	if got != fmt.Sprint(len(body)) {
		t.Errorf("container read %s bytes; want %d", got, len(body))
	}
	if _, closed := tb.state(); !closed {
		t.Errorf("request body not closed")
	}
}

// TestResponseStreams: the body is handed out as chunks arrive, not
// buffered until END_RESPONSE; a 1 MiB+ body arrives intact.
func TestResponseStreams(t *testing.T) {
	big := bytes.Repeat([]byte("abcdefgh"), 140000) // 1.12 MB
	release := make(chan struct{})
	fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
		b := appendSendHeaders(nil, 200, "200")
		b = appendBodyChunk(b, big[:8184])
		b = appendBodyChunk(b, nil) // flush
		if err := c.write(b); err != nil {
			return err
		}
		<-release
		b = nil
		for rest := big[8184:]; len(rest) > 0; {
			n := min(8184, len(rest))
			b = appendBodyChunk(b, rest[:n])
			rest = rest[n:]
		}
		return c.write(appendEndResponse(b, true))
	})
	tr := fc.transport(Options{})
	resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/big", nil))
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 8184)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("reading the first chunk before the rest was sent: %v", err)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got := append(first, rest...); !bytes.Equal(got, big) {
		t.Errorf("body of %d bytes differs from the %d sent", len(got), len(big))
	}
}

func TestSetCookies(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
		return c.respond(200, []respHeader{
			{Code: RespSetCookie, Value: "JSESSIONID=abc; Path=/; HttpOnly"},
			{Code: RespSetCookie, Value: "a=1"},
			{Name: "Set-Cookie", Value: "b=2"},
		}, nil, 8184, true)
	})
	resp, _ := roundTrip(t, fc.transport(Options{}), httptest.NewRequest("GET", "http://example.com/", nil))
	want := []string{"JSESSIONID=abc; Path=/; HttpOnly", "a=1", "b=2"}
	if got := resp.Header["Set-Cookie"]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Set-Cookie = %q; want %q", got, want)
	}
}

// TestNoBodyResponses: HEAD, 204 and 304 have empty bodies and the
// connection is still reused afterwards.
func TestNoBodyResponses(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		switch req.URI {
		case "/head":
			return c.respond(200, []respHeader{{Code: RespContentLength, Value: "1234"}}, nil, 8184, true)
		case "/304":
			return c.respond(304, []respHeader{{Name: "Etag", Value: `"x"`}}, nil, 8184, true)
		default:
			return c.respond(204, nil, nil, 8184, true)
		}
	})
	tr := fc.transport(Options{})
	tests := []struct {
		name, method, path string
		status             int
		contentLength      int64
	}{
		{"head", "HEAD", "/head", 200, 1234},
		{"not-modified", "GET", "/304", 304, 0},
		{"no-content", "DELETE", "/204", 204, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := roundTrip(t, tr, httptest.NewRequest(tt.method, "http://example.com"+tt.path, nil))
			if resp.StatusCode != tt.status || b != "" || resp.ContentLength != tt.contentLength {
				t.Errorf("status %d, body %q, ContentLength %d; want %d, empty, %d",
					resp.StatusCode, b, resp.ContentLength, tt.status, tt.contentLength)
			}
		})
	}
	if n := fc.accepts.Load(); n != 1 {
		t.Errorf("%d connections for 3 requests; want 1", n)
	}
}

func TestReuseFlag(t *testing.T) {
	for _, reuse := range []bool{true, false} {
		t.Run(fmt.Sprintf("reuse=%v", reuse), func(t *testing.T) {
			fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
				if err := c.respond(200, nil, []byte("x"), 8184, reuse); err != nil {
					return err
				}
				if !reuse {
					return errCloseConn
				}
				return nil
			})
			tr := fc.transport(Options{})
			for range 3 {
				roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
			}
			want := int32(1)
			if !reuse {
				want = 3
			}
			if n := fc.accepts.Load(); n != want {
				t.Errorf("%d connections for 3 requests; want %d", n, want)
			}
		})
	}
}

func TestMidResponseReset(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
		b := appendSendHeaders(nil, 200, "200", respHeader{Code: RespContentLength, Value: "100000"})
		b = appendBodyChunk(b, make([]byte, 1000))
		if err := c.write(b); err != nil {
			return err
		}
		return errCloseConn
	})
	var rec errorRecorder
	tr := fc.transport(Options{OnError: rec.onError})
	resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/", nil))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindReset {
		t.Fatalf("body read error = %v after %d bytes; want *Error of kind reset", err, n)
	}
	if n != 1000 {
		t.Errorf("read %d bytes before the error; want 1000", n)
	}
	if kinds, _ := rec.get(); fmt.Sprint(kinds) != "[reset]" {
		t.Errorf("OnError kinds = %v; want [reset]", kinds)
	}
	if tr.idleCount() != 0 {
		t.Errorf("broken connection was pooled")
	}
}

func TestHeadersTooLargeRoundTrip(t *testing.T) {
	var dials int
	var rec errorRecorder
	tr := NewTransport(Options{
		Dial: func(context.Context) (net.Conn, error) {
			dials++
			return nil, errors.New("must not dial")
		},
		OnError: rec.onError,
	})
	req := httptest.NewRequest("GET", "http://example.com/", nil)
	req.Header.Set("Cookie", strings.Repeat("c", 9000))
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, ErrHeadersTooLarge) {
		t.Fatalf("err = %v; want ErrHeadersTooLarge", err)
	}
	if dials != 0 {
		t.Errorf("dialled %d times for a request that cannot be sent", dials)
	}
	if kinds, _ := rec.get(); fmt.Sprint(kinds) != "[headers_too_large]" {
		t.Errorf("OnError kinds = %v", kinds)
	}
}

func TestUpgradeRefused(t *testing.T) {
	tr := NewTransport(Options{Dial: func(context.Context) (net.Conn, error) {
		t.Error("dialled for an upgrade request")
		return nil, errors.New("no")
	}})
	tests := []struct {
		name   string
		method string
		header http.Header
	}{
		{"websocket", "GET", http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
		{"connection-token", "GET", http.Header{"Connection": {"keep-alive, upgrade"}}},
		{"connect", "CONNECT", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "http://example.com/ws", nil)
			for k, v := range tt.header {
				req.Header[k] = v
			}
			if _, err := tr.RoundTrip(req); !errors.Is(err, ErrUpgrade) {
				t.Errorf("err = %v; want ErrUpgrade", err)
			}
		})
	}
}

func TestCPing(t *testing.T) {
	fc := newFakeContainer(t, okServe)
	tr := fc.transport(Options{CPingTimeout: 200 * time.Millisecond})
	if err := tr.CPing(context.Background()); err != nil {
		t.Fatalf("CPing: %v", err)
	}
	if n := fc.cpings.Load(); n != 1 {
		t.Errorf("container saw %d CPINGs; want 1", n)
	}
	if tr.idleCount() != 0 {
		t.Errorf("CPing pooled its connection")
	}

	// A connector that accepts but never answers (Tomcat's AJP connector
	// failed to start but the port stays bound).
	fc.noCPong.Store(true)
	start := time.Now()
	err := tr.CPing(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindCPing {
		t.Fatalf("CPing against a silent connector = %v; want *Error of kind cping", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CPing took %v with a 200ms timeout", d)
	}
	if !strings.Contains(err.Error(), "200ms") {
		t.Errorf("message %q does not give the timeout", err)
	}

	// Nothing listening: a dial error.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	tr2 := NewTransport(Options{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}})
	if err := tr2.CPing(context.Background()); !errors.As(err, &e) || e.Kind != KindDial {
		t.Errorf("CPing with nothing listening = %v; want *Error of kind dial", err)
	}
}

// TestCPingNewConnection: a new connection is checked with CPING before its
// first request, unless DisableCPingNew; a silent connector fails fast.
func TestCPingNewConnection(t *testing.T) {
	fc := newFakeContainer(t, okServe)
	roundTrip(t, fc.transport(Options{}), httptest.NewRequest("GET", "http://example.com/", nil))
	if n := fc.cpings.Load(); n != 1 {
		t.Errorf("%d CPINGs before the first request; want 1", n)
	}
	roundTrip(t, fc.transport(Options{DisableCPingNew: true}), httptest.NewRequest("GET", "http://example.com/", nil))
	if n := fc.cpings.Load(); n != 1 {
		t.Errorf("%d CPINGs with DisableCPingNew; want still 1", n)
	}

	fc.noCPong.Store(true)
	var rec errorRecorder
	tr := fc.transport(Options{CPingTimeout: 100 * time.Millisecond, OnError: rec.onError})
	_, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/", nil))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindCPing {
		t.Errorf("RoundTrip to a silent connector = %v; want *Error of kind cping", err)
	}
	if kinds, _ := rec.get(); fmt.Sprint(kinds) != "[cping]" {
		t.Errorf("OnError kinds = %v; want [cping]", kinds)
	}
}

// TestCPingIdle: a pooled connection idle longer than CPingIdle is checked
// before reuse, and one that fails the check is replaced.
func TestCPingIdle(t *testing.T) {
	var requests sync.WaitGroup
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, raw []byte) error {
		defer requests.Done()
		if req.URI == "/last-on-conn" {
			// Claim reuse, then go away: the next CPING fails.
			if err := c.respond(200, nil, nil, 8184, true); err != nil {
				return err
			}
			return errCloseConn
		}
		return okServe(c, req, raw)
	})
	tr := fc.transport(Options{CPingIdle: time.Nanosecond, DisableCPingNew: true})
	requests.Add(2)
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
	if n, a := fc.cpings.Load(), fc.accepts.Load(); n != 1 || a != 1 {
		t.Errorf("%d CPINGs, %d connections; want 1 CPING before the reuse, 1 connection", n, a)
	}
	requests.Add(1)
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/last-on-conn", nil))
	requests.Wait() // the container has closed the connection
	requests.Add(1)
	resp, _ := roundTrip(t, tr, httptest.NewRequest("POST", "http://example.com/", strings.NewReader("p")))
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
	if a := fc.accepts.Load(); a != 2 {
		t.Errorf("%d connections; want 2 (the stale one replaced)", a)
	}
}

// TestRetryDeadPooledConnection: a pooled connection closed by the backend
// while idle is retried on a new one for an idempotent request, never for
// a POST (net/http's rule). CPING on reuse is off to reach this path.
func TestRetryDeadPooledConnection(t *testing.T) {
	var closeAfter sync.WaitGroup
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		if req.URI == "/echo" {
			var body []byte
			for {
				data, err := c.readBody()
				if err != nil {
					return err
				}
				body = append(body, data...)
				if cl, _ := req.header("content-length"); fmt.Sprint(len(body)) == cl {
					break
				}
				if err := c.write(appendGetBodyChunk(nil, 8186)); err != nil {
					return err
				}
			}
			return c.respond(200, nil, body, 8184, true)
		}
		if req.URI == "/drop" {
			return errCloseConn // read it, close unanswered
		}
		if err := c.respond(200, nil, []byte(req.Method), 8184, true); err != nil {
			return err
		}
		if req.URI == "/then-close" {
			defer closeAfter.Done()
			return errCloseConn
		}
		return nil
	})
	var rec errorRecorder
	tr := fc.transport(Options{CPingIdle: -1, DisableCPingNew: true, OnError: rec.onError})

	closeAfter.Add(1)
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/then-close", nil))
	closeAfter.Wait()
	if _, b := roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil)); b != "GET" {
		t.Errorf("body %q", b)
	}
	if a := fc.accepts.Load(); a != 2 {
		t.Errorf("%d connections; want 2", a)
	}

	// A body larger than one packet: the kept first packet is resent and
	// the rest still read from the (unclosed) request body.
	closeAfter.Add(1)
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/then-close", nil))
	closeAfter.Wait()
	big := strings.Repeat("b", 20000)
	put := httptest.NewRequest("PUT", "http://example.com/echo", strings.NewReader(big))
	put.Body = &strictBody{Reader: strings.NewReader(big)}
	put.Header.Set("Idempotency-Key", "k1")
	if _, b := roundTrip(t, tr, put); b != big {
		t.Errorf("echoed %d bytes after a retry; want %d", len(b), len(big))
	}
	if a := fc.accepts.Load(); a != 3 {
		t.Errorf("%d connections; want 3 (the PUT retried once)", a)
	}

	// A POST that reached Tomcat on a pooled connection, which then
	// closed it unanswered, is not sent again.
	_, err := tr.RoundTrip(httptest.NewRequest("POST", "http://example.com/drop", strings.NewReader("data")))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindReset {
		t.Errorf("POST on a dead pooled connection: err = %v; want *Error of kind reset, not a retry", err)
	}
	if kinds, _ := rec.get(); fmt.Sprint(kinds) != "[reset]" {
		t.Errorf("OnError kinds = %v; want [reset] (the GET retry is not an error)", kinds)
	}
}

// TestSecretRejected: Tomcat's refusal of a wrong or missing secret (a
// short 403 and reuse=0 on a connection's first request) is a KindSecret
// error from RoundTrip, not a response; an application's 403 (reuse=1, a
// body over the read-ahead bound, or not the first request) is passed on
// intact.
func TestSecretRejected(t *testing.T) {
	const page = "<html><body><h1>HTTP Status 403 – Forbidden</h1></body></html>"
	big := bytes.Repeat([]byte("0123456789abcdef"), (maxReadAhead+20000)/16)
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		if v, _ := req.attr(AttrSecret); v == "good" {
			switch req.URI {
			case "/app-403":
				return c.respond(403, nil, []byte("app says no"), 8184, true)
			case "/app-403-big":
				// Over the bound, and reuse=0: still the application's.
				if err := c.respond(403, nil, big, 8184, false); err != nil {
					return err
				}
				return errCloseConn
			case "/app-403-close":
				if err := c.respond(403, nil, []byte("closing"), 8184, false); err != nil {
					return err
				}
				return errCloseConn
			case "/reset":
				b := appendSendHeaders(nil, 403, "403")
				if err := c.write(appendBodyChunk(b, []byte("partial"))); err != nil {
					return err
				}
				return errCloseConn
			}
			return okServe(c, req, nil)
		}
		// What Tomcat does on a wrong or missing secret.
		if err := c.respond(403, []respHeader{{Code: RespContentType, Value: "text/html"}}, []byte(page), 8184, false); err != nil {
			return err
		}
		return errCloseConn
	})

	for _, tt := range []struct{ name, secret, wantMsg string }{
		{"wrong", "bad", "secret is probably wrong"},
		{"missing", "", "missing (ajp.secret is empty)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var rec errorRecorder
			tr := fc.transport(Options{Secret: tt.secret, OnError: rec.onError})
			resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/", nil))
			if resp != nil {
				resp.Body.Close()
				t.Fatalf("got a %s response; want none", resp.Status)
			}
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindSecret {
				t.Fatalf("err = %v; want *Error of kind secret", err)
			}
			for _, s := range []string{tt.wantMsg, "ajp.secret", "403", "allowedRequestAttributesPattern"} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q does not contain %q", err, s)
				}
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("message %q contains the secret", err)
			}
			kinds, rejected := rec.get()
			if fmt.Sprint(kinds) != "[secret]" || len(rejected) != 0 {
				t.Errorf("OnError kinds = %v, OnRejected = %v; want [secret] and no OnRejected (deprecated)", kinds, rejected)
			}
			if tr.idleCount() != 0 {
				t.Errorf("refused connection was pooled")
			}
		})
	}

	passed := func(t *testing.T, path string, want []byte, wantKinds string) *Transport {
		t.Helper()
		var rec errorRecorder
		tr := fc.transport(Options{Secret: "good", OnError: rec.onError})
		resp, b := roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com"+path, nil))
		if resp.StatusCode != 403 || resp.Status != "403 Forbidden" {
			t.Errorf("status %q; want the 403 passed on", resp.Status)
		}
		if b != string(want) {
			t.Errorf("body: %d bytes %.40q...; want %d bytes %.40q...", len(b), b, len(want), want)
		}
		if kinds, _ := rec.get(); fmt.Sprint(kinds) != wantKinds {
			t.Errorf("OnError kinds = %v; want %s", kinds, wantKinds)
		}
		return tr
	}
	t.Run("app-403-reuse", func(t *testing.T) {
		tr := passed(t, "/app-403", []byte("app says no"), "[]")
		if tr.idleCount() != 1 {
			t.Errorf("%d idle connections after a 403 with reuse=1; want 1", tr.idleCount())
		}
	})
	t.Run("app-403-over-bound", func(t *testing.T) {
		passed(t, "/app-403-big", big, "[]")
	})
	t.Run("app-403-close-not-first", func(t *testing.T) {
		var rec errorRecorder
		tr := fc.transport(Options{Secret: "good", OnError: rec.onError})
		roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
		resp, b := roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/app-403-close", nil))
		if resp.StatusCode != 403 || b != "closing" {
			t.Errorf("second request: %s %q; want the application's 403 passed on", resp.Status, b)
		}
		if kinds, _ := rec.get(); len(kinds) != 0 {
			t.Errorf("OnError kinds = %v; want none", kinds)
		}
	})
	t.Run("reset-in-read-ahead", func(t *testing.T) {
		var rec errorRecorder
		tr := fc.transport(Options{Secret: "good", OnError: rec.onError})
		resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/reset", nil))
		if resp != nil {
			resp.Body.Close()
		}
		var e *Error
		if resp != nil || !errors.As(err, &e) || e.Kind != KindReset {
			t.Fatalf("RoundTrip = %v, %v; want no response and *Error of kind reset", resp, err)
		}
		if kinds, _ := rec.get(); fmt.Sprint(kinds) != "[reset]" {
			t.Errorf("OnError kinds = %v; want [reset]", kinds)
		}
	})
}

// TestPacketSizeMismatch: a packet from Tomcat above ajp.packet_size, and a
// Forward Request above Tomcat's packetSize, both name the setting.
func TestPacketSizeMismatch(t *testing.T) {
	t.Run("tomcat-larger", func(t *testing.T) {
		fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
			b := appendSendHeaders(nil, 200, "200")
			b = appendBodyChunk(b, make([]byte, 16000)) // Tomcat with packetSize 16384
			return c.write(appendEndResponse(b, true))
		})
		var rec errorRecorder
		tr := fc.transport(Options{OnError: rec.onError})
		resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/", nil))
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindPacketSize || !errors.Is(err, ErrPacketTooLarge) {
			t.Fatalf("err = %v; want *Error of kind packet_size wrapping ErrPacketTooLarge", err)
		}
		if !strings.Contains(err.Error(), "ajp.packet_size") || !strings.Contains(err.Error(), "16008") {
			t.Errorf("message %q should name ajp.packet_size and the packet size", err)
		}
	})
	t.Run("tomcat-smaller-closes", func(t *testing.T) {
		fc := newFakeContainer(t, func(*cconn, *decodedRequest, []byte) error { return errCloseConn })
		tr := fc.transport(Options{PacketSize: 16384})
		req := httptest.NewRequest("GET", "http://example.com/", nil)
		req.Header.Set("Cookie", strings.Repeat("c", 10000))
		_, err := tr.RoundTrip(req)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindPacketSize {
			t.Fatalf("err = %v; want *Error of kind packet_size", err)
		}
	})
	t.Run("tomcat-smaller-400", func(t *testing.T) {
		fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
			if _, big := req.header("cookie"); !big {
				return c.respond(400, nil, []byte("app: bad request"), 8184, false)
			}
			if err := c.respond(400, nil, []byte("<html>400</html>"), 8184, false); err != nil {
				return err
			}
			return errCloseConn
		})
		var rec errorRecorder
		tr := fc.transport(Options{PacketSize: 16384, OnError: rec.onError})
		req := httptest.NewRequest("GET", "http://example.com/", nil)
		req.Header.Set("Cookie", strings.Repeat("c", 10000))
		resp, err := tr.RoundTrip(req)
		if resp != nil {
			resp.Body.Close()
		}
		var e *Error
		if resp != nil || !errors.As(err, &e) || e.Kind != KindPacketSize {
			t.Fatalf("RoundTrip = %v, %v; want no response and *Error of kind packet_size", resp, err)
		}
		for _, s := range []string{"ajp.packet_size", "400", "16384"} {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("message %q does not contain %q", err, s)
			}
		}
		if kinds, _ := rec.get(); fmt.Sprint(kinds) != "[packet_size]" {
			t.Errorf("OnError kinds = %v; want [packet_size]", kinds)
		}
		// A small Forward Request's 400 is the application's.
		resp, b := roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
		if resp.StatusCode != 400 || b != "app: bad request" {
			t.Errorf("small request: %s %q; want the 400 passed on", resp.Status, b)
		}
	})
}

func TestResponseHeaderTimeout(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
		_, err := c.readPacket() // wait for the client to go away
		if err == nil {
			return errors.New("unexpected packet")
		}
		return errCloseConn
	})
	tr := fc.transport(Options{ResponseHeaderTimeout: 100 * time.Millisecond})
	_, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/", nil))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTimeout {
		t.Fatalf("err = %v; want *Error of kind timeout", err)
	}
	if !strings.Contains(err.Error(), "response_header_timeout") {
		t.Errorf("message %q does not name the setting", err)
	}
}

// TestRouteTimeout: with RouteTimeouts, a request carrying a route's
// timeout waits by it instead of ResponseHeaderTimeout, longer or
// shorter, and a timeout names which one expired. No clock: Tomcat holds
// the heads; the request without a route timeout, sent second, times out
// first, so the one with the longer route timeout has by then waited past
// ResponseHeaderTimeout, and gets its answer when Tomcat lets it go.
func TestRouteTimeout(t *testing.T) {
	arrived, release := make(chan string, 2), make(chan struct{})
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		arrived <- req.URI
		if req.URI != "/long" {
			c.readPacket() // until the client goes away
			return errCloseConn
		}
		<-release
		b := appendSendHeaders(nil, 200, "OK")
		return c.write(appendEndResponse(appendBodyChunk(b, []byte("late")), false))
	})
	tr := fc.transport(Options{ResponseHeaderTimeout: 50 * time.Millisecond, RouteTimeouts: true})
	type result struct {
		resp *http.Response
		err  error
	}
	long := make(chan result, 1)
	go func() {
		req := httptest.NewRequest("GET", "http://example.com/long", nil)
		resp, err := tr.RoundTrip(req.WithContext(backendconn.WithHeaderTimeout(req.Context(), time.Hour)))
		long <- result{resp, err}
	}()
	<-arrived
	_, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/plain", nil))
	var e *Error
	if !errors.As(err, &e) || e.Kind != KindTimeout || !strings.Contains(err.Error(), "response_header_timeout") {
		t.Fatalf("without a route timeout: err = %v; want *Error of kind timeout naming response_header_timeout", err)
	}
	<-arrived
	select {
	case r := <-long:
		t.Fatalf("route timeout 1h: RoundTrip returned (%v) before Tomcat answered", r.err)
	default:
	}
	close(release)
	r := <-long
	if r.err != nil {
		t.Fatalf("route timeout 1h: %v; want Tomcat's late answer", r.err)
	}
	r.resp.Body.Close()

	req := httptest.NewRequest("GET", "http://example.com/short", nil)
	tr = fc.transport(Options{ResponseHeaderTimeout: time.Hour, RouteTimeouts: true})
	_, err = tr.RoundTrip(req.WithContext(backendconn.WithHeaderTimeout(req.Context(), 50*time.Millisecond)))
	if !errors.As(err, &e) || e.Kind != KindTimeout || !strings.Contains(err.Error(), "the route's timeout") {
		t.Fatalf("route timeout 50ms under an hour's response_header_timeout: err = %v; want *Error of kind timeout naming the route's timeout", err)
	}
}

func TestContextCanceledMidBody(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
		b := appendSendHeaders(nil, 200, "200")
		if err := c.write(appendBodyChunk(b, []byte("part"))); err != nil {
			return err
		}
		c.readPacket() // blocks until the client closes
		return errCloseConn
	})
	var rec errorRecorder
	tr := fc.transport(Options{OnError: rec.onError})
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/", nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(resp.Body, buf); err != nil {
		t.Fatal(err)
	}
	go cancel()
	_, err = resp.Body.Read(buf)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Read after cancel = %v; want context.Canceled", err)
	}
	resp.Body.Close()
	if kinds, _ := rec.get(); len(kinds) != 0 {
		t.Errorf("OnError kinds = %v; cancellation is not a backend error", kinds)
	}
}

// TestBodyCloseEarly: closing the body before END_RESPONSE keeps the
// connection only if the rest is already buffered; a big remainder is not
// read just to save the connection.
func TestBodyCloseEarly(t *testing.T) {
	release := make(chan struct{})
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		switch req.URI {
		case "/small":
			return c.respond(200, nil, []byte("0123456789"), 4, true)
		default:
			b := appendSendHeaders(nil, 200, "200")
			if err := c.write(appendBodyChunk(b, make([]byte, 8000))); err != nil {
				return err
			}
			<-release // the rest would be megabytes
			return errCloseConn
		}
	})
	defer close(release)
	tr := fc.transport(Options{})

	resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/small", nil))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	io.ReadFull(resp.Body, buf)
	// The whole response is 3 small chunks and END_RESPONSE: wait until
	// the reader holds it all, then close.
	waitBuffered(t, resp)
	resp.Body.Close()
	if n := tr.idleCount(); n != 1 {
		t.Errorf("after closing a small remainder: %d idle connections; want 1", n)
	}
	if _, err := resp.Body.Read(buf); err == nil {
		t.Errorf("Read after Close succeeded")
	}

	resp, err = tr.RoundTrip(httptest.NewRequest("GET", "http://example.com/big", nil))
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(resp.Body, buf)
	resp.Body.Close()
	if n := tr.idleCount(); n != 0 {
		t.Errorf("after closing a big remainder: %d idle connections; want 0", n)
	}
	if a := fc.accepts.Load(); a != 1 {
		t.Errorf("%d connections; want 1 (the small response's connection reused)", a)
	}
}

// waitBuffered waits until the response's connection has its whole
// remainder in the read buffer (END_RESPONSE is the last 6 bytes).
func waitBuffered(t *testing.T, resp *http.Response) {
	t.Helper()
	br := resp.Body.(*body).ex.pc.br
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		// Peek blocks until the bytes arrive: 3 remaining chunks of
		// 4+3+n+1 bytes (n = 4, 4, 2 minus what was read) and END_RESPONSE.
		if b, err := br.Peek(br.Buffered()); err == nil && bytes.HasSuffix(b, []byte(wireEndReuse)) {
			return
		}
		if _, err := br.Peek(br.Buffered() + 1); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatal("response remainder never arrived")
}

// TestCloseIdleConnections pins net/http's contract: idle connections are
// closed at once, connections finishing later are closed instead of
// pooled, until the next RoundTrip.
func TestCloseIdleConnections(t *testing.T) {
	hold, started := make(chan struct{}), make(chan struct{})
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, raw []byte) error {
		if req.URI == "/slow" {
			close(started)
			<-hold
		}
		return okServe(c, req, raw)
	})
	tr := fc.transport(Options{})
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
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
		roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/slow", nil))
	}()
	<-started // the slow request is on its connection
	tr.CloseIdleConnections()
	close(hold)
	<-done
	if n := tr.idleCount(); n != 0 {
		t.Errorf("request finishing after CloseIdleConnections was pooled (%d idle)", n)
	}
	// The next RoundTrip undoes it.
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
	if n := tr.idleCount(); n != 1 {
		t.Errorf("after the next RoundTrip: %d idle; want 1", n)
	}
}

func TestIdleTimeoutAndMaxIdle(t *testing.T) {
	fc := newFakeContainer(t, okServe)
	tr := fc.transport(Options{IdleTimeout: 50 * time.Millisecond})
	// Two requests on one connection: the idle timer armed by the first
	// stays armed, and when it fires it re-arms itself for the time the
	// connection has been idle since the second.
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
	if n := fc.accepts.Load(); n != 1 {
		t.Fatalf("%d connections for two requests; want 1 (pooled)", n)
	}
	for deadline := time.Now().Add(5 * time.Second); tr.idleCount() != 0; {
		if time.Now().After(deadline) {
			t.Fatal("idle connection not closed after IdleTimeout")
		}
		time.Sleep(5 * time.Millisecond)
	}

	tr = fc.transport(Options{MaxIdle: -1})
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/", nil))
	if n := tr.idleCount(); n != 0 {
		t.Errorf("MaxIdle -1: %d idle; want 0", n)
	}
}

// TestConcurrentRequests runs requests in parallel (under -race) and checks
// every connection carries one request at a time.
func TestConcurrentRequests(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		return c.respond(200, nil, []byte(req.URI), 3, true)
	})
	tr := fc.transport(Options{MaxIdle: 4})
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				path := fmt.Sprintf("/r%d-%d", i, j)
				resp, err := tr.RoundTrip(httptest.NewRequest("GET", "http://example.com"+path, nil))
				if err != nil {
					t.Error(err)
					return
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || string(b) != path {
					t.Errorf("body %q, %v; want %q", b, err, path)
				}
			}
		}()
	}
	wg.Wait()
	if n := tr.idleCount(); n > 4 {
		t.Errorf("%d idle; MaxIdle is 4", n)
	}
}

func TestTLSAttributes(t *testing.T) {
	var got *decodedRequest
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, raw []byte) error {
		got = req
		return okServe(c, req, raw)
	})
	cert := selfSigned(t)
	req := httptest.NewRequest("PATCH", "https://secure.example/p", strings.NewReader("{}"))
	req.TLS = &tls.ConnectionState{
		Version:          tls.VersionTLS13,
		CipherSuite:      tls.TLS_AES_256_GCM_SHA384,
		PeerCertificates: []*x509.Certificate{cert},
	}
	roundTrip(t, fc.transport(Options{}), req)

	if !got.IsSSL || got.ServerPort != 443 || got.Method != "PATCH" || got.MethodCode != MethodStored {
		t.Errorf("is_ssl %v, server_port %d, method %q (code %v)", got.IsSSL, got.ServerPort, got.Method, got.MethodCode)
	}
	attrs := []struct {
		code AttributeCode
		want string
	}{
		{AttrSSLCipher, "TLS_AES_256_GCM_SHA384"},
		{AttrSSLKeySize, "256"},
		{AttrStoredMeth, "PATCH"},
	}
	for _, a := range attrs {
		if v, _ := got.attr(a.code); v != a.want {
			t.Errorf("attribute %v = %q; want %q", a.code, v, a.want)
		}
	}
	if v, _ := got.reqAttr(ReqAttrSSLProtocol); v != "TLSv1.3" {
		t.Errorf("AJP_SSL_PROTOCOL = %q", v)
	}
	pemCert, _ := got.attr(AttrSSLCert)
	if !strings.HasPrefix(pemCert, "-----BEGIN CERTIFICATE-----\n") {
		t.Errorf("ssl_cert = %.40q; want PEM", pemCert)
	}
	if v, _ := got.header("content-length"); v != "2" {
		t.Errorf("content-length = %q", v)
	}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestRealTLSSessionID checks ssl_session with a real TLS connection state:
// stable for one connection, hex.
func TestRealTLSSessionID(t *testing.T) {
	var ids []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids = append(ids, tlsSessionID(r.TLS))
	}))
	defer srv.Close()
	c := srv.Client()
	for range 2 {
		resp, err := c.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if len(ids) != 2 || len(ids[0]) != 32 || ids[0] != ids[1] {
		t.Errorf("session ids %q; want two equal 32-hex-digit ids", ids)
	}
}

// TestRoundTripInterruptible: Fire ends a request that waits for its
// response headers, with the cause in the error and the connection
// closed; a request whose Interrupt fired before it started never reaches
// Tomcat. Neither is retried, and neither is a backend error.
func TestRoundTripInterruptible(t *testing.T) {
	arrived := make(chan struct{}, 1)
	var hits atomic.Int32
	fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
		hits.Add(1)
		arrived <- struct{}{}
		_, err := c.readPacket() // no answer: wait for the client to close
		if err == nil {
			return errors.New("unexpected packet")
		}
		return errCloseConn
	})
	var rec errorRecorder
	// Only Fire can end the first case in time: the timeout is a safety net.
	tr := fc.transport(Options{ResponseHeaderTimeout: 30 * time.Second, OnError: rec.onError})
	cause := errors.New("address ejected")
	tests := []struct {
		name     string
		fireLate bool // fire once the request reached Tomcat; else before it starts
		hits     int32
	}{
		{"while waiting for headers", true, 1},
		{"before the request", false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hits.Store(0)
			var in interrupt.Interrupt
			if tc.fireLate {
				go func() {
					<-arrived
					in.Fire(cause)
				}()
			} else {
				in.Fire(cause)
			}
			_, err := tr.RoundTripInterruptible(httptest.NewRequest("GET", "http://example.com/", nil), &in)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindCanceled || !errors.Is(err, cause) {
				t.Fatalf("err = %v; want *Error of kind canceled wrapping %q", err, cause)
			}
			if n := hits.Load(); n != tc.hits {
				t.Errorf("Tomcat saw %d requests; want %d (no retry)", n, tc.hits)
			}
			if n := tr.idleCount(); n != 0 {
				t.Errorf("%d pooled connections after an interrupted request; want 0", n)
			}
		})
	}
	if kinds, _ := rec.get(); len(kinds) != 0 {
		t.Errorf("OnError kinds = %v; an interrupted request is not a backend error", kinds)
	}
}

// TestRequestIDAttribute: with RequestIDAttribute set, the request id
// header's value also goes as a request attribute of the configured name;
// without it, no attribute is sent (Tomcat refuses unknown ones with 403).
func TestRequestIDAttribute(t *testing.T) {
	for _, attrName := range []string{"X_REQUEST_ID", ""} {
		var got *decodedRequest
		fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, raw []byte) error {
			got = req
			return okServe(c, req, raw)
		})
		tr := fc.transport(Options{Secret: "s", RequestIDAttribute: attrName, RequestIDHeader: "X-Request-Id"})
		req := httptest.NewRequest("GET", "http://example.com/x", nil)
		req.Header.Set("X-Request-Id", "abc123")
		roundTrip(t, tr, req)
		v, ok := got.reqAttr("X_REQUEST_ID")
		if attrName != "" && v != "abc123" {
			t.Errorf("attribute X_REQUEST_ID = %q, %v; want abc123", v, ok)
		}
		if attrName == "" && ok {
			t.Errorf("attribute X_REQUEST_ID sent without RequestIDAttribute")
		}
		if hv, _ := got.header("X-Request-Id"); hv != "abc123" {
			t.Errorf("header X-Request-Id = %q; want abc123", hv)
		}
	}
}
