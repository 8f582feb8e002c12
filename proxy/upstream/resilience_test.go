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
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// waitFor polls cond until it holds, failing the test after 10 s. State
// changes happen on pool goroutines driven by real sockets, so there is no
// channel to wait on; the poll is bounded and asserts no timing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func endpointFor(t *testing.T, p *Pool, ip string) *Endpoint {
	t.Helper()
	for _, e := range p.Endpoints() {
		if e.Addr().Addr() == netip.MustParseAddr(ip) {
			return e
		}
	}
	return nil
}

func stateOf(p *Pool, ip string) State {
	for _, e := range p.Endpoints() {
		if e.Addr().Addr() == netip.MustParseAddr(ip) {
			return e.State()
		}
	}
	return StateDraining
}

// freePort returns a port nothing listens on at ip (connects are refused).
func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func observed() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return zap.New(core), logs
}

func fastOpts(name string, targets ...Target) Options {
	return Options{
		Name: name, Targets: targets,
		EjectBackoffBase: 10 * time.Millisecond, EjectBackoffCap: 20 * time.Millisecond,
		FailuresToEject: 2, ConnectTimeout: time.Second,
	}
}

// A dead address is retried elsewhere (no request fails), goes suspect and
// then ejected, and comes back once it accepts connections again.
func TestPool_connectFailureEjectsThenProbeRestores(t *testing.T) {
	b := startBackend(t, "b", "127.0.0.3", 0)
	deadPort := freePort(t, "127.0.0.2")
	log, logs := observed()
	opts := fastOpts("app",
		Target{Scheme: "http", Host: "127.0.0.2", Port: uint16(deadPort)},
		Target{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port())},
	)
	opts.Metrics = NewMetrics(prometheus.NewRegistry())
	p, err := New(opts, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 6 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatalf("request %d: %v; want it retried on the live address", i, err)
		}
		if got := body(t, resp); got != "b" {
			t.Fatalf("request %d answered by %q; want b", i, got)
		}
	}
	waitFor(t, "the dead address to be ejected", func() bool { return stateOf(p, "127.0.0.2") == StateEjected })
	// Usually running->suspect->ejected; two failures counted at once may
	// go straight to ejected. Either way the ejection is logged with its
	// reason.
	var ejections []observer.LoggedEntry
	for _, e := range logs.FilterMessage("address state changed").All() {
		if e.ContextMap()["to"] == "ejected" {
			ejections = append(ejections, e)
		}
	}
	if len(ejections) != 1 || !strings.Contains(ejections[0].ContextMap()["reason"].(string), "connection refused") {
		t.Errorf("ejection log lines = %v; want one whose reason is the refused connect", ejections)
	}

	if n := testutil.ToFloat64(opts.Metrics.stateChanges.WithLabelValues("app", "ejected")); n != 1 {
		t.Errorf("webtier_upstream_address_state_changes_total{to=ejected} = %v; want 1", n)
	}
	if n := testutil.ToFloat64(opts.Metrics.retries.WithLabelValues("app", "connect")); n < 1 {
		t.Errorf("webtier_upstream_retries_total{reason=connect} = %v; want at least 1", n)
	}
	// The third failure is a request's connect or the suspect address's
	// probe, whichever comes first.
	if n := testutil.ToFloat64(opts.Metrics.ejections.WithLabelValues("app", "connect")) +
		testutil.ToFloat64(opts.Metrics.ejections.WithLabelValues("app", "probe")); n != 1 {
		t.Errorf("webtier_upstream_ejections_total{reason=connect or probe} = %v; want 1", n)
	}
	addrs := AddressCollector(func() []*Pool { return []*Pool{p} })
	wantAddrs := func(running, ejected int) string {
		return fmt.Sprintf(`# HELP webtier_upstream_addresses Backend addresses in the current DNS answers, by upstream and state.
# TYPE webtier_upstream_addresses gauge
webtier_upstream_addresses{state="draining",upstream="app"} 0
webtier_upstream_addresses{state="ejected",upstream="app"} %d
webtier_upstream_addresses{state="recovering",upstream="app"} 0
webtier_upstream_addresses{state="running",upstream="app"} %d
webtier_upstream_addresses{state="standby",upstream="app"} 0
webtier_upstream_addresses{state="suspect",upstream="app"} 0
`, ejected, running)
	}
	if err := testutil.CollectAndCompare(addrs, strings.NewReader(wantAddrs(1, 1))); err != nil {
		t.Errorf("while one address is ejected: %v", err)
	}

	startBackend(t, "a", "127.0.0.2", deadPort)
	waitFor(t, "the healed address to run again", func() bool { return stateOf(p, "127.0.0.2") == StateRunning })
	if n := testutil.ToFloat64(opts.Metrics.restores.WithLabelValues("app", "probe")); n != 1 {
		t.Errorf("webtier_upstream_restores_total{reason=probe} = %v; want 1", n)
	}
	if err := testutil.CollectAndCompare(addrs, strings.NewReader(wantAddrs(2, 0))); err != nil {
		t.Errorf("after the restore: %v", err)
	}
	if problems, err := testutil.CollectAndLint(addrs); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	seen := map[string]bool{}
	for range 4 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		seen[body(t, resp)] = true
	}
	if !seen["a"] {
		t.Errorf("after healing answered only by %v; want a to take requests again", seen)
	}
}

// Issue: "maintain never resurrects". An address ejected and then removed
// from DNS is never used again, even after it heals and however many
// maintain passes run; an ejected address still in DNS is restored only
// from a fresh answer.
func TestPool_maintainNeverResurrects(t *testing.T) {
	b := startBackend(t, "b", "127.0.0.3", 0)
	res := &pushResolver{}
	p, err := New(fastOpts("app", Target{Scheme: "http", Host: "elb.test", Port: uint16(b.port())}), res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "elb.test", "127.0.0.2", "127.0.0.3") // nothing listens on 127.0.0.2
	for range 6 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		body(t, resp)
	}
	waitFor(t, "127.0.0.2 to be ejected", func() bool { return stateOf(p, "127.0.0.2") == StateEjected })

	res.push(t, "elb.test", "127.0.0.3") // the address leaves DNS
	a := startBackend(t, "a", "127.0.0.2", b.port())
	for range 5 {
		p.Maintain(context.Background())
	}
	if e := endpointFor(t, p, "127.0.0.2"); e != nil {
		t.Fatalf("after maintain passes 127.0.0.2 is back in state %s; want it forgotten", e.State())
	}
	for range 10 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		body(t, resp)
	}
	if n := a.srv.Config.ConnState; n == nil {
		t.Fatal("backend a has no ConnState hook")
	}
	select {
	case <-a.closed:
		t.Fatal("a connection reached 127.0.0.2, which DNS no longer lists")
	default:
	}
	if res.resolves < 5 {
		t.Errorf("maintain made %d fresh resolutions; want one per pass", res.resolves)
	}
}

// Requests that never reached a backend are retried on another address,
// whatever their method; the body arrives whole.
func TestPool_retriesPostAfterConnectFailure(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(string(b))
	}))
	defer srv.Close()
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	p, err := New(Options{Name: "app", Balance: BalanceRoundRobin, Targets: []Target{
		{Scheme: "http", Host: "127.0.0.1", Port: uint16(freePort(t, "127.0.0.1"))},
		{Scheme: "http", Host: "127.0.0.1", Port: uint16(port)},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 2 { // one of the two starts on the dead address
		req, _ := http.NewRequest(http.MethodPost, "http://app/", strings.NewReader(fmt.Sprint("payload", i)))
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatalf("POST %d: %v; want it retried after the connect failure", i, err)
		}
		resp.Body.Close()
		if g := got.Load(); g != fmt.Sprint("payload", i) {
			t.Errorf("backend got body %q; want payload%d", g, i)
		}
	}
}

// A POST whose bytes reached a backend that then broke the connection is
// never re-sent.
func TestPool_neverRetriesSentNonIdempotent(t *testing.T) {
	var hits atomic.Int32
	breaker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		c, _, _ := w.(http.Hijacker).Hijack()
		c.Close()
	}))
	defer breaker.Close()
	port := breaker.Listener.Addr().(*net.TCPAddr).Port
	p, err := New(Options{Name: "app", RetryIdempotent: true, Targets: []Target{
		{Scheme: "http", Host: "127.0.0.1", Port: uint16(port)},
		{Scheme: "http", Host: "127.0.0.2", Port: uint16(port)}, // refused
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetStandby(netip.MustParseAddrPort(fmt.Sprintf("127.0.0.2:%d", port)), true)
	req, _ := http.NewRequest(http.MethodPost, "http://app/", strings.NewReader("charge the card"))
	if _, err := p.RoundTrip(req); err == nil {
		t.Fatal("POST to a backend that broke the connection succeeded; want an error")
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("the POST reached backends %d times; want exactly 1", n)
	}
}

// Idempotent requests stuck on an address that leaves DNS are re-sent to
// another address after the grace, and their connection is closed. With
// engine std, net/http's Transport is ended by cancelling the try's
// context instead.
func TestPool_rescuesStuckRequests(t *testing.T) {
	for _, engine := range []Engine{EngineWebtier, EngineStd} {
		t.Run(string(engine), func(t *testing.T) { rescuesStuckRequests(t, engine) })
	}
}

func rescuesStuckRequests(t *testing.T, engine Engine) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	startBackend(t, "b", "127.0.0.3", a.port())
	res := &pushResolver{}
	opts := fastOpts("app", Target{Scheme: "http", Host: "elb.test", Port: uint16(a.port())})
	opts.Engine = engine
	opts.RescueGrace = 20 * time.Millisecond
	opts.RaceDelay = -1 // no race: the rescue interrupts the h1 client directly
	opts.Metrics = NewMetrics(prometheus.NewRegistry())
	// Only the rescue can end the stuck try: without it the request would
	// wait for this.
	opts.ResponseHeaderTimeout = time.Hour
	p, err := New(opts, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer close(a.block)
	res.push(t, "elb.test", "127.0.0.2")
	if engine == EngineStd {
		requireStd(t, p)
	}
	// /hang never answers on a: its handler blocks before writing headers.
	arrived := make(chan struct{}, 1)
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-a.block:
		case <-r.Context().Done():
		}
	})
	done := make(chan string, 1)
	go func() {
		resp, err := get(t, p, "/hang")
		if err != nil {
			done <- "error: " + err.Error()
			return
		}
		done <- body(t, resp)
	}()
	// The request must be waiting at a, past its connect: a DNS change
	// during the connect is a connect failure, not a rescue.
	select {
	case <-arrived:
	case <-time.After(30 * time.Second): // a safety net, not a measurement
		t.Fatal("the request did not reach a")
	}
	res.push(t, "elb.test", "127.0.0.3")
	select {
	case got := <-done:
		if got != "b" {
			t.Fatalf("stuck request ended with %q; want it re-sent to b", got)
		}
	case <-time.After(30 * time.Second): // a safety net, not a measurement
		t.Fatal("the stuck request was not rescued")
	}
	if n := testutil.ToFloat64(opts.Metrics.retries.WithLabelValues("app", "rescued")); n != 1 {
		t.Errorf("retries{reason=rescued} = %v; want 1", n)
	}
	if engine == EngineWebtier {
		<-a.closed // the stuck connection was closed
	}
}

// listenNoAccept makes a socket whose accept queue fills at once, so that
// further connects hang as to a black-holed address.
func listenNoAccept(t *testing.T, ip string, port int) {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	addr := &syscall.SockaddrInet4{Port: port, Addr: netip.MustParseAddr(ip).As4()}
	if err := syscall.Bind(fd, addr); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	// Fill the queue (backlog 0 admits one or two) until a connect hangs.
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", ip, port), 100*time.Millisecond)
		if err != nil {
			return
		}
		t.Cleanup(func() { c.Close() })
		if i > 16 {
			t.Fatal("could not fill the accept queue")
		}
	}
}

// Connect racing: with one address whose connects hang, requests are served
// by the other after the race delay, long before the connect timeout, and
// without waiting for the hung connect to fail.
func TestPool_connectRace(t *testing.T) {
	b := startBackend(t, "b", "127.0.0.3", 0)
	listenNoAccept(t, "127.0.0.2", b.port())
	p, err := New(Options{Name: "app", RaceDelay: 10 * time.Millisecond, ConnectTimeout: time.Minute,
		RescueGrace: -1, Targets: []Target{
			{Scheme: "http", Host: "127.0.0.2", Port: uint16(b.port())},
			{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port())},
		}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 2 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := body(t, resp); got != "b" {
			t.Fatalf("request %d answered by %q; want b", i, got)
		}
	}
	// The hung connect has not failed yet (its timeout is a minute), so the
	// requests were not served by a retry after a connect failure.
	if s := stateOf(p, "127.0.0.2"); s != StateRunning {
		t.Errorf("hung address is %s; want still running (nothing has failed yet)", s)
	}
}

func TestPool_stickyAndHash(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	b := startBackend(t, "b", "127.0.0.3", 0)
	targets := []Target{
		{Scheme: "http", Host: "127.0.0.2", Port: uint16(a.port()), Route: "node1"},
		{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port()), Route: "node2"},
	}
	send := func(p *Pool, mod func(*http.Request)) string {
		req, _ := http.NewRequest(http.MethodGet, "http://app/", nil)
		req.RemoteAddr = "192.0.2.1:1234"
		mod(req)
		resp, err := p.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		return body(t, resp)
	}
	t.Run("sticky-cookie", func(t *testing.T) {
		p, _ := New(Options{Name: "app", Balance: BalanceSticky, Targets: targets}, nil, nil)
		defer p.Close()
		for range 6 {
			if got := send(p, func(r *http.Request) { r.Header.Set("Cookie", "a=1; JSESSIONID=ABC123.node2") }); got != "b" {
				t.Fatalf("JSESSIONID ...node2 answered by %q; want b", got)
			}
		}
		if got := send(p, func(r *http.Request) { r.URL.Path = "/x;jsessionid=ABC.node1" }); got != "a" {
			t.Errorf(";jsessionid=...node1 answered by %q; want a", got)
		}
	})
	t.Run("hash-header", func(t *testing.T) {
		p, _ := New(Options{Name: "app", Balance: BalanceHash, HashHeader: "X-User", Targets: targets}, nil, nil)
		defer p.Close()
		seen := map[string]map[string]bool{}
		// The hash is seeded per process, so which backend a user lands on
		// is random: 64 users all on one backend has odds 2^-63, where 8
		// users (this test's first version) had 1/128 and flaked in CI.
		for i := range 128 {
			user := fmt.Sprint("user", i%64)
			got := send(p, func(r *http.Request) { r.Header.Set("X-User", user) })
			if seen[user] == nil {
				seen[user] = map[string]bool{}
			}
			seen[user][got] = true
		}
		both := map[string]bool{}
		for user, s := range seen {
			if len(s) != 1 {
				t.Errorf("%s reached %v; want one backend", user, s)
			}
			for k := range s {
				both[k] = true
			}
		}
		if len(both) != 2 {
			t.Errorf("64 users reached %v; want both backends used", both)
		}
	})
	t.Run("hash-client-ip-behind-elb", func(t *testing.T) {
		// Every request comes from the same ELB node; the front has
		// written X-Forwarded-For as "client, elb" and put the client
		// it decided on in the outbound RemoteAddr.
		p, _ := New(Options{Name: "app", Balance: BalanceHash, Targets: targets}, nil, nil)
		defer p.Close()
		seen := map[string]map[string]bool{}
		for i := range 128 {
			client := fmt.Sprintf("203.0.113.%d", i%64)
			got := send(p, func(r *http.Request) {
				r.RemoteAddr = client + ":41000"
				r.Header.Set("X-Forwarded-For", client+", 10.0.0.5")
			})
			if seen[client] == nil {
				seen[client] = map[string]bool{}
			}
			seen[client][got] = true
		}
		both := map[string]bool{}
		for client, s := range seen {
			if len(s) != 1 {
				t.Errorf("%s reached %v; want one backend", client, s)
			}
			for k := range s {
				both[k] = true
			}
		}
		if len(both) != 2 {
			t.Errorf("64 clients behind one ELB node reached %v; want both backends used", both)
		}
	})
}

func TestClientIP(t *testing.T) {
	for _, tc := range []struct {
		name, remote, xff, want string
	}{
		{"untrusted peer: the front wrote the peer alone", "198.51.100.7:5000", "198.51.100.7", "198.51.100.7"},
		{"the client the front decided on, not the header", "203.0.113.9:41000", "1.1.1.1, 203.0.113.9, 10.0.0.5", "203.0.113.9"},
		{"a forged header is not read", "198.51.100.7:5000", "1.1.1.1, 198.51.100.7", "198.51.100.7"},
		{"no header: RemoteAddr", "192.0.2.1:80", "", "192.0.2.1"},
		{"IPv6 peer", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"not ip:port: as it is", "192.0.2.1", "", "192.0.2.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if got := clientIP(r); got != tc.want {
				t.Errorf("clientIP(RemoteAddr %q, X-Forwarded-For %q) = %q; want %q", tc.remote, tc.xff, got, tc.want)
			}
		})
	}
}

// Backups take requests only when no primary can; when nothing is healthy
// the pool tries everything (panic mode) rather than fail.
func TestPool_backupAndPanic(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	b := startBackend(t, "b", "127.0.0.3", 0)
	p, err := New(Options{Name: "app", Targets: []Target{
		{Scheme: "http", Host: "127.0.0.2", Port: uint16(a.port())},
		{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port()), Backup: true},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ea, eb := endpointFor(t, p, "127.0.0.2"), endpointFor(t, p, "127.0.0.3")
	for range 4 {
		if e := p.pick(&http.Request{}, nil); e != ea {
			t.Fatalf("pick with a healthy primary = %v; want the primary", e.Addr())
		}
	}
	ea.state.Store(uint32(StateEjected))
	if e := p.pick(&http.Request{}, nil); e != eb {
		t.Fatalf("pick with the primary ejected = %v; want the backup", e.Addr())
	}
	eb.state.Store(uint32(StateSuspect))
	if e := p.pick(&http.Request{}, nil); e == nil {
		t.Fatal("pick with nothing healthy = nil; want panic mode to try an address")
	}
	if !p.panicking.Load() {
		t.Error("panic mode not entered")
	}
}

// Active health checks eject an address that fails them and restore it when
// it heals, while DNS stays the same.
func TestPool_healthCheckEjectsAndRestores(t *testing.T) {
	var sick atomic.Bool
	a := startBackend(t, "a", "127.0.0.2", 0)
	b := startBackend(t, "b", "127.0.0.3", a.port())
	health := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health_check.html" && sick.Load() {
			http.Error(w, "maintenance", http.StatusNotFound)
			return
		}
		io.WriteString(w, "a")
	})
	a.srv.Config.Handler = health
	res := &pushResolver{}
	opts := fastOpts("app", Target{Scheme: "http", Host: "elb.test", Port: uint16(a.port())})
	opts.HealthCheck = &HealthCheck{Path: "/health_check.html", Interval: 10 * time.Millisecond,
		Timeout: time.Second, Fall: 2, Rise: 2}
	p, err := New(opts, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "elb.test", "127.0.0.2", "127.0.0.3")
	_ = b
	sick.Store(true)
	waitFor(t, "a to be ejected by the health check", func() bool { return stateOf(p, "127.0.0.2") == StateEjected })
	for range 4 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "b" {
			t.Fatalf("with a ejected answered by %q; want b", got)
		}
	}
	sick.Store(false)
	waitFor(t, "a to be restored", func() bool { return stateOf(p, "127.0.0.2") == StateRunning })
}

// Consecutive 5xx answers eject an address, but never more than
// max_ejected_percent of the upstream.
func TestPool_passiveEjection(t *testing.T) {
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer bad.Close()
	port := uint16(bad.Listener.Addr().(*net.TCPAddr).Port)
	p, err := New(Options{Name: "app", Consecutive5xx: 2, MaxEjectedPercent: 50,
		EjectBackoffBase: time.Minute, EjectBackoffCap: time.Minute, Targets: []Target{
			{Scheme: "http", Host: "127.0.0.1", Port: port},
			{Scheme: "http", Host: "127.0.0.1", Port: port, Weight: 2},
		}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 8 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		body(t, resp)
	}
	ejected := 0
	for _, e := range p.Endpoints() {
		if e.State() == StateEjected {
			ejected++
		}
	}
	if ejected != 1 {
		t.Errorf("%d of 2 addresses ejected; want exactly 1 (max_ejected_percent 50)", ejected)
	}
}

// Slow start: an address that appears after the first answer starts in
// recovering with a small share, and runs at full weight after the window.
func TestPool_slowStart(t *testing.T) {
	res := &pushResolver{}
	p, err := New(Options{Name: "app", SlowStart: 200 * time.Millisecond,
		Targets: []Target{{Scheme: "http", Host: "elb.test", Port: 80}}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "elb.test", "127.0.0.2")
	if s := stateOf(p, "127.0.0.2"); s != StateRunning {
		t.Fatalf("address of the first answer is %s; want running (no ramp at start-up)", s)
	}
	res.push(t, "elb.test", "127.0.0.2", "127.0.0.3")
	e := endpointFor(t, p, "127.0.0.3")
	if s := e.State(); s != StateRecovering {
		t.Fatalf("new address is %s; want recovering", s)
	}
	if w := e.effectiveWeight(time.Now().UnixNano(), p.opts.SlowStart); w >= 0.5 {
		t.Errorf("effective weight just after joining = %.2f; want a small share of 1", w)
	}
	// With equal load the fresh address loses to the running one.
	for range 4 {
		if got := p.pick(&http.Request{}, nil); got.Addr().Addr() != netip.MustParseAddr("127.0.0.2") {
			t.Fatalf("pick during slow start = %v; want the running address", got.Addr())
		}
	}
	waitFor(t, "slow start to end", func() bool { return e.State() == StateRunning })
	if w := e.effectiveWeight(time.Now().UnixNano(), p.opts.SlowStart); w != 1 {
		t.Errorf("effective weight after slow start = %.2f; want 1", w)
	}
}

// random_two spreads load over every address and prefers the idler one.
func TestPool_randomTwo(t *testing.T) {
	p, err := New(Options{Name: "app", Balance: BalanceRandomTwo, Targets: []Target{
		{Scheme: "http", Host: "127.0.0.2", Port: 80},
		{Scheme: "http", Host: "127.0.0.3", Port: 80},
		{Scheme: "http", Host: "127.0.0.4", Port: 80},
	}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	busy := endpointFor(t, p, "127.0.0.2")
	busy.inflight.Store(100)
	seen := map[netip.Addr]int{}
	for range 300 {
		seen[p.pick(&http.Request{}, nil).Addr().Addr()]++
	}
	if seen[busy.Addr().Addr()] != 0 {
		t.Errorf("the busy address got %d of 300 picks; want none while two idle ones exist", seen[busy.Addr().Addr()])
	}
	if len(seen) != 2 {
		t.Errorf("picks went to %v; want both idle addresses", seen)
	}
}

// A request that arrives before the upstream's first DNS answer (webtier
// has just started) waits for it and is served, instead of failing with
// "no address available". When no answer comes within connect_timeout,
// it fails as before.
func TestPool_waitsForFirstAnswer(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	tests := []struct {
		name    string
		answer  bool // the answer arrives while the request waits
		timeout time.Duration
		want    string // the body, or "error"
	}{
		{"answer arrives", true, time.Minute, "a"},
		{"no answer within connect_timeout", false, 50 * time.Millisecond, "error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := &pushResolver{}
			opts := fastOpts("app", Target{Scheme: "http", Host: "elb.test", Port: uint16(a.port())})
			opts.ConnectTimeout = tc.timeout // bounds the wait; the first case never reaches it
			p, err := New(opts, res, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			waiting := make(chan struct{})
			p.testHookAwait = sync.OnceFunc(func() { close(waiting) })
			done := make(chan string, 1)
			go func() {
				resp, err := get(t, p, "/")
				if err != nil {
					if !errors.Is(err, ErrNoAddress) {
						done <- "unexpected error: " + err.Error()
						return
					}
					done <- "error"
					return
				}
				done <- body(t, resp)
			}()
			select {
			case <-waiting:
			case got := <-done:
				t.Fatalf("the request ended with %q without waiting for the first DNS answer", got)
			}
			if tc.answer {
				res.push(t, "elb.test", "127.0.0.2")
			}
			if got := <-done; got != tc.want {
				t.Errorf("request before the first answer: %q; want %q", got, tc.want)
			}
		})
	}
}

// A 503 (Tomcat answers it while it shuts down) sends an idempotent
// request to another address when retries.idempotent is on; otherwise, or
// for a POST, or when no other address would take it, the client gets the
// 503.
func TestPool_retries503(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	b := startBackend(t, "b", "127.0.0.3", 0)
	a.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	})
	primaryA := Target{Scheme: "http", Host: "127.0.0.2", Port: uint16(a.port())}
	backupB := Target{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port()), Backup: true}
	tests := []struct {
		name       string
		method     string
		idempotent bool // retries.idempotent
		targets    []Target
		want       string // status and body
	}{
		{"GET goes to another address", http.MethodGet, true, []Target{primaryA, backupB}, "200 b"},
		{"retries.idempotent off", http.MethodGet, false, []Target{primaryA, backupB}, "503 shutting down\n"},
		{"POST is not re-sent", http.MethodPost, true, []Target{primaryA, backupB}, "503 shutting down\n"},
		{"no other address", http.MethodGet, true, []Target{primaryA}, "503 shutting down\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := fastOpts("app", tc.targets...)
			opts.RetryIdempotent = tc.idempotent
			opts.Metrics = NewMetrics(prometheus.NewRegistry())
			p, err := New(opts, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			var reqBody io.Reader
			if tc.method == http.MethodPost {
				reqBody = strings.NewReader("order")
			}
			req, _ := http.NewRequest(tc.method, "http://app/", reqBody)
			resp, err := p.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%d %s", resp.StatusCode, body(t, resp)); got != tc.want {
				t.Errorf("%s: %q; want %q", tc.method, got, tc.want)
			}
			wantRetries := 0.0
			if tc.want == "200 b" {
				wantRetries = 1
			}
			if n := testutil.ToFloat64(opts.Metrics.retries.WithLabelValues("app", "status_503")); n != wantRetries {
				t.Errorf("retries{reason=status_503} = %v; want %v", n, wantRetries)
			}
		})
	}
}

// A request still connecting to an address when the address leaves the
// DNS answer, or is put in standby, does not wait out connect_timeout: the
// connect is abandoned and the request, which sent nothing, goes to
// another address at once, whatever its method (a POST here, with its
// body). The abandoned connect is not counted against the address.
func TestPool_abandonsConnectsToAnAddressThatLeaves(t *testing.T) {
	for _, how := range []string{"left dns", "standby"} {
		t.Run(how, func(t *testing.T) {
			var got atomic.Value
			ln, err := net.Listen("tcp", "127.0.0.3:0")
			if err != nil {
				t.Fatal(err)
			}
			b := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				got.Store(string(body))
				io.WriteString(w, "b")
			}))
			b.Listener = ln
			b.Start()
			defer b.Close()
			port := ln.Addr().(*net.TCPAddr).Port
			listenNoAccept(t, "127.0.0.2", port)
			res := &pushResolver{}
			logger, logs := observed()
			p, err := New(Options{Name: "app", ConnectTimeout: time.Minute, RaceDelay: -1,
				Targets: []Target{{Scheme: "http", Host: "elb.test", Port: uint16(port)}}}, res, logger)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			res.push(t, "elb.test", "127.0.0.2")
			done := make(chan error, 1)
			go func() {
				req, _ := http.NewRequest(http.MethodPost, "http://app/", strings.NewReader("payload"))
				resp, err := p.RoundTrip(req)
				if err == nil {
					if g := body(t, resp); g != "b" {
						err = fmt.Errorf("answered by %q; want b", g)
					}
				}
				done <- err
			}()
			// Wait until the POST is connecting to the hung address.
			deadline := time.Now().Add(10 * time.Second)
			for inflight(p, "127.0.0.2") == 0 {
				if time.Now().After(deadline) {
					t.Fatal("the POST never started connecting")
				}
				time.Sleep(time.Millisecond)
			}
			if how == "left dns" {
				res.push(t, "elb.test", "127.0.0.3")
			} else {
				res.push(t, "elb.test", "127.0.0.2", "127.0.0.3")
				if !p.SetStandby(netip.MustParseAddrPort(fmt.Sprintf("127.0.0.2:%d", port)), true) {
					t.Fatal("SetStandby found no such address")
				}
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("POST: %v", err)
				}
			case <-time.After(30 * time.Second): // a safety net: connect_timeout is a minute
				t.Fatal("the POST still waits on the connect to the address that left")
			}
			if g := got.Load(); g != "payload" {
				t.Errorf("backend b got body %q; want payload", g)
			}
			for _, l := range logs.FilterMessage("address state changed").All() {
				if r := l.ContextMap()["reason"].(string); strings.HasPrefix(r, "connect failed") {
					t.Errorf("state change %v: the abandoned connect counted as a failure", l.ContextMap())
				}
			}
		})
	}
}

func inflight(p *Pool, ip string) int64 {
	for _, e := range p.Endpoints() {
		if e.Addr().Addr() == netip.MustParseAddr(ip) {
			return e.InFlight()
		}
	}
	return 0
}
