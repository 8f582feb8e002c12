package frontend

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// fastProxy runs a Server in front of a backend with handler h and returns
// the proxy's address.
func fastProxy(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	backend := httptest.NewServer(h)
	t.Cleanup(backend.Close)
	fe, _ := startProxy(t, oneUpstream(t, backend, nil))
	return strings.TrimPrefix(fe, "http://")
}

// rawConn is a client connection that writes exact bytes and reads
// responses with net/http's parser.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// A safety net, not a measurement: a hang fails the test instead of
	// the whole run.
	c.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(raw string) {
	r.t.Helper()
	if _, err := io.WriteString(r.c, raw); err != nil {
		r.t.Fatal(err)
	}
}

// read reads one response to a request with method and returns it with its
// body.
func (r *rawConn) read(method string) (*http.Response, string) {
	r.t.Helper()
	resp, err := http.ReadResponse(r.br, &http.Request{Method: method})
	if err != nil {
		r.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// closed reports whether the proxy closed the connection (EOF, nothing
// more).
func (r *rawConn) closed() bool {
	_, err := r.br.ReadByte()
	return err == io.EOF
}

func echoPath(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Method", r.Method)
	w.Header().Set("X-Body-Length", strconv.Itoa(len(b)))
	io.WriteString(w, r.URL.RequestURI())
}

// Keep-alive, pipelining and HTTP/1.0 connection handling, byte for byte
// from the client's side.
func TestFast_connectionHandling(t *testing.T) {
	addr := fastProxy(t, echoPath)
	tests := []struct {
		name      string
		requests  string   // written at once
		methods   []string // one per expected response
		bodies    []string
		wantConn  string // Connection header of the last response
		wantClose bool   // the proxy closes after the last response
	}{
		{name: "keep-alive", requests: "GET /a HTTP/1.1\r\nHost: x\r\n\r\n",
			methods: []string{"GET"}, bodies: []string{"/a"}},
		{name: "pipelined", requests: "GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b?q=1 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\n\r\n",
			methods: []string{"GET", "GET", "HEAD"}, bodies: []string{"/a", "/b?q=1", ""}},
		{name: "client-close", requests: "GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			methods: []string{"GET"}, bodies: []string{"/a"}, wantConn: "close", wantClose: true},
		{name: "http10", requests: "GET /a HTTP/1.0\r\nHost: x\r\n\r\n",
			methods: []string{"GET"}, bodies: []string{"/a"}, wantConn: "close", wantClose: true},
		{name: "http10-keep-alive", requests: "GET /a HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n",
			methods: []string{"GET"}, bodies: []string{"/a"}, wantConn: "keep-alive"},
		{name: "post-content-length", requests: "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			methods: []string{"POST", "GET"}, bodies: []string{"/p", "/after"}},
		{name: "post-chunked", requests: "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n",
			methods: []string{"POST", "GET"}, bodies: []string{"/p", "/after"}},
		{name: "bare-lf-handed-to-net-http", requests: "GET /lf HTTP/1.1\nHost: x\n\n",
			methods: []string{"GET"}, bodies: []string{"/lf"}},
		{name: "big-head-handed-to-net-http", requests: "GET /big HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 6<<10) + "\r\nX-A: " + strings.Repeat("a", 6<<10) + "\r\nX-B: " + strings.Repeat("b", 6<<10) + "\r\n\r\n",
			methods: []string{"GET"}, bodies: []string{"/big"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.send(tt.requests)
			var last *http.Response
			for i, m := range tt.methods {
				resp, body := c.read(m)
				if resp.StatusCode != 200 || body != tt.bodies[i] {
					t.Fatalf("response %d: %d %q; want 200 %q", i, resp.StatusCode, body, tt.bodies[i])
				}
				if m == "HEAD" && resp.ContentLength != int64(len("/c")) {
					t.Errorf("HEAD Content-Length = %d; want the GET's %d", resp.ContentLength, len("/c"))
				}
				last = resp
			}
			// net/http's parser turns Connection: close into Close.
			if got := last.Header.Get("Connection"); got != tt.wantConn && !(tt.wantConn == "close" && last.Close) {
				t.Errorf("Connection = %q (Close %v); want %q", got, last.Close, tt.wantConn)
			}
			if tt.wantClose && !c.closed() {
				t.Errorf("connection still open; want closed after Connection: close")
			}
		})
	}
}

// The request body reaches the backend with its length, chunked or not.
func TestFast_requestBodyLengths(t *testing.T) {
	addr := fastProxy(t, echoPath)
	c := dialRaw(t, addr)
	c.send("PUT /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
	resp, _ := c.read("PUT")
	if got := resp.Header.Get("X-Body-Length"); got != "5" {
		t.Errorf("backend read %s body bytes; want 5", got)
	}
}

// Requests net/http's server would refuse are refused the same way, and
// the connection closes.
func TestFast_badRequests(t *testing.T) {
	addr := fastProxy(t, echoPath)
	tests := []struct {
		name, raw string
		want      int
	}{
		{"no-host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
		{"bad-host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
		{"two-content-lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"unknown-transfer-encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"bad-header-name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400},
		{"h2c-preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.send(tt.raw)
			resp, _ := c.read("GET")
			if resp.StatusCode != tt.want && !(tt.want == 501 && resp.StatusCode == 400) {
				t.Errorf("status = %d; want %d", resp.StatusCode, tt.want)
			}
			if !c.closed() {
				t.Errorf("connection open after a bad request; want closed")
			}
		})
	}
}

// Responses without a length are chunked for HTTP/1.1 clients (with the
// backend's trailers) and end with the connection for HTTP/1.0 ones; small
// ones the proxy generates itself get a Content-Length.
func TestFast_responseFraming(t *testing.T) {
	addr := fastProxy(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "part1,")
		w.(http.Flusher).Flush()
		io.WriteString(w, "part2")
		w.Header().Set("X-Checksum", "abc")
	})
	c := dialRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\nTE: trailers\r\n\r\n")
	resp, body := c.read("GET")
	if body != "part1,part2" || len(resp.TransferEncoding) != 1 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("HTTP/1.1: body %q transfer-encoding %v; want chunked part1,part2", body, resp.TransferEncoding)
	}
	if got := resp.Trailer.Get("X-Checksum"); got != "abc" {
		t.Errorf("trailer X-Checksum = %q; want abc", got)
	}
	c10 := dialRaw(t, addr)
	c10.send("GET / HTTP/1.0\r\nHost: x\r\n\r\n")
	resp, body = c10.read("GET")
	if body != "part1,part2" || resp.ContentLength != -1 || !c10.closed() {
		t.Errorf("HTTP/1.0: body %q length %d; want part1,part2 ending with the connection", body, resp.ContentLength)
	}
	c404 := dialRaw(t, addr)
	c404.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c404.read("GET"); resp.Header.Get("Date") == "" {
		t.Errorf("no Date header")
	}
}

// A backend that breaks off a response with a declared length: the client
// sees the connection end instead of waiting for the missing bytes.
func TestFast_truncatedResponseClosesConnection(t *testing.T) {
	addr := fastProxy(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only ten b")
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the backend drops the connection
	})
	c := dialRaw(t, addr)
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err == nil || len(b) >= 100 {
		t.Errorf("read %d bytes, err %v; want a short body and an unexpected EOF", len(b), err)
	}
}

// An Upgrade request goes to net/http's server with what was already read,
// and the upgraded connection carries bytes both ways.
func TestFast_upgradeHandedOff(t *testing.T) {
	addr := fastProxy(t, proxytest.UpgradeEcho)
	c := dialRaw(t, addr)
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status = %d; want 101", resp.StatusCode)
	}
	c.send("ping\n")
	line, err := c.br.ReadString('\n')
	if line != "echo: ping\n" {
		t.Errorf("after upgrade read %q, %v; want \"echo: ping\\n\"", line, err)
	}
}

// Expect: 100-continue is handed to net/http, which sends 100 Continue
// before the body is read.
func TestFast_expectContinue(t *testing.T) {
	addr := fastProxy(t, echoPath)
	c := dialRaw(t, addr)
	c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
	line, err := c.br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("first line %q, %v; want HTTP/1.1 100 Continue", line, err)
	}
	c.br.ReadString('\n') // the empty line ending the 100 response
	c.send("abc")
	resp, body := c.read("POST")
	if resp.StatusCode != 200 || body != "/e" || resp.Header.Get("X-Body-Length") != "3" {
		t.Errorf("got %d %q body length %s; want 200 /e 3", resp.StatusCode, body, resp.Header.Get("X-Body-Length"))
	}
}

// Shutdown closes idle keep-alive connections at once and lets a request
// in flight finish, telling its client the connection ends.
func TestFast_shutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}))
	defer backend.Close()
	s, err := NewServer(oneUpstreamWithListener(t, backend), nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx) }()
	addr := s.Addrs()[0].String()

	idle := dialRaw(t, addr)
	idle.send("GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.read("GET")
	busy := dialRaw(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started

	cancel()
	if !idle.closed() {
		t.Errorf("idle connection not closed by shutdown")
	}
	close(release)
	resp, body := busy.read("GET")
	if body != "done" || !resp.Close {
		t.Errorf("in-flight request: %q Close %v; want done, Connection: close", body, resp.Close)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func oneUpstreamWithListener(t *testing.T, backend *httptest.Server) proxy.Options {
	o := oneUpstream(t, backend, nil)
	o.Listeners = []proxy.ListenerOptions{{Name: "test", Address: "127.0.0.1:0"}}
	return o
}

// A client that sends its request and then half-closes still gets the
// answer (the idle poller sees the hang-up and the request together).
func TestFast_requestThenHalfClose(t *testing.T) {
	addr := fastProxy(t, echoPath)
	c := dialRaw(t, addr)
	c.send("GET /half HTTP/1.1\r\nHost: x\r\n\r\n")
	if err := c.c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if resp, body := c.read("GET"); resp.StatusCode != 200 || body != "/half" {
		t.Errorf("got %d %q; want 200 /half", resp.StatusCode, body)
	}
}

// An idle keep-alive connection is closed after the listener's
// idle_timeout, and one that never sends a request after
// read_header_timeout.
func TestFast_idleTimeouts(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(echoPath))
	defer backend.Close()
	o := oneUpstream(t, backend, nil)
	o.Listeners = []proxy.ListenerOptions{{Name: "test", Address: "127.0.0.1:0",
		IdleTimeout: 500 * time.Millisecond, ReadHeaderTimeout: 500 * time.Millisecond}}
	addr := serve(t, o)[0].String()

	idle := dialRaw(t, addr)
	idle.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	idle.read("GET")
	silent := dialRaw(t, addr)
	for name, c := range map[string]*rawConn{"idle after a request": idle, "silent": silent} {
		if !c.closed() {
			t.Errorf("%s: connection not closed by the proxy", name)
		}
	}
}

// A request head that stops halfway is answered 408 and the connection
// closed after read_header_timeout, on a connection's first request and on
// a later one. (The head deadline is set only when a head needs a second
// read, so this is the path that sets it.)
func TestFast_partialHeadTimesOut(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(echoPath))
	defer backend.Close()
	o := oneUpstream(t, backend, nil)
	o.Listeners = []proxy.ListenerOptions{{Name: "test", Address: "127.0.0.1:0",
		IdleTimeout: time.Minute, ReadHeaderTimeout: 300 * time.Millisecond}}
	addr := serve(t, o)[0].String()

	first := dialRaw(t, addr)
	first.send("GET /a HTTP/1.1\r\nHost: x\r\n")
	later := dialRaw(t, addr)
	later.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, body := later.read("GET"); resp.StatusCode != 200 || body != "/a" {
		t.Fatalf("first request: %d %q", resp.StatusCode, body)
	}
	later.send("GET /b HTTP/1.1\r\nHo")
	for name, c := range map[string]*rawConn{"first request": first, "second request": later} {
		if resp, _ := c.read("GET"); resp.StatusCode != http.StatusRequestTimeout {
			t.Errorf("%s: status %d; want 408", name, resp.StatusCode)
		}
		if !c.closed() {
			t.Errorf("%s: connection not closed by the proxy", name)
		}
	}
}

// A client that connects and sends its first request only later (the
// worker's first read found nothing, so the connection went to the idle
// poller) is served when the request comes. Most clients send at once;
// this is the other path.
func TestFast_firstRequestAfterConnect(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newFastServer(ln, &http.Server{}, http.HandlerFunc(echoPath), proxy.ListenerOptions{}, zap.NewNop())
	if err != nil {
		t.Skip(err) // no epoll here
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		s.Close()
		if err := <-done; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()

	c := dialRaw(t, ln.Addr().String())
	// Wait (a condition, not a duration) until the server has parked the
	// connection: its state turns idle only in park.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		s.mu.Lock()
		parked := 0
		for fc := range s.conns {
			if fc.state.Load() == connIdle {
				parked++
			}
		}
		s.mu.Unlock()
		if parked == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("connection never parked")
		}
	}
	for _, path := range []string{"/first", "/second"} {
		c.send("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, body := c.read("GET"); resp.StatusCode != 200 || body != path {
			t.Fatalf("%s: got %d %q", path, resp.StatusCode, body)
		}
	}
}

// Clients that send their next request the moment the previous response
// arrives race the worker parking their connection: the poller's edge can
// come while the worker still has it, or be delivered after the worker
// read its bytes (a stale edge, with pipelining). No request may wait for an edge that came
// already, and no connection may be left on a worker blocked without a
// deadline: after the burst, every connection goes idle and is closed by
// idle_timeout.
func TestFast_backToBackRequestsAreNeverLost(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(echoPath))
	defer backend.Close()
	o := oneUpstream(t, backend, nil)
	o.Listeners = []proxy.ListenerOptions{{Name: "test", Address: "127.0.0.1:0",
		IdleTimeout: 500 * time.Millisecond, ReadHeaderTimeout: 500 * time.Millisecond}}
	addr := serve(t, o)[0].String()
	const clients, requests = 32, 300
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			// A safety net, not a measurement: a lost request or a
			// connection never closed fails here instead of hanging.
			c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for i := range requests {
				// Every other turn pipelines two requests: the worker
				// reads the second with the first, and the edge its
				// bytes caused comes to the poller stale.
				req := "GET /n HTTP/1.1\r\nHost: x\r\n\r\n"
				n := 1 + i%2
				if _, err := io.WriteString(c, strings.Repeat(req, n)); err != nil {
					errs <- err
					return
				}
				for range n {
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						errs <- fmt.Errorf("request %d: %w", i, err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
			if _, err := br.ReadByte(); err != io.EOF {
				errs <- fmt.Errorf("after the burst: %v; want the proxy to close the idle connection", err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A request's context carries net/http's server and the connection's
// local address (the AJP client sends it to Tomcat), and is never done
// while the client waits: derived contexts work as from Background.
func TestFast_requestContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
		defer cancel()
		fmt.Fprintf(w, "local=%v server=%v err=%v", ctx.Value(http.LocalAddrContextKey),
			ctx.Value(http.ServerContextKey) == srv, ctx.Err())
	})
	s, err := newFastServer(ln, srv, h, proxy.ListenerOptions{}, zap.NewNop())
	if err != nil {
		t.Skip(err) // no epoll here
	}
	go s.Serve() //nolint:errcheck // ends with Close
	defer s.Close()
	c := dialRaw(t, ln.Addr().String())
	c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	want := fmt.Sprintf("local=%v server=true err=<nil>", ln.Addr())
	if _, body := c.read("GET"); body != want {
		t.Errorf("got %q; want %q", body, want)
	}
}
