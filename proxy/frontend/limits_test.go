package frontend

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// recorder is a backend that records the requests that reach it and
// reports each request whose body read or response write failed: the
// proxy closed the backend connection under it.
type recorder struct {
	mu     sync.Mutex
	paths  []string
	broken chan string
}

func (rec *recorder) seen() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.paths...)
}

// limitsProxy runs a proxy with a plain and a TLS listener, both with lo's
// limits and timeouts, in front of a recorder whose handler is h (which
// returns the error that broke the request, if any).
func limitsProxy(t *testing.T, lo proxy.ListenerOptions, h func(w http.ResponseWriter, r *http.Request) error) (*recorder, map[string]func(t *testing.T) *rawConn) {
	t.Helper()
	rec := &recorder{broken: make(chan string, 16)}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.paths = append(rec.paths, r.URL.Path)
		rec.mu.Unlock()
		if err := h(w, r); err != nil {
			rec.broken <- r.URL.Path
		}
	}))
	t.Cleanup(backend.Close)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	opts := oneUpstream(t, backend, nil)
	plain, tlsL := lo, lo
	plain.Name, plain.Address = "plain", "127.0.0.1:0"
	tlsL.Name, tlsL.Address = "tls", "127.0.0.1:0"
	tlsL.TLS = &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}
	opts.Listeners = []proxy.ListenerOptions{plain, tlsL}
	addrs := serve(t, opts)
	dialPlain := func(t *testing.T) *rawConn { return dialRaw(t, addrs[0].String()) }
	return rec, map[string]func(t *testing.T) *rawConn{
		"fast":    dialPlain,
		"handoff": dialPlain, // the requests carry Expect: 100-continue
		"tls-h1": func(t *testing.T) *rawConn {
			c, err := tls.Dial("tcp", addrs[1].String(), &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			c.SetDeadline(time.Now().Add(30 * time.Second)) // a safety net, not a measurement
			return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
		},
	}
}

// head builds a request head; on the "handoff" path it asks for 100
// Continue, which the fast path hands to net/http.
func head(path, first string, fields ...string) string {
	var b strings.Builder
	b.WriteString(first + "\r\nHost: x\r\n")
	if path == "handoff" {
		b.WriteString("Expect: 100-continue\r\n")
	}
	for _, f := range fields {
		b.WriteString(f + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// readFinal reads responses until a final one (skipping 100 Continue).
func (r *rawConn) readFinal(method string) (*http.Response, string) {
	r.t.Helper()
	for {
		resp, body := r.read(method)
		if resp.StatusCode != http.StatusContinue {
			return resp, body
		}
	}
}

func repeatField(n int, f string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f
	}
	return out
}

// Heads over a limit are answered 414 or 431 and the connection closed,
// on every HTTP/1 path, and nothing reaches the backend. A head within
// the limits goes through.
func TestLimits_requestHead(t *testing.T) {
	rec, paths := limitsProxy(t, proxy.ListenerOptions{}, func(w http.ResponseWriter, r *http.Request) error {
		io.WriteString(w, "ok")
		return nil
	})
	bigFields := make([]string, 10)
	for i := range bigFields {
		bigFields[i] = "X-Big" + string(rune('a'+i)) + ": " + strings.Repeat("v", 7<<10)
	}
	tests := []struct {
		name   string
		first  string // request line
		fields []string
		want   int
		// net/http bounds only the whole head: a request line longer
		// than max_header_size is 431 there.
		wantNetHTTP int
	}{
		{name: "100-fields-ok", first: "GET /ok HTTP/1.1", fields: repeatField(98, "X-F: v"), want: 200},
		{name: "101-fields", first: "GET /fields HTTP/1.1", fields: repeatField(100, "X-F: v"), want: 431},
		{name: "9KiB-field", first: "GET /field HTTP/1.1", fields: []string{"X-Big: " + strings.Repeat("v", 9<<10)}, want: 431},
		{name: "70KiB-head", first: "GET /head HTTP/1.1", fields: bigFields, want: 431},
		{name: "9KiB-uri", first: "GET /" + strings.Repeat("u", 9<<10) + " HTTP/1.1", want: 414},
		{name: "900KiB-uri", first: "GET /" + strings.Repeat("u", 900<<10) + " HTTP/1.1", want: 414, wantNetHTTP: 431},
	}
	for _, path := range []string{"fast", "handoff", "tls-h1"} {
		for _, tt := range tests {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				fields := tt.fields
				if path == "handoff" && len(fields) > 0 && fields[0] == "X-F: v" {
					fields = fields[1:] // Expect takes one field's place
				}
				c := paths[path](t)
				raw := head(path, tt.first, fields...)
				go c.c.Write([]byte(raw)) //nolint:errcheck // the proxy may stop reading
				resp, err := http.ReadResponse(c.br, nil)
				if err != nil {
					t.Fatalf("reading the response: %v", err)
				}
				// net/http's server closes while the client still
				// sends: the body may end in a reset, which is fine.
				io.Copy(io.Discard, resp.Body)
				want := tt.want
				if path == "tls-h1" && tt.wantNetHTTP != 0 {
					want = tt.wantNetHTTP
				}
				if resp.StatusCode != want {
					t.Fatalf("status %d; want %d", resp.StatusCode, want)
				}
				if want == 200 {
					return
				}
				if _, err := c.br.ReadByte(); !resp.Close || err == nil {
					t.Errorf("connection kept (Close %v); want it closed", resp.Close)
				}
			})
		}
	}
	for _, p := range rec.seen() {
		if p != "/ok" {
			t.Errorf("backend received %.40q; want only /ok", p)
		}
	}
}

// A request body sent slower than body_min_rate after body_timeout is
// answered 408 and the connection closed, and the backend connection is
// closed (the backend's body read fails), on every HTTP/1 path.
func TestLimits_slowBody(t *testing.T) {
	rec, paths := limitsProxy(t, proxy.ListenerOptions{BodyTimeout: 200 * time.Millisecond, BodyMinRate: 1000},
		func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.ReadAll(r.Body)
			if err == nil {
				io.WriteString(w, "got it all")
			}
			return err
		})
	for _, path := range []string{"fast", "handoff", "tls-h1"} {
		t.Run(path, func(t *testing.T) {
			c := paths[path](t)
			c.send(head(path, "POST /slow-"+path+" HTTP/1.1", "Content-Length: 1000"))
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				// One byte every 20 ms: 50 B/s against a minimum of
				// 1000 B/s. The sender stops when the proxy closes.
				t := time.NewTicker(20 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if _, err := c.c.Write([]byte("x")); err != nil {
							return
						}
					}
				}
			}()
			resp, _ := c.readFinal("POST")
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("status %d; want 408", resp.StatusCode)
			}
			if !resp.Close || !c.closed() {
				t.Errorf("connection kept (Close %v); want it closed", resp.Close)
			}
			select {
			case p := <-rec.broken:
				if p != "/slow-"+path {
					t.Errorf("backend request %s broke; want /slow-%s", p, path)
				}
			case <-time.After(20 * time.Second): // a safety net, not a measurement
				t.Errorf("the backend connection is still open")
			}
		})
	}
}

// A client that never reads a large response: after write_timeout without
// progress the proxy closes its connection and the backend connection
// (the backend's write fails), on every HTTP/1 path.
func TestLimits_neverReadingClient(t *testing.T) {
	const size = 20 << 20
	rec, paths := limitsProxy(t, proxy.ListenerOptions{WriteTimeout: 200 * time.Millisecond},
		func(w http.ResponseWriter, r *http.Request) error {
			w.Header().Set("Content-Length", "20971520")
			chunk := []byte(strings.Repeat("z", 32<<10))
			for n := 0; n < size; n += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return err
				}
			}
			return nil
		})
	for _, path := range []string{"fast", "handoff", "tls-h1"} {
		t.Run(path, func(t *testing.T) {
			c := paths[path](t)
			c.send(head(path, "GET /big-"+path+" HTTP/1.1"))
			select {
			case p := <-rec.broken:
				if p != "/big-"+path {
					t.Errorf("backend request %s broke; want /big-%s", p, path)
				}
			case <-time.After(20 * time.Second): // a safety net, not a measurement
				t.Fatalf("the backend connection is still open")
			}
			// Now read: what the buffers held, then the end.
			n, err := io.Copy(io.Discard, c.br)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("after %d bytes the connection is still open", n)
			}
			if n >= size {
				t.Errorf("read %d bytes; want the response cut short", n)
			}
		})
	}
}

// A framing conflict (Content-Length with Transfer-Encoding, or
// Transfer-Encoding in HTTP/1.0) is answered and the connection closed:
// the bytes after it never reach the backend as a request.
func TestLimits_framingConflictCloses(t *testing.T) {
	rec, paths := limitsProxy(t, proxy.ListenerOptions{}, func(w http.ResponseWriter, r *http.Request) error {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
		return nil
	})
	tests := []struct{ name, raw string }{
		{"cl-te", "POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
			"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"http10-te", "POST /http10-te HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"http10-te-no-length", "POST /http10-te-no-length HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := paths["fast"](t)
			c.send(tt.raw)
			resp, body := c.read("POST")
			if resp.StatusCode != 200 || body != "ok" {
				t.Errorf("got %d %q; want 200 ok", resp.StatusCode, body)
			}
			if !resp.Close || !c.closed() {
				t.Errorf("connection kept (Close %v); want it closed", resp.Close)
			}
		})
	}
	// net/http's server (TLS HTTP/1.1) drops the Content-Length before the
	// guard sees the request: there every chunked request closes.
	t.Run("cl-te/tls-h1", func(t *testing.T) {
		c := paths["tls-h1"](t)
		c.send(tests[0].raw)
		resp, body := c.read("POST")
		if resp.StatusCode != 200 || body != "ok" {
			t.Errorf("got %d %q; want 200 ok", resp.StatusCode, body)
		}
		if !resp.Close || !c.closed() {
			t.Errorf("connection kept (Close %v); want it closed", resp.Close)
		}
	})
	for _, p := range rec.seen() {
		if p == "/smuggled" {
			t.Errorf("the bytes after a framing conflict reached the backend as a request")
		}
	}
}

// deadlineCounter is a listener whose connections count deadline updates
// (timer operations).
type deadlineCounter struct {
	net.Listener
	n atomic.Int64
}

func (l *deadlineCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{TCPConn: c.(*net.TCPConn), n: &l.n}, nil
}

type countingConn struct {
	*net.TCPConn
	n *atomic.Int64
}

func (c *countingConn) SetDeadline(t time.Time) error {
	c.n.Add(1)
	return c.TCPConn.SetDeadline(t)
}

func (c *countingConn) SetReadDeadline(t time.Time) error {
	c.n.Add(1)
	return c.TCPConn.SetReadDeadline(t)
}

func (c *countingConn) SetWriteDeadline(t time.Time) error {
	c.n.Add(1)
	return c.TCPConn.SetWriteDeadline(t)
}

// The body and write timeouts cost an ordinary keep-alive request no
// timer operation: a GET, and a POST whose body comes with its head, set
// no deadline on the client socket; a body that needs reads of its own
// does (so the count is not blind).
func TestFast_timeoutsCostNoTimersOnKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dl := &deadlineCounter{Listener: ln}
	s, err := newFastServer(dl, &http.Server{}, http.HandlerFunc(echoPath), proxy.ListenerOptions{}, zap.NewNop())
	if err != nil {
		t.Skip(err) // no epoll here
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	defer func() {
		s.Close()
		<-done
	}()
	c := dialRaw(t, ln.Addr().String())
	for range 50 {
		c.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
		c.read("GET")
		c.send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		c.read("POST")
	}
	if n := dl.n.Load(); n != 0 {
		t.Errorf("%d deadline updates for 100 keep-alive requests; want 0", n)
	}
	// A body that is not there with its head: the body deadline goes on
	// the socket when the handler waits for it.
	c.send("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
	for deadline := time.Now().Add(10 * time.Second); dl.n.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no body deadline set while the handler waits for the body")
		}
	}
	c.send("hello")
	if resp, _ := c.read("POST"); resp.Header.Get("X-Body-Length") != "5" {
		t.Fatalf("body length %s; want 5", resp.Header.Get("X-Body-Length"))
	}
}

// An upgraded connection (handed to net/http, hijacked by the proxy)
// leaves the write and body deadlines behind: a tunnel quiet for longer
// than write_timeout still carries bytes.
func TestLimits_upgradeKeepsNoDeadline(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(proxytest.UpgradeEcho))
	defer backend.Close()
	o := oneUpstream(t, backend, nil)
	o.Listeners = []proxy.ListenerOptions{{Name: "test", Address: "127.0.0.1:0",
		WriteTimeout: 50 * time.Millisecond, BodyTimeout: 50 * time.Millisecond}}
	c := dialRaw(t, serve(t, o)[0].String())
	// A first request, handed to net/http (Expect), whose response
	// writes put the write deadline on the connection.
	c.send("GET /first HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n")
	if resp, _ := c.readFinal("GET"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("first request: %d; want the backend's 400", resp.StatusCode)
	}
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	// The one wait here is the point: a deadline left on the tunnel
	// would have passed by now.
	time.Sleep(200 * time.Millisecond)
	c.send("ping\n")
	if line, err := c.br.ReadString('\n'); line != "echo: ping\n" {
		t.Errorf("after a quiet spell read %q, %v; want \"echo: ping\\n\"", line, err)
	}
}
