package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/webtier/webtier/resolver"
)

// pushResolver is a test seam standing in for the shared resolver: the test
// pushes answers to subscribers directly, as the resolver does after a
// refresh. The resolver itself is tested against a real DNS server in its
// own package and end to end against BIND in e2e/.
type pushResolver struct {
	mu       sync.Mutex
	subs     map[string]func(resolver.Answer)
	last     map[string]resolver.Answer
	resolves int
	refresh  []string // names passed to RefreshNow, in order
}

// Resolve returns the last pushed answer, as a fresh resolution would.
func (r *pushResolver) ResolveFresh(_ context.Context, name string, _ time.Duration) (resolver.Answer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resolves++
	a, ok := r.last[name]
	if !ok {
		return a, fmt.Errorf("no answer for %s", name)
	}
	return a, nil
}

func (r *pushResolver) Subscribe(name string, fn func(resolver.Answer)) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.subs == nil {
		r.subs = map[string]func(resolver.Answer){}
	}
	r.subs[name] = fn
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		delete(r.subs, name)
	}
}

func (r *pushResolver) RefreshNow(name string) {
	r.mu.Lock()
	r.refresh = append(r.refresh, name)
	r.mu.Unlock()
}

func (r *pushResolver) refreshed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.refresh)
}

func (r *pushResolver) push(t *testing.T, name string, ips ...string) {
	t.Helper()
	a := resolver.Answer{Name: name, TTL: time.Second}
	for _, ip := range ips {
		a.Addrs = append(a.Addrs, netip.MustParseAddr(ip))
	}
	r.mu.Lock()
	fn := r.subs[name]
	if r.last == nil {
		r.last = map[string]resolver.Answer{}
	}
	r.last[name] = a
	r.mu.Unlock()
	if fn == nil {
		t.Fatalf("nobody subscribed to %s", name)
	}
	fn(a)
}

// backend is an HTTP server on a chosen loopback IP that names itself in
// its answers and records connection closes.
type backend struct {
	name   string
	srv    *httptest.Server
	closed chan struct{} // receives one value per closed connection
	block  chan struct{} // when non-nil, /slow waits for it
}

func startBackend(t *testing.T, name, ip string, port int) *backend {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatalf("listen on %s: %v", ip, err)
	}
	b := &backend{name: name, closed: make(chan struct{}, 100), block: make(chan struct{})}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
			<-b.block
		}
		io.WriteString(w, name)
	}))
	b.srv.Listener = ln
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			b.closed <- struct{}{}
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) port() int { return b.srv.Listener.Addr().(*net.TCPAddr).Port }

func get(t *testing.T, p *Pool, path string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://upstream"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p.RoundTrip(req)
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return string(b)
}

func TestPool_roundRobinAcrossAddresses(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	startBackend(t, "b", "127.0.0.3", a.port())
	res := &pushResolver{}
	p, err := New(Options{Name: "app", Targets: []Target{{Scheme: "http", Host: "elb.test", Port: uint16(a.port())}}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := get(t, p, "/"); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("before any answer: err = %v; want ErrNoAddress", err)
	}
	res.push(t, "elb.test", "127.0.0.2", "127.0.0.3")
	counts := map[string]int{}
	for range 10 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		counts[body(t, resp)]++
	}
	if counts["a"] != 5 || counts["b"] != 5 {
		t.Errorf("counts = %v; want 5 each", counts)
	}
}

// TestPool_noAddressAsksForRefresh: a request that finds no address asks
// the resolver to look up again the names that have none (and only those),
// so that a name that lost its addresses comes back at the next request
// rather than at the resolver's next retry.
func TestPool_noAddressAsksForRefresh(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	res := &pushResolver{}
	p, err := New(Options{Name: "app", Targets: []Target{
		{Scheme: "http", Host: "gone.test", Port: uint16(a.port())},
		{Scheme: "http", Host: "ejected.test", Port: uint16(a.port())},
		{Scheme: "http", Host: "127.0.0.9", Port: uint16(a.port())},
	}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "gone.test")
	res.push(t, "ejected.test", "127.0.0.2")
	for _, e := range p.Endpoints() {
		p.mu.Lock()
		p.setStateLocked(e, StateStandby, "test")
		p.mu.Unlock()
	}
	if got := res.refreshed(); len(got) != 0 {
		t.Fatalf("RefreshNow before any request = %v; want none", got)
	}
	if _, err := get(t, p, "/"); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("err = %v; want ErrNoAddress", err)
	}
	if got := res.refreshed(); !slices.Equal(got, []string{"gone.test"}) {
		t.Errorf("RefreshNow after a request found no address = %v; want [gone.test]", got)
	}
	res.push(t, "gone.test", "127.0.0.2")
	if resp, err := get(t, p, "/"); err != nil {
		t.Errorf("after the name came back: %v", err)
	} else {
		resp.Body.Close()
	}
}

func TestPool_weights(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	b := startBackend(t, "b", "127.0.0.3", 0)
	p, err := New(Options{Name: "app", Balance: BalanceRoundRobin, Targets: []Target{
		{Scheme: "http", Host: "127.0.0.2", Port: uint16(a.port()), Weight: 3},
		{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port()), Weight: 1},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	counts := map[string]int{}
	for range 40 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		counts[body(t, resp)]++
	}
	if counts["a"] != 30 || counts["b"] != 10 {
		t.Errorf("counts = %v; want a:30 b:10", counts)
	}
}

// An address that leaves the DNS answer takes no new request, finishes the
// one in flight, and then has its keep-alive connection closed
// (golang/go#23427: net/http would keep it pooled).
func TestPool_addressLeavingDNSDrains(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	b := startBackend(t, "b", "127.0.0.3", a.port())
	res := &pushResolver{}
	p, err := New(Options{Name: "app", Targets: []Target{{Scheme: "http", Host: "elb.test", Port: uint16(a.port())}}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "elb.test", "127.0.0.2")

	// One slow request stays in flight on one connection to a; one finished
	// request leaves a second, idle pooled connection to a.
	slow, err := get(t, p, "/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := get(t, p, "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "a" {
		t.Fatalf("first answer from %q; want a", got)
	}

	res.push(t, "elb.test", "127.0.0.3")
	// The idle connection to a closes at once.
	<-a.closed
	if got := p.Endpoints(); len(got) != 1 || got[0].Addr().Addr() != netip.MustParseAddr("127.0.0.3") {
		t.Fatalf("Endpoints() = %v; want only 127.0.0.3", got)
	}
	for range 4 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "b" {
			t.Fatalf("after the change answered by %q; want b", got)
		}
	}
	// The in-flight request to a completes normally...
	close(a.block)
	if got := body(t, slow); got != "a" {
		t.Fatalf("in-flight request got %q; want a", got)
	}
	// ...and then its connection is closed instead of going back to the pool.
	<-a.closed
	select {
	case <-b.closed:
		t.Fatal("a connection to b, which stayed in DNS, was closed")
	default:
	}
}

func TestPool_dialErrorIsTyped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens: connection refused
	p, err := New(Options{Name: "app", Targets: []Target{{Scheme: "http", Host: "127.0.0.1", Port: uint16(port)}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = get(t, p, "/")
	var de *DialError
	if !errors.As(err, &de) {
		t.Fatalf("err = %v (%T); want a *DialError", err, err)
	}
	if de.Addr.Port() != uint16(port) {
		t.Errorf("DialError.Addr = %v; want port %d", de.Addr, port)
	}
}

func BenchmarkPoolPick(b *testing.B) {
	p, err := New(Options{Name: "app", Targets: []Target{
		{Scheme: "http", Host: "127.0.0.2", Port: 80},
		{Scheme: "http", Host: "127.0.0.3", Port: 80},
	}}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if p.pick(req, nil) == nil {
				b.Fatal("no endpoint")
			}
		}
	})
}
