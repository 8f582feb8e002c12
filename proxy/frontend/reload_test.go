package frontend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

// startServer listens and serves s until the test ends and returns its
// first listener's URL.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	serveServer(t, s)
	return "http://" + s.Addrs()[0].String()
}

// get sends GET url with c and returns the body of a 200 answer, and
// whether the connection was a kept-alive one.
func get(c *http.Client, url string) (body string, reused bool, err error) {
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url, nil)
	if err != nil {
		return "", false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", reused, err
	}
	defer resp.Body.Close()
	bb, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return string(bb), reused, errors.New(resp.Status)
	}
	return string(bb), reused, err
}

// waitClosed fails the test if h is not closed within 10 s.
func waitClosed(t *testing.T, h *proxy.Handler, what string) {
	t.Helper()
	select {
	case <-h.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s was not closed", what)
	}
}

func bodyServer(t *testing.T, body string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// Issue: reload. A reload routes the next request, on a kept-alive client
// connection too, to the new upstream; a request already on its way
// finishes on the old one; and the old upstreams are closed only after it.
func TestServer_reload(t *testing.T) {
	slowGot, release := make(chan struct{}), make(chan struct{})
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slowGot)
			<-release
		}
		io.WriteString(w, "a")
	}))
	defer a.Close()
	b := bodyServer(t, "b")

	listeners := []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}}
	optsA, optsB := oneUpstream(t, a, nil), oneUpstream(t, b, nil)
	optsA.Listeners, optsB.Listeners = listeners, listeners
	s, err := NewServer(optsA, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	url := startServer(t, s)

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	if got, _, err := get(client, url+"/"); err != nil || got != "a" {
		t.Fatalf("before reload: %q, %v; want a", got, err)
	}

	slow := make(chan string, 1)
	go func() {
		other := &http.Client{Transport: &http.Transport{}}
		defer other.CloseIdleConnections()
		got, _, err := get(other, url+"/slow")
		if err != nil {
			got = err.Error()
		}
		slow <- got
	}()
	<-slowGot
	old := s.Handler()

	restart, err := s.Reload(context.Background(), optsB, nil)
	if err != nil || len(restart) != 0 {
		t.Fatalf("Reload = %v, %v; want no listener to restart and no error", restart, err)
	}
	got, reused, err := get(client, url+"/")
	if err != nil || got != "b" {
		t.Fatalf("after reload: %q, %v; want b", got, err)
	}
	if !reused {
		t.Error("the request after reload did not reuse the kept-alive connection")
	}
	if old.IsClosed() || len(old.Pool("app").Endpoints()) == 0 {
		t.Fatal("the old upstream was closed while a request was still using it")
	}

	close(release)
	if got := <-slow; got != "a" {
		t.Fatalf("request in flight during the reload got %q; want a", got)
	}
	waitClosed(t, old, "the old handler, after its last request ended,")
}

// Requests that run while the config is reloaded again and again all
// succeed, and every replaced handler ends up closed.
func TestServer_reloadUnderLoad(t *testing.T) {
	a, b := bodyServer(t, "a"), bodyServer(t, "b")
	listeners := []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}}
	opts := []proxy.Options{oneUpstream(t, a, nil), oneUpstream(t, b, nil)}
	opts[0].Listeners, opts[1].Listeners = listeners, listeners
	s, err := NewServer(opts[0], nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	url := startServer(t, s)

	const clients, reloads = 8, 30
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex // guards failures and requests
	var failures []string
	requests := 0
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}
			defer c.CloseIdleConnections()
			for n := 0; n < 10000 && ctx.Err() == nil; n++ {
				body, _, err := get(c, url+"/")
				mu.Lock()
				requests++
				if err != nil || (body != "a" && body != "b") {
					failures = append(failures, body+" "+errString(err))
				}
				mu.Unlock()
			}
		}()
	}
	var replaced []*proxy.Handler
	c := &http.Client{Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	for i := range reloads {
		replaced = append(replaced, s.Handler())
		if _, err := s.Reload(context.Background(), opts[(i+1)%2], nil); err != nil {
			t.Fatalf("Reload %d: %v", i, err)
		}
		if got, _, err := get(c, url+"/"); err != nil || got != []string{"a", "b"}[(i+1)%2] {
			t.Fatalf("after reload %d: %q, %v; want %s", i, got, err, []string{"a", "b"}[(i+1)%2])
		}
	}
	stop()
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests failed during %d reloads; first: %s", len(failures), requests, reloads, failures[0])
	}
	for i, h := range replaced {
		waitClosed(t, h, fmt.Sprintf("the handler replaced by reload %d", i))
	}
	if s.Handler().IsClosed() {
		t.Error("the current handler is closed")
	}
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// Listeners are opened once: a reload keeps serving on them with the new
// routes, takes a listener's trusted proxies by name, and reports every
// other listener change as waiting for a restart.
func TestServer_reloadListeners(t *testing.T) {
	base := []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}, {Name: "tls", Address: "127.0.0.1:0"}}
	elb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name        string
		listeners   []proxy.ListenerOptions
		wantRestart []string
		wantTrusted []netip.Prefix // of the first listener after the reload
		wantKeep    bool           // the first listener's keep_underscore_headers after the reload
	}{
		{name: "same", listeners: base},
		{
			name:      "keep_underscore_headers changed",
			listeners: []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0", KeepUnderscoreHeaders: true}, base[1]},
			wantKeep:  true,
		},
		{
			name:        "trusted proxies changed",
			listeners:   []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0", TrustedProxies: elb}, base[1]},
			wantTrusted: elb,
		},
		{
			name:        "listener added",
			listeners:   append(slices.Clone(base), proxy.ListenerOptions{Name: "new", Address: "127.0.0.1:0"}),
			wantRestart: []string{"new: added (not listening)"},
		},
		{
			name:        "listener removed",
			listeners:   []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0", TrustedProxies: elb}},
			wantRestart: []string{"tls: removed or renamed (still serving)"},
			wantTrusted: elb,
		},
		{
			name:        "listener renamed",
			listeners:   []proxy.ListenerOptions{base[0], {Name: "other", Address: "127.0.0.1:0"}},
			wantRestart: []string{"tls: removed or renamed (still serving)", "other: added (not listening)"},
		},
		{
			name:        "address changed",
			listeners:   []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:1"}, base[1]},
			wantRestart: []string{"web: address changed"},
		},
		{
			name:        "idle timeout changed",
			listeners:   []proxy.ListenerOptions{base[0], {Name: "tls", Address: "127.0.0.1:0", IdleTimeout: time.Minute}},
			wantRestart: []string{"tls: timeouts changed"},
		},
		{
			name:        "TLS added",
			listeners:   []proxy.ListenerOptions{base[0], {Name: "tls", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: "c", KeyFile: "k"}}},
			wantRestart: []string{"tls: tls changed"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := httptest.NewServer(http.NotFoundHandler())
			defer backend.Close()
			opts := oneUpstream(t, backend, nil)
			opts.Listeners = base
			s, err := NewServer(opts, nil, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Handler().Close() }()
			before := s.Handler()
			opts.Listeners = tc.listeners
			restart, err := s.Reload(context.Background(), opts, nil)
			if err != nil {
				t.Fatalf("Reload: %v", err)
			}
			if !slices.Equal(restart, tc.wantRestart) {
				t.Errorf("Reload restart list = %q; want %q", restart, tc.wantRestart)
			}
			h := s.Handler()
			if h == before {
				t.Fatal("the handler was not swapped")
			}
			// What the new handler was built with: the running listeners,
			// with the next ones' trusted proxies and underscore rule.
			merged, _ := mergeListeners(base, tc.listeners)
			if len(merged) != len(base) {
				t.Fatalf("the new handler has %d listeners; want %d, one per open listener", len(merged), len(base))
			}
			for i, lo := range merged {
				if lo.Name != base[i].Name {
					t.Errorf("listener %d is %q; want %q", i, lo.Name, base[i].Name)
				}
			}
			if got := merged[0].TrustedProxies; !slices.Equal(got, tc.wantTrusted) {
				t.Errorf("trusted proxies of %q = %v; want %v", base[0].Name, got, tc.wantTrusted)
			}
			if got := merged[0].KeepUnderscoreHeaders; got != tc.wantKeep {
				t.Errorf("keep_underscore_headers of %q = %v; want %v", base[0].Name, got, tc.wantKeep)
			}
			waitClosed(t, before, "the replaced handler")
		})
	}
}

// A reload to upstreams with DNS names swaps them in only once their pools
// have addresses: the resolver delivers answers on its own goroutines, so a
// pool is empty for a moment after it is built, and a request in that
// moment got 502 "no backend could be reached". A name that gets no answer
// delays the swap until ctx ends and is logged.
func TestServer_reloadNamedTarget(t *testing.T) {
	dns, err := dnsserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	dns.SetA("a.test", 60, lo)
	dns.SetA("b.test", 60, lo)
	dns.SetDelay(100 * time.Millisecond) // a new name's first answer is slow
	a, b := bodyServer(t, "a"), bodyServer(t, "b")
	named := func(srv *httptest.Server, host string) proxy.Options {
		o := oneUpstream(t, srv, nil)
		o.Upstreams[0].Targets[0].Host = host
		o.Listeners = []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}}
		return o
	}

	for _, tc := range []struct {
		name        string
		next        proxy.Options
		wait        time.Duration // Reload's ctx
		want        string        // body of the first request after Reload; "" for a 502
		wantMissing bool          // a warning names the target without an answer
	}{
		{name: "new name", next: named(b, "b.test"), wait: 10 * time.Second, want: "b"},
		{name: "name in the cache", next: named(a, "a.test"), wait: 10 * time.Second, want: "a"},
		{name: "name without an answer", next: named(b, "nx.test"), wait: 300 * time.Millisecond, wantMissing: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := resolver.New(resolver.Options{Nameservers: []string{dns.Addr()}, QueryTimeout: time.Second, Attempts: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			core, logs := observer.New(zap.WarnLevel)
			s, err := NewServer(named(a, "a.test"), res, zap.New(core))
			if err != nil {
				t.Fatal(err)
			}
			url := startServer(t, s)
			c := &http.Client{Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			for start := time.Now(); ; {
				// The first handler is served at start without waiting.
				if got, _, err := get(c, url+"/"); err == nil && got == "a" {
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatal("a.test never answered before the reload")
				}
				time.Sleep(10 * time.Millisecond)
			}

			ctx, cancel := context.WithTimeout(context.Background(), tc.wait)
			defer cancel()
			if _, err := s.Reload(ctx, tc.next, res); err != nil {
				t.Fatalf("Reload: %v", err)
			}
			got, _, err := get(c, url+"/")
			if tc.want != "" && (err != nil || got != tc.want) {
				t.Errorf("first request after Reload: %q, %v; want %q", got, err, tc.want)
			}
			warned := logs.FilterMessageSnippet("no DNS answer yet").Len() > 0
			if warned != tc.wantMissing {
				t.Errorf("warning about targets without an answer logged = %v; want %v (logs %v)", warned, tc.wantMissing, logs.All())
			}
			if tc.wantMissing {
				f := logs.FilterMessageSnippet("no DNS answer yet").All()[0].ContextMap()["targets"]
				if want := []any{"app: nx.test"}; !slices.Equal(f.([]any), want) {
					t.Errorf("targets without an answer = %v; want %v", f, want)
				}
			}
		})
	}
}

// A reload that ends after Serve has returned changes nothing and closes
// what it built.
func TestServer_reloadAfterServe(t *testing.T) {
	backend := bodyServer(t, "a")
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}}
	s, err := NewServer(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		s.Handler().Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Serve(ctx); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	before := s.Handler()
	if _, err := s.Reload(context.Background(), opts, nil); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Reload after Serve = %v; want ErrServerClosed", err)
	}
	if s.Handler() != before || !before.IsClosed() {
		t.Error("Reload after Serve swapped the handler, or Serve left it open")
	}
}
