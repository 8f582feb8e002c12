package h1

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// sortedHead returns raw with the header lines of its head sorted, so
// that heads written from a map compare byte for byte (each line keeps
// its CRLF).
func sortedHead(raw string) string {
	head, body, _ := strings.Cut(raw, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	slices.Sort(lines[1:])
	return strings.Join(lines, "\r\n") + "\r\n\r\n" + body
}

// TestRequestHead pins the bytes a request puts on the wire.
func TestRequestHead(t *testing.T) {
	tests := []struct {
		name   string
		method string
		url    string
		host   string // req.Host
		header http.Header
		body   string // sent with ContentLength len(body) unless chunked
		empty  bool   // http.NoBody
		chunk  bool   // ContentLength -1
		trail  http.Header
		close  bool // req.Close
		opts   Options
		want   string
	}{
		{name: "get", method: "GET", url: "http://backend.test/a/b?x=1&y=%20",
			header: http.Header{"X-A": {"1"}},
			want:   "GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: backend.test\r\nX-A: 1\r\n\r\n"},
		{name: "host-from-request", method: "GET", url: "http://10.0.0.1:8080/", host: "www.example.com",
			want: "GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n"},
		{name: "host-from-url-with-port", method: "GET", url: "http://10.0.0.1:8080/",
			want: "GET / HTTP/1.1\r\nHost: 10.0.0.1:8080\r\n\r\n"},
		{name: "escaped-path", method: "GET", url: "http://b/a%20b/c%2Fd?q",
			want: "GET /a%20b/c%2Fd?q HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "empty-path", method: "GET", url: "http://b",
			want: "GET / HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "empty-method-is-get", method: "", url: "http://b/",
			want: "GET / HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "head", method: "HEAD", url: "http://b/x",
			want: "HEAD /x HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "multiple-values", method: "GET", url: "http://b/",
			header: http.Header{"X-M": {"a", "b"}, "Accept": {"*/*"}},
			want:   "GET / HTTP/1.1\r\nAccept: */*\r\nHost: b\r\nX-M: a\r\nX-M: b\r\n\r\n"},
		{name: "upgrade-kept", method: "GET", url: "http://b/ws",
			header: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}},
			want:   "GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nHost: b\r\nUpgrade: websocket\r\n\r\n"},
		{name: "framing-headers-are-ours", method: "GET", url: "http://b/",
			header: http.Header{"Host": {"evil"}, "Content-Length": {"99"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}},
			want:   "GET / HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "no-default-user-agent", method: "GET", url: "http://b/",
			header: http.Header{"User-Agent": {""}},
			want:   "GET / HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "user-agent-passed", method: "GET", url: "http://b/",
			header: http.Header{"User-Agent": {"curl/8"}},
			want:   "GET / HTTP/1.1\r\nHost: b\r\nUser-Agent: curl/8\r\n\r\n"},
		{name: "post-content-length", method: "POST", url: "http://b/p", body: "hello",
			want: "POST /p HTTP/1.1\r\nContent-Length: 5\r\nHost: b\r\n\r\nhello"},
		{name: "post-chunked", method: "POST", url: "http://b/p", body: "hello", chunk: true,
			want: "POST /p HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"},
		{name: "post-chunked-trailer", method: "POST", url: "http://b/p", body: "hello", chunk: true,
			trail: http.Header{"X-Sum": {"abc"}},
			want:  "POST /p HTTP/1.1\r\nHost: b\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: abc\r\n\r\n"},
		{name: "post-chunked-empty", method: "POST", url: "http://b/p", chunk: true,
			want: "POST /p HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
		{name: "post-zero-length", method: "POST", url: "http://b/p",
			want: "POST /p HTTP/1.1\r\nContent-Length: 0\r\nHost: b\r\n\r\n"},
		{name: "put-no-body", method: "PUT", url: "http://b/p", empty: true,
			want: "PUT /p HTTP/1.1\r\nContent-Length: 0\r\nHost: b\r\n\r\n"},
		{name: "patch-zero-length", method: "PATCH", url: "http://b/p",
			want: "PATCH /p HTTP/1.1\r\nContent-Length: 0\r\nHost: b\r\n\r\n"},
		{name: "delete-zero-length", method: "DELETE", url: "http://b/p",
			want: "DELETE /p HTTP/1.1\r\nHost: b\r\n\r\n"},
		{name: "request-close", method: "GET", url: "http://b/", close: true,
			want: "GET / HTTP/1.1\r\nConnection: close\r\nHost: b\r\n\r\n"},
		{name: "close-already-said", method: "GET", url: "http://b/", close: true,
			header: http.Header{"Connection": {"close"}},
			want:   "GET / HTTP/1.1\r\nConnection: close\r\nHost: b\r\n\r\n"},
		{name: "keep-alive-off", method: "GET", url: "http://b/", opts: Options{MaxIdle: -1},
			want: "GET / HTTP/1.1\r\nConnection: close\r\nHost: b\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan string, 1)
			p := newPeer(t, func(c *peerConn) {
				_, _, raw, err := c.readRequest()
				if err != nil {
					got <- "error: " + err.Error()
					return
				}
				got <- raw
				c.write(ok204)
			})
			tr := p.transport(tt.opts)
			var body io.Reader
			if tt.body != "" || tt.chunk {
				body = strings.NewReader(tt.body)
			}
			req, err := http.NewRequest(tt.method, tt.url, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.empty {
				req.Body = http.NoBody
			}
			if tt.chunk {
				// NewRequest makes an empty body NoBody; chunked wants a real one.
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader(tt.body)), -1
			}
			req.Method = tt.method
			req.Trailer = tt.trail
			req.Close = tt.close
			if tt.host != "" {
				req.Host = tt.host
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, _ := roundTrip(t, tr, req)
			if resp.StatusCode != 204 {
				t.Errorf("status %d; want 204", resp.StatusCode)
			}
			if g := sortedHead(<-got); g != sortedHead(tt.want) {
				t.Errorf("sent\n%q\nwant\n%q", g, sortedHead(tt.want))
			}
		})
	}
}

// TestInvalidRequestRejected: header injection and other requests that
// cannot be written are refused before a connection is even made.
func TestInvalidRequestRejected(t *testing.T) {
	tests := []struct {
		name   string
		modify func(r *http.Request)
	}{
		{"value-crlf", func(r *http.Request) { r.Header.Set("X-A", "v\r\nX-Injected: 1") }},
		{"value-lf", func(r *http.Request) { r.Header.Set("X-A", "v\nX-Injected: 1") }},
		{"value-cr", func(r *http.Request) { r.Header.Set("X-A", "v\rX") }},
		{"value-nul", func(r *http.Request) { r.Header.Set("X-A", "v\x00") }},
		{"value-del", func(r *http.Request) { r.Header.Set("X-A", "v\x7f") }},
		{"name-space", func(r *http.Request) { r.Header["Bad Name"] = []string{"v"} }},
		{"name-colon", func(r *http.Request) { r.Header["X-A:b"] = []string{"v"} }},
		{"name-crlf", func(r *http.Request) { r.Header["X-A\r\nX-Injected"] = []string{"1"} }},
		{"name-empty", func(r *http.Request) { r.Header[""] = []string{"v"} }},
		{"user-agent-crlf", func(r *http.Request) { r.Header.Set("User-Agent", "a\r\nX-Injected: 1") }},
		{"method", func(r *http.Request) { r.Method = "GET /x HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET" }},
		{"host", func(r *http.Request) { r.Host = "b\r\nX-Injected: 1" }},
		{"host-space", func(r *http.Request) { r.Host = "b c" }},
		{"no-host", func(r *http.Request) { r.Host, r.URL.Host = "", "" }},
		{"query", func(r *http.Request) { r.URL.RawQuery = "a=1 HTTP/1.1\r\nX-Injected: 1" }},
		{"content-length-without-body", func(r *http.Request) { r.ContentLength = 5 }},
		{"trailer-name", func(r *http.Request) {
			r.Method, r.Body, r.ContentLength = "POST", io.NopCloser(strings.NewReader("x")), -1
			r.Trailer = http.Header{"X\r\nY": nil}
		}},
		{"nil-url", func(r *http.Request) { r.URL = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPeer(t, serveAll(ok204))
			tr := p.transport(Options{})
			req, err := http.NewRequest("GET", "http://b/", nil)
			if err != nil {
				t.Fatal(err)
			}
			tt.modify(req)
			resp, err := tr.RoundTrip(req)
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("RoundTrip = %v, %v; want an error wrapping ErrInvalidRequest", resp, err)
			}
			if n := p.accepts.Load(); n != 0 {
				t.Errorf("%d connections made for an invalid request; want none", n)
			}
		})
	}
}

// TestInvalidTrailerValue: a trailer value is only known once the body
// has been read, so it is checked as it is written; it never reaches the
// backend and the connection is closed.
func TestInvalidTrailerValue(t *testing.T) {
	got := make(chan string, 1)
	p := newPeer(t, func(c *peerConn) {
		c.readRequest()
		got <- string(c.got)
	})
	tr := p.transport(Options{})
	req, _ := http.NewRequest("POST", "http://b/", strings.NewReader("hello"))
	req.ContentLength = -1
	req.Trailer = http.Header{"X-Sum": {"abc\r\nX-Injected: 1"}}
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("RoundTrip error %v; want one wrapping ErrInvalidRequest", err)
	}
	if g := <-got; strings.Contains(g, "Injected") {
		t.Errorf("backend received %q", g)
	}
	if n := tr.idleCount(); n != 0 {
		t.Errorf("%d idle connections; want 0", n)
	}
}

// TestRequestBodyClosed: RoundTrip closes the request body whatever
// happens (http.RoundTripper's contract).
func TestRequestBodyClosed(t *testing.T) {
	tests := []struct {
		name  string
		serve func(c *peerConn)
		mod   func(r *http.Request)
	}{
		{name: "success", serve: serveAll(ok204)},
		{name: "invalid", serve: serveAll(ok204), mod: func(r *http.Request) { r.Header.Set("X", "\n") }},
		{name: "connection-refused", mod: func(r *http.Request) {}},
		{name: "backend-closes", serve: func(c *peerConn) { c.readRequest() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serve := tt.serve
			if serve == nil {
				serve = func(*peerConn) {}
			}
			p := newPeer(t, serve)
			tr := p.transport(Options{})
			if tt.serve == nil {
				p.ln.Close() // connects are refused
			}
			b := newTrackedBody(strings.NewReader("hello"))
			req, _ := http.NewRequest("POST", "http://b/", b)
			req.ContentLength = 5
			if tt.mod != nil {
				tt.mod(req)
			}
			if resp, err := tr.RoundTrip(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			<-b.closed
		})
	}
}
