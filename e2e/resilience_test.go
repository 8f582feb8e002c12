package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// The resilience tests break backends the way ELB nodes break: a node
// vanishes (every packet to it dropped, established connections hang), a
// backend dies (connections refused), a health endpoint fails. Each runs in
// a network namespace of its own (peer.InNetns), where the nftables rules
// of peer.Blackhole cannot touch the host.

// resilienceUpstream is the upstream configuration every resilience test
// starts from: short ejection backoffs so that a test sees several probes.
// Everything else is webtier's default: connect_timeout 1 s as in
// dns_test.go, race_delay 250 ms, rescue_grace 1 s, least_conn, and no
// retries.idempotent, so the zero-failure results hold for the defaults.
const resilienceUpstream = `
    connect_timeout: 1s
    ejection: {backoff_base: 200ms, backoff_cap: 1s}
`

// startResilience starts a backend on each of ips (same port), BIND with
// name elb answering the first inDNS of them, and webtier with
// resilienceUpstream plus extra (YAML lines indented four spaces, under
// upstreams.elb).
func startResilience(t *testing.T, ips []string, inDNS int, extra string) *stack {
	t.Helper()
	s := &stack{backends: peer.StartBackends(t, ips...)}
	s.webtier = startResilienceWebtier(t, s.startBIND(t, ips[:inDNS]), s.backends[0].Port(), extra)
	return s
}

func (s *stack) startBIND(t *testing.T, ips []string) *peer.BIND {
	t.Helper()
	var records []peer.Record
	for _, ip := range ips {
		records = append(records, peer.Record{Name: "elb", TTL: recordTTL, Type: "A", Value: ip})
	}
	s.bind = peer.StartBIND(t, peer.BINDOptions{Records: records})
	return s.bind
}

func startResilienceWebtier(t *testing.T, bind *peer.BIND, port int, extra string) *peer.Webtier {
	t.Helper()
	return startWebtier(t, bind, "elb.proxy.test", port, strings.TrimPrefix(resilienceUpstream, "\n")+extra, 30*time.Second)
}

// latencies records how long each request of a stream took, by send time.
type latencies struct {
	mu   sync.Mutex
	sent []time.Time
	took []time.Duration
}

// timedStream is stream that also records each request's latency: the
// time from sending it until its result was delivered, which a goroutine
// in between notes as soon as it arrives (stream's channel is buffered, so
// the test reading late does not inflate it).
func timedStream(t *testing.T, url string, newConn bool) (<-chan result, *latencies) {
	t.Helper()
	in := stream(t, url, newConn)
	out := make(chan result, cap(in))
	l := &latencies{}
	go func() {
		defer close(out)
		for r := range in {
			l.mu.Lock()
			l.sent = append(l.sent, r.sent)
			l.took = append(l.took, time.Since(r.sent))
			l.mu.Unlock()
			out <- r
		}
	}()
	return out, l
}

// window summarizes the latencies of the requests sent in [from, to).
func (l *latencies) window(from, to time.Time) string {
	l.mu.Lock()
	var d []time.Duration
	for i, s := range l.sent {
		if !s.Before(from) && s.Before(to) {
			d = append(d, l.took[i])
		}
	}
	l.mu.Unlock()
	if len(d) == 0 {
		return "no requests"
	}
	slices.Sort(d)
	p99 := d[(len(d)*99+99)/100-1]
	slow := len(d) - slices.IndexFunc(d, func(x time.Duration) bool { return x > 100*time.Millisecond })
	if slow > len(d) {
		slow = 0
	}
	return fmt.Sprintf("%d requests, p50 %v, p99 %v, max %v, %d over 100ms", len(d),
		d[len(d)/2].Round(100*time.Microsecond), p99.Round(100*time.Microsecond), d[len(d)-1].Round(time.Millisecond), slow)
}

// stateChange is one "address state changed" line of webtier's JSON log.
type stateChange struct {
	Msg     string `json:"msg"`
	Address string `json:"address"`
	From    string `json:"from"`
	To      string `json:"to"`
	Reason  string `json:"reason"`
}

// stateChanges returns webtier's "address state changed" lines for addr
// ("ip:port"), oldest first.
func stateChanges(w *peer.Webtier, addr string) []stateChange {
	var out []stateChange
	for _, line := range strings.Split(w.Logs(), "\n") {
		if !strings.Contains(line, `"address state changed"`) {
			continue
		}
		var c stateChange
		if json.Unmarshal([]byte(line), &c) == nil && c.Address == addr {
			out = append(out, c)
		}
	}
	return out
}

// reached reports whether addr has entered state to in the log since it had
// skip state changes.
func reached(w *peer.Webtier, addr, to string, skip int) bool {
	cs := stateChanges(w, addr)
	for _, c := range cs[min(skip, len(cs)):] {
		if c.To == to {
			return true
		}
	}
	return false
}

// awaitState consumes results (none may fail) until webtier logs that addr
// entered state to (after its first skip state changes), and returns the
// number of state changes of addr logged by then. The stream bounds the
// wait; a test can fail here only by a failed request or by the stream
// ending first.
func awaitState(t *testing.T, results <-chan result, w *peer.Webtier, addr, to string, skip int) int {
	t.Helper()
	consume(t, results, fmt.Sprintf("until %s is %s", addr, to), false, func(result) bool {
		return reached(w, addr, to, skip)
	})
	n := len(stateChanges(w, addr))
	t.Logf("%s is %s: %s", addr, to, describeChanges(stateChanges(w, addr)))
	return n
}

func describeChanges(cs []stateChange) string {
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s->%s (%s)", c.From, c.To, c.Reason)
	}
	return b.String()
}

// consumeFor consumes results (none may fail) until one sent at or after
// until arrives, calling each (if not nil) with every result.
func consumeFor(t *testing.T, results <-chan result, what string, until time.Time, each func(result)) {
	t.Helper()
	consume(t, results, what, false, func(r result) bool {
		if each != nil {
			each(r)
		}
		return !r.sent.Before(until)
	})
}

// warmUp consumes results until every backend in want has answered and at
// least n requests succeeded.
func warmUp(t *testing.T, results <-chan result, n int, want ...string) {
	t.Helper()
	seen := map[string]bool{}
	count := 0
	consume(t, results, "before the fault", false, func(r result) bool {
		seen[r.backend] = true
		count++
		for _, b := range want {
			if !seen[b] {
				return false
			}
		}
		return count >= n
	})
}

// The ELB node behind the record vanishes at the moment Route 53 moves the
// record to a new one: every packet to the old address is dropped, so
// webtier's pooled keep-alive connections to it hang. No request may fail;
// the test logs what the change costs in latency.
func TestResilienceVanish(t *testing.T) {
	for _, tc := range []struct {
		name    string
		newConn bool
	}{
		{name: "keep-alive"},
		{name: "new-connections", newConn: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !peer.InNetns(t) {
				return
			}
			ips := []string{"127.0.0.21", "127.0.0.22"}
			s := startResilience(t, ips, 1, "")
			b := s.backends[1]
			results, lat := timedStream(t, s.webtier.URL(), tc.newConn)
			warmUp(t, results, 100, ips[0])

			vanished := time.Now()
			peer.Blackhole(t, ips[0], s.backends[0].Port())
			s.bind.SetA(t, "elb", recordTTL, ips[1])
			changed := time.Now()
			expectFollow(t, results, changed, ips[1])
			after := changed.Add(followBound + 3*time.Second)
			consumeFor(t, results, "after the change", after, nil)

			t.Logf("before the change: %s", lat.window(time.Time{}, vanished))
			t.Logf("change (black hole + nsupdate %v) to +%v: %s", changed.Sub(vanished).Round(time.Millisecond),
				after.Sub(vanished).Round(time.Second), lat.window(vanished, after))
			t.Logf("%s answered %d requests; webtier log: %s", b, b.Count(),
				describeChanges(stateChanges(s.webtier, s.backends[0].Addr())))
		})
	}
}

// The record moves while the old backend stays up: keep-alive clients of
// webtier stop reaching it within the TTL bound, and nothing fails.
func TestResilienceMove(t *testing.T) {
	if !peer.InNetns(t) {
		return
	}
	ips := []string{"127.0.0.21", "127.0.0.22"}
	s := startResilience(t, ips, 1, "")
	results := stream(t, s.webtier.URL(), false)
	warmUp(t, results, 20, ips[0])

	s.bind.SetA(t, "elb", recordTTL, ips[1])
	changed := time.Now()
	countA := s.backends[0].Count()
	expectFollow(t, results, changed, ips[1])
	t.Logf("%s answered %d requests after nsupdate returned", s.backends[0], s.backends[0].Count()-countA)
}

// Two addresses in DNS, one fails while requests stream. "dies" closes
// the backend (listener and connections: connects are refused, pooled
// connections break); "black-holed" drops every packet to it (connects
// time out, pooled connections hang). DNS keeps listing it throughout, so
// only webtier's own failure handling can save the requests: none may
// fail, and once the address is ejected none reaches it.
func TestResilienceOneOfTwo(t *testing.T) {
	for _, fault := range []string{"dies", "black-holed"} {
		t.Run(fault, func(t *testing.T) {
			if !peer.InNetns(t) {
				return
			}
			ips := []string{"127.0.0.21", "127.0.0.22"}
			s := startResilience(t, ips, 2, "")
			a := s.backends[0]
			results, lat := timedStream(t, s.webtier.URL(), false)
			warmUp(t, results, 100, ips...)

			failed := time.Now()
			if fault == "dies" {
				a.Close()
			} else {
				peer.Blackhole(t, a.IP(), a.Port())
			}
			n := awaitState(t, results, s.webtier, a.Addr(), "ejected", 0)
			ejected := time.Now()
			until := ejected.Add(3 * time.Second)
			consumeFor(t, results, "after "+a.Addr()+" was ejected", until, func(r result) {
				if r.sent.After(ejected) && r.backend != ips[1] {
					t.Fatalf("%v: %s after %s was ejected; want %s", r, r.sent.Sub(ejected), a.Addr(), ips[1])
				}
			})
			// Probes keep failing: it stays out.
			for _, c := range stateChanges(s.webtier, a.Addr())[n:] {
				if c.To == "running" || c.To == "recovering" {
					t.Errorf("%s went %s->%s (%s) while still %s; want it to stay ejected", a.Addr(), c.From, c.To, c.Reason, fault)
				}
			}
			t.Logf("ejected %v after the fault", ejected.Sub(failed).Round(time.Millisecond))
			t.Logf("before the fault: %s", lat.window(time.Time{}, failed))
			t.Logf("fault to +%v: %s", until.Sub(failed).Round(time.Second), lat.window(failed, until))
		})
	}
}

// A backend stops acknowledging (black-holed, DNS unchanged) while
// requests wait on pooled keep-alive connections to it. webtier sees a
// request left unacknowledged through two retransmissions and re-sends it
// to the other address, well before the kernel's TCP_USER_TIMEOUT (10 s
// here, from connect_timeout) would break the connection: the first state
// change of the address says so. Before the stall watch, the first change
// came from TCP_USER_TIMEOUT or a failed connect, 10 s after the fault.
func TestResilienceStalledRequest(t *testing.T) {
	if !peer.InNetns(t) {
		return
	}
	ips := []string{"127.0.0.21", "127.0.0.22"}
	s := &stack{backends: peer.StartBackends(t, ips...)}
	s.webtier = startWebtier(t, s.startBIND(t, ips), "elb.proxy.test", s.backends[0].Port(),
		"    connect_timeout: 10s\n    ejection: {backoff_base: 200ms, backoff_cap: 1s}\n", 30*time.Second)
	a := s.backends[0]
	results, lat := timedStream(t, s.webtier.URL(), false)
	warmUp(t, results, 100, ips...)

	failed := time.Now()
	peer.Blackhole(t, a.IP(), a.Port())
	awaitState(t, results, s.webtier, a.Addr(), "suspect", 0)
	suspect := time.Now()
	if first := stateChanges(s.webtier, a.Addr())[0]; first.Reason != "backend stopped acknowledging a request" {
		t.Errorf("first state change of %s: %s->%s (%s); want it made suspect because it stopped acknowledging a request",
			a.Addr(), first.From, first.To, first.Reason)
	}
	until := suspect.Add(2 * time.Second)
	consumeFor(t, results, "after "+a.Addr()+" was suspect", until, nil)
	t.Logf("suspect %v after the fault", suspect.Sub(failed).Round(time.Millisecond))
	t.Logf("fault to +%v: %s", until.Sub(failed).Round(time.Second), lat.window(failed, until))
}

// httpd's maintain pass gave workers their stale start-up addresses back.
// Here an address is black-holed until webtier ejects it, then leaves DNS,
// then comes back to life: several maintain passes later it has still not
// had a single request, because the pass only restores what a fresh DNS
// answer lists.
func TestResilienceMaintainNeverResurrects(t *testing.T) {
	if !peer.InNetns(t) {
		return
	}
	const maintain = 500 * time.Millisecond
	ips := []string{"127.0.0.21", "127.0.0.22"}
	// No keep-alive to the backends: every request connects, so the black
	// hole is found by connects timing out (raced to the other address)
	// rather than by requests hanging on pooled connections, which
	// TestResilienceOneOfTwo/black-holed covers. This test is about what
	// happens after the ejection.
	s := startResilience(t, ips, 2, fmt.Sprintf("    maintain_interval: %v\n    max_idle_per_address: 0\n", maintain))
	a := s.backends[0]
	results := stream(t, s.webtier.URL(), false)
	warmUp(t, results, 20, ips...)

	unblock := peer.Blackhole(t, a.IP(), a.Port())
	n := awaitState(t, results, s.webtier, a.Addr(), "ejected", 0)

	// The new answer has a long TTL, so the resolver's own refresh stays
	// quiet for the rest of the test: every query BIND sees from now on is
	// a maintain pass forcing a fresh resolution.
	s.bind.SetA(t, "elb", 60, ips[1])
	awaitState(t, results, s.webtier, a.Addr(), "draining", n)

	// Bring the address back with a new backend: the old one's sockets may
	// still hold request bytes that the kernel retransmits once the black
	// hole is gone (connections opened before the address left DNS); a new
	// listener only ever sees new connections.
	a.Close()
	back := peer.StartBackendAt(t, a.Addr(), a.Name())
	unblock()
	revived := time.Now()
	queries := s.bind.Queries("elb", "A")

	// Wait for at least four maintain passes, bounded by ten intervals.
	const passes = 4
	consume(t, results, "after "+a.Addr()+" came back outside DNS", false, func(r result) bool {
		if r.backend != ips[1] {
			t.Fatalf("%v: want %s, the only address in DNS", r, ips[1])
		}
		return s.bind.Queries("elb", "A") >= queries+passes || r.sent.After(revived.Add(10*maintain))
	})
	got := s.bind.Queries("elb", "A") - queries
	t.Logf("%v after %s came back: %d maintain passes (BIND queries); %s answered %d requests",
		time.Since(revived).Round(time.Millisecond), a.Addr(), got, back, back.Count())
	if got < passes {
		t.Fatalf("BIND saw %d queries for elb in %v after %s came back; want %d maintain passes (maintain_interval %v)",
			got, time.Since(revived).Round(time.Millisecond), a.Addr(), passes, maintain)
	}
	if n := back.Count(); n != 0 {
		t.Errorf("%s answered %d requests after it left DNS; want 0 (maintain must not restore it)", back, n)
	}
	for _, c := range stateChanges(s.webtier, a.Addr()) {
		if c.From == "draining" {
			t.Errorf("%s left draining: %s->%s (%s); want it gone for good", a.Addr(), c.From, c.To, c.Reason)
		}
	}
}

// flakyBackend is a backend on a fixed address whose health endpoint can be
// made to fail. Every other path is answered like peer.Backend
// ("X-Backend: <ip>") and counted.
type flakyBackend struct {
	srv     *httptest.Server
	ip      string
	failing atomic.Bool
	count   atomic.Int64
	checks  atomic.Int64
}

const healthPath = "/health_check.html"

func startFlakyBackend(t *testing.T, addr string) *flakyBackend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	f := &flakyBackend{ip: ln.Addr().(*net.TCPAddr).IP.String()}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == healthPath {
			f.checks.Add(1)
			if f.failing.Load() {
				http.Error(w, "failing", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
			return
		}
		f.count.Add(1)
		w.Header().Set("X-Backend", f.ip)
		fmt.Fprintln(w, f.ip)
	}))
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// Active health checks: A's health endpoint starts answering 503 while
// DNS keeps listing it. webtier ejects A and sends it nothing more; once
// the endpoint heals, A is restored and takes requests again. No request
// fails.
func TestResilienceHealthCheck(t *testing.T) {
	if !peer.InNetns(t) {
		return
	}
	ips := []string{"127.0.0.21", "127.0.0.22"}
	s := &stack{backends: peer.StartBackends(t, ips[1])}
	port := s.backends[0].Port()
	a := startFlakyBackend(t, net.JoinHostPort(ips[0], fmt.Sprint(port)))
	addrA := net.JoinHostPort(ips[0], fmt.Sprint(port))
	s.webtier = startResilienceWebtier(t, s.startBIND(t, ips), port, `
    health_check:
      path: `+healthPath+`
      expect_status: "200-399"
      interval: 200ms
      timeout: 150ms
      fall: 2
      rise: 2
`)
	results := stream(t, s.webtier.URL(), false)
	warmUp(t, results, 20, ips...)
	if a.checks.Load() == 0 {
		t.Fatalf("%s had no health check before the test; want checks every 200ms", addrA)
	}

	a.failing.Store(true)
	n := awaitState(t, results, s.webtier, addrA, "ejected", 0)
	ejected, countA := time.Now(), a.count.Load()
	consumeFor(t, results, "while "+addrA+" is ejected", ejected.Add(2*time.Second), func(r result) {
		if r.backend != ips[1] {
			t.Fatalf("%v: %v after %s was ejected by its health check; want %s", r, r.sent.Sub(ejected), addrA, ips[1])
		}
	})
	if got := a.count.Load(); got != countA {
		t.Errorf("%s answered %d requests while ejected; want none", addrA, got-countA)
	}

	a.failing.Store(false)
	awaitState(t, results, s.webtier, addrA, "running", n)
	healed := time.Now()
	consume(t, results, "after "+addrA+" healed", false, func(r result) bool { return r.backend == ips[0] })
	t.Logf("first request on %s %v after it was restored", addrA, time.Since(healed).Round(time.Millisecond))
}
