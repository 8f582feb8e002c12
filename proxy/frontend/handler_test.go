package frontend

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/proxy"
)

// target returns the upstream target for an httptest server.
func target(t *testing.T, srv *httptest.Server) proxy.TargetOptions {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	return proxy.TargetOptions{Scheme: "http", Host: u.Hostname(), Port: uint16(port), Weight: 1}
}

// startProxy runs a Server (the fast HTTP/1 path) for opts on a real
// socket and returns its first listener's URL.
func startProxy(t *testing.T, opts proxy.Options) (string, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	if len(opts.Listeners) == 0 {
		opts.Listeners = []proxy.ListenerOptions{{Name: "test"}}
	}
	for i := range opts.Listeners {
		if opts.Listeners[i].Address == "" {
			opts.Listeners[i].Address = "127.0.0.1:0"
		}
	}
	return "http://" + serveWith(t, opts, zap.New(core))[0].String(), logs
}

func oneUpstream(t *testing.T, backend *httptest.Server, mod func(*proxy.UpstreamOptions)) proxy.Options {
	t.Helper()
	uo := proxy.UpstreamOptions{Name: "app", Targets: []proxy.TargetOptions{target(t, backend)}}
	if mod != nil {
		mod(&uo)
	}
	return proxy.Options{
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{uo},
	}
}

// Issue: the reverse-proxy rules. The backend asserts what it received.
func TestHandler_forwardedAndHopByHopHeaders(t *testing.T) {
	var got *http.Request
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		w.Header().Set("Connection", "X-Backend-Hop")
		w.Header().Set("X-Backend-Hop", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		io.WriteString(w, "ok")
	}))
	defer backend.Close()

	tests := []struct {
		name     string
		trusted  []netip.Prefix
		hostHdr  string
		wantXFF  string
		wantHost string
	}{
		{name: "untrusted-peer-replaces-xff", wantXFF: "127.0.0.1", wantHost: "www.example.test"},
		{name: "trusted-peer-appends", trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
			wantXFF: "203.0.113.9, 127.0.0.1", wantHost: "www.example.test"},
		{name: "host-header-override", hostHdr: "backend.internal", wantXFF: "127.0.0.1", wantHost: "backend.internal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) { u.HostHeader = tt.hostHdr })
			opts.Listeners = []proxy.ListenerOptions{{Name: "test", TrustedProxies: tt.trusted}}
			fe, _ := startProxy(t, opts)
			req, _ := http.NewRequest(http.MethodGet, fe+"/path?q=1", nil)
			req.Host = "www.example.test"
			req.Header.Set("X-Forwarded-For", "203.0.113.9")
			req.Header.Set("Connection", "X-Client-Hop")
			req.Header.Set("X-Client-Hop", "drop me")
			req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d; want 200", resp.StatusCode)
			}
			if g := got.Header.Get("X-Forwarded-For"); g != tt.wantXFF {
				t.Errorf("X-Forwarded-For = %q; want %q", g, tt.wantXFF)
			}
			if g := got.Header.Get("X-Forwarded-Proto"); g != "http" {
				t.Errorf("X-Forwarded-Proto = %q; want http", g)
			}
			if g := got.Header.Get("X-Forwarded-Host"); g != "www.example.test" {
				t.Errorf("X-Forwarded-Host = %q; want www.example.test", g)
			}
			if got.Host != tt.wantHost {
				t.Errorf("Host = %q; want %q", got.Host, tt.wantHost)
			}
			if got.URL.RequestURI() != "/path?q=1" {
				t.Errorf("request URI = %q; want /path?q=1", got.URL.RequestURI())
			}
			for _, h := range []string{"X-Client-Hop", "Proxy-Authorization"} {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("backend received hop-by-hop header %s: %q", h, v)
				}
			}
			for _, h := range []string{"X-Backend-Hop", "Keep-Alive"} {
				if v := resp.Header.Get(h); v != "" {
					t.Errorf("client received hop-by-hop header %s: %q", h, v)
				}
			}
		})
	}
}

func TestHandler_unreachableIs502WithOneLogLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := proxy.Options{
		Routes: []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{
			{Scheme: "http", Host: "127.0.0.1", Port: uint16(port)}}}},
	}
	fe, logs := startProxy(t, opts)
	resp, err := http.Get(fe + "/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("status = %d; want 502", resp.StatusCode)
	}
	if !strings.Contains(string(b), "502 Bad Gateway") || strings.Contains(string(b), "127.0.0.1") {
		t.Errorf("body = %q; want a short 502 text that does not leak the backend address", b)
	}
	entries := logs.FilterMessage("upstream request failed").All()
	if len(entries) != 1 {
		t.Fatalf("got %d 'upstream request failed' log lines; want 1", len(entries))
	}
	if f := entries[0].ContextMap(); f["upstream"] != "app" || f["status"] != int64(502) || f["path"] != "/x" {
		t.Errorf("log fields = %v; want upstream app, status 502, path /x", f)
	}
}

func TestHandler_responseHeaderTimeoutIs504(t *testing.T) {
	release := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer backend.Close()
	defer close(release)
	fe, _ := startProxy(t, oneUpstream(t, backend, func(u *proxy.UpstreamOptions) {
		u.ResponseHeaderTimeout = 50 * time.Millisecond
	}))
	resp, err := http.Get(fe + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Errorf("status = %d; want 504", resp.StatusCode)
	}
}

func TestHandler_noRouteIs404(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	opts := oneUpstream(t, backend, nil)
	opts.Routes = []proxy.RouteOptions{{Host: "only.example.test", PathPrefix: "/", Upstream: "app"}}
	fe, _ := startProxy(t, opts)
	resp, err := http.Get(fe + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("status = %d; want 404", resp.StatusCode)
	}
}

// A streamed response reaches the client chunk by chunk, before the backend
// has finished it.
func TestHandler_streamsResponses(t *testing.T) {
	next := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "first\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "second\n")
	}))
	defer backend.Close()
	fe, _ := startProxy(t, oneUpstream(t, backend, nil))
	resp, err := http.Get(fe + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "first\n" {
		t.Fatalf("first line = %q, %v; want \"first\\n\" before the backend finished", line, err)
	}
	close(next)
	line, err = br.ReadString('\n')
	if err != nil || line != "second\n" {
		t.Fatalf("second line = %q, %v; want \"second\\n\"", line, err)
	}
}

// A request body is streamed to the backend and arrives intact.
func TestHandler_requestBody(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strconv.Itoa(len(b)))
	}))
	defer backend.Close()
	fe, _ := startProxy(t, oneUpstream(t, backend, nil))
	resp, err := http.Post(fe+"/", "application/octet-stream", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != strconv.Itoa(1<<20) {
		t.Errorf("backend saw %s bytes; want %d", b, 1<<20)
	}
}

// BenchmarkProxyOverhead compares a request through the proxy with a direct
// request to the same backend, over keep-alive connections.
func BenchmarkProxyOverhead(b *testing.B) {
	backend, port := startBenchBackend(b)
	addrs := serveWith(b, proxy.Options{
		Listeners: []proxy.ListenerOptions{{Name: "bench", Address: "127.0.0.1:0", HealthPath: proxy.DefaultHealthPath}},
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: port}}}},
	}, zap.NewNop())
	fe := "http://" + addrs[0].String()
	for _, bc := range []struct{ name, url string }{{"direct", backend.URL}, {"proxied", fe}} {
		b.Run(bc.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Get(bc.url)
					if err != nil {
						b.Fatal(err)
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			})
		})
	}
}

// A POST that could not connect to one address is sent whole to another:
// ReverseProxy's body wrapper must survive the failed try (the transports
// close the request body when a try fails).
func TestHandler_postRetriedAfterConnectFailure(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, strconv.Itoa(len(b)))
	}))
	defer backend.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) {
		u.Balance = "round_robin"
		u.Targets = append([]proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: uint16(dead)}}, u.Targets...)
	})
	fe, _ := startProxy(t, opts)
	for i := range 4 {
		resp, err := http.Post(fe+"/", "application/octet-stream", strings.NewReader(strings.Repeat("x", 100_000)))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "100000" {
			t.Fatalf("POST %d: status %d, body %q; want 200 and the whole body retried", i, resp.StatusCode, b)
		}
	}
}
