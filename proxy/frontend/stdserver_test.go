package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// stdProxy runs a proxy whose plain and TLS listeners have engine std, in
// front of a backend that counts the requests reaching it.
func stdProxy(t *testing.T) (plain, tlsAddr string, roots *x509.CertPool, reached *atomic.Int32) {
	t.Helper()
	reached = new(atomic.Int32)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) { u.Engine = proxy.EngineStd })
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "plain", Address: "127.0.0.1:0", Engine: proxy.EngineStd},
		{Name: "tls", Address: "127.0.0.1:0", Engine: proxy.EngineStd, TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
	}
	addrs := serve(t, opts)
	return addrs[0].String(), addrs[1].String(), roots, reached
}

// With engine std a plain listener is served by net/http's server, not the
// fast path: a request line over max_header_size is answered 431, as
// net/http bounds only the whole head (the fast path answers 414), and the
// limits net/http lacks are still the listener's (101 fields: 431).
func TestStdEngine_plainListenerIsNetHTTP(t *testing.T) {
	plain, _, _, reached := stdProxy(t)
	tests := []struct {
		name  string
		first string
		n     int
		want  int
	}{
		{name: "ok", first: "GET /ok HTTP/1.1", n: 1, want: 200},
		{name: "101-fields", first: "GET /fields HTTP/1.1", n: 100, want: 431},
		{name: "9KiB-uri", first: "GET /" + strings.Repeat("u", 9<<10) + " HTTP/1.1", n: 1, want: 414},
		{name: "900KiB-uri", first: "GET /" + strings.Repeat("u", 900<<10) + " HTTP/1.1", n: 1, want: 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, plain)
			go c.c.Write([]byte(head("", tt.first, repeatField(tt.n, "X-F: v")...))) //nolint:errcheck // the proxy may stop reading
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d; want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("%d requests reached the backend; want 1 (only /ok)", n)
	}
}

// With engine std a TLS listener's HTTP/2 is net/http's, and the
// listener's limits apply to it: net/http's HTTP/2 server bounds only the
// header list's size, the guard the field count (431), so that HTTP/2 is
// no way around max_header_fields.
func TestStdEngine_http2Limits(t *testing.T) {
	_, tlsAddr, roots, reached := stdProxy(t)
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	tests := []struct {
		name   string
		fields int
		want   int
	}{
		{name: "99-fields", fields: 98, want: 200}, // with Accept-Encoding, which the client adds
		{name: "101-fields", fields: 101, want: 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "https://"+tlsAddr+"/"+tt.name, nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.fields {
				req.Header.Set("X-F"+strconv.Itoa(i), "v")
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				t.Fatalf("served as %s; want HTTP/2", resp.Proto)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("status %d; want %d", resp.StatusCode, tt.want)
			}
		})
	}
	if n := reached.Load(); n != 1 {
		t.Errorf("%d requests reached the backend; want 1", n)
	}
}

// A listener's engine changes with a restart only: a reload names it.
func TestStdEngine_reloadNamesEngineChange(t *testing.T) {
	running := []proxy.ListenerOptions{{Name: "web", Address: ":8080"}}
	next := []proxy.ListenerOptions{{Name: "web", Address: ":8080", Engine: proxy.EngineStd}}
	merged, restart := mergeListeners(running, next)
	if len(restart) != 1 || restart[0] != "web: engine changed" {
		t.Errorf("restartNeeded = %q; want [\"web: engine changed\"]", restart)
	}
	if merged[0].Engine.Std() {
		t.Error("the running listener took engine std at a reload; want it kept until a restart")
	}
	// "" and webtier are the same engine.
	next[0].Engine = proxy.EngineWebtier
	if _, restart := mergeListeners(running, next); len(restart) != 0 {
		t.Errorf("restartNeeded = %q for an engine written as the default; want none", restart)
	}
}

// A client that stops reading a large response on a listener of engine std
// has its connection reset after write_timeout, as on the fast path: what
// the kernel queued for it is dropped rather than kept by an orphaned
// socket whose peer's window stays shut.
func TestStdEngine_neverReadingClientReset(t *testing.T) {
	const size = 20 << 20
	backendDone := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(backendDone)
		w.Header().Set("Content-Length", strconv.Itoa(size))
		chunk := make([]byte, 64<<10)
		for n := 0; n < size; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(backend.Close)
	opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) { u.Engine = proxy.EngineStd })
	opts.Listeners = []proxy.ListenerOptions{{Name: "plain", Address: "127.0.0.1:0", Engine: proxy.EngineStd, WriteTimeout: time.Second}}
	addr := serve(t, opts)[0].String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
	<-backendDone                                       // the proxy gave up the response: write_timeout
	c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a safety net, not a measurement
	n, err := io.Copy(io.Discard, c)
	var ne net.Error
	if n >= size || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client then read %d bytes (%v); want less than %d and the connection ended", n, err, size)
	}
	t.Logf("read %d bytes, then %v", n, err)
}

// proxy.Engine std passes a response without Content-Type as it is, over
// HTTP/1 and HTTP/2: net/http's servers would add one sniffed from the
// body (text/html here).
func TestStdEngine_noSniffedContentType(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = nil // net/http's test backend must not add one either
		io.WriteString(w, "<html><script>alert(1)</script>")
	}))
	t.Cleanup(backend.Close)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) { u.Engine = proxy.EngineStd })
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "plain", Address: "127.0.0.1:0", Engine: proxy.EngineStd},
		{Name: "tls", Address: "127.0.0.1:0", Engine: proxy.EngineStd, TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
	}
	addrs := serve(t, opts)
	tr := &http.Transport{ForceAttemptHTTP2: true, TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	for _, url := range []string{"http://" + addrs[0].String() + "/", "https://" + addrs[1].String() + "/"} {
		resp, err := (&http.Client{Transport: tr}).Get(url)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if ct, ok := resp.Header["Content-Type"]; ok {
			t.Errorf("%s (%s): Content-Type %q; want none, as the backend sent", url, resp.Proto, ct)
		}
	}
}

// With engine std, a client that drops its HTTP/2 connection ends the
// requests it had waiting: their backend requests are aborted (the
// backend sees its request's context end), although a stream reset alone
// leaves a request running (detach).
func TestStdEngine_droppedHTTP2ConnectionEndsRequests(t *testing.T) {
	started, ended := make(chan struct{}, 1), make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done() // the proxy gave up on the request
		ended <- struct{}{}
	}))
	t.Cleanup(backend.Close)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) { u.Engine = proxy.EngineStd })
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "tls", Address: "127.0.0.1:0", Engine: proxy.EngineStd, TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
	}
	addr := serve(t, opts)[0].String()

	conns := make(chan net.Conn, 1)
	tr := &http.Transport{
		ForceAttemptHTTP2: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				conns <- c
			}
			return c, err
		},
	}
	defer tr.CloseIdleConnections()
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/hold", nil)
		resp, err := tr.RoundTrip(req)
		if err == nil {
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				err = errors.New("served as " + resp.Proto + "; want HTTP/2")
			}
		}
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second): // a safety net, not a measurement
		t.Fatal("the request did not reach the backend")
	}
	(<-conns).Close() // the client's TCP connection goes away
	if err := <-done; err == nil {
		t.Fatal("the request was answered after its connection closed")
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second): // a safety net, not a measurement
		t.Fatal("the backend request still runs after the client dropped the connection")
	}
}
