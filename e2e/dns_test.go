package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

func TestMain(m *testing.M) { peer.Main(m) }

// recordTTL is the TTL of the test records, as low as ELB's own 60 s is high:
// it keeps the tests short without changing what they show.
const recordTTL = 1

// followBound is how long after BIND serves a change every new request must
// reach the new address. It is derived from the settings, not measured: the
// resolver refreshes a name before its (clamped) TTL runs out, so the new
// answer is fetched at most one TTL after the change, plus one query round
// trip; one more second absorbs scheduling on a loaded 2-core CI machine.
const followBound = recordTTL*time.Second + time.Second

// stack is one BIND, two or more backends sharing a port on different
// loopback addresses, and webtier pointed at that BIND.
type stack struct {
	bind     *peer.BIND
	backends []*peer.Backend
	webtier  *peer.Webtier
}

type stackOptions struct {
	records []peer.Record
	target  string        // hostname in the upstream URL, e.g. "elb.proxy.test"
	stale   time.Duration // resolver.stale
}

func startStack(t *testing.T, ips []string, o stackOptions) *stack {
	t.Helper()
	s := &stack{backends: peer.StartBackends(t, ips...)}
	s.bind = peer.StartBIND(t, peer.BINDOptions{Records: o.records})
	if o.stale == 0 {
		o.stale = 30 * time.Second
	}
	s.webtier = startWebtier(t, s.bind, o.target, s.backends[0].Port(), "    connect_timeout: 1s\n", o.stale)
	return s
}

// startWebtier starts webtier with one route to upstream elb, whose target
// is http://target:port, resolved through bind with a short query timeout.
// upstream holds extra YAML lines for the upstream, indented four spaces.
func startWebtier(t *testing.T, bind *peer.BIND, target string, port int, upstream string, stale time.Duration) *peer.Webtier {
	t.Helper()
	return startWebtierResolver(t, bind, target, port, upstream, fmt.Sprintf("  stale: %s\n", stale))
}

// startWebtierResolver is startWebtier with resolver holding extra YAML
// lines for the resolver section, indented two spaces.
func startWebtierResolver(t *testing.T, bind *peer.BIND, target string, port int, upstream, resolver string) *peer.Webtier {
	t.Helper()
	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`
listeners:
  - address: %q
routes:
  - path: /
    upstream: elb
upstreams:
  elb:
    targets:
      - url: http://%s:%d
%sresolver:
  nameservers: [%q]
  query_timeout: 500ms
  attempts: 1
%slogging:
  level: info
  format: json
`, listen, target, port, upstream, bind.Addr(), resolver)
	return peer.StartWebtier(t, peer.Build(t), listen, cfg)
}

// result is what the client saw of one request.
type result struct {
	sent    time.Time
	backend string // X-Backend of the answer
	status  int
	err     error
}

func (r result) ok() bool { return r.err == nil && r.status == http.StatusOK }

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("request at %s: %v", r.sent.Format("15:04:05.000"), r.err)
	}
	return fmt.Sprintf("request at %s: %d from %q", r.sent.Format("15:04:05.000"), r.status, r.backend)
}

// stream sends GET requests to url one after another, every 10 ms, over
// keep-alive connections unless newConn is set, and delivers what happened
// on the returned channel, naming the backend by its X-Backend header. It
// is bounded: it stops after 60 s or 6000 requests, or when the test ends.
func stream(t *testing.T, url string, newConn bool) <-chan result {
	t.Helper()
	return requestStream(t, http.MethodGet, url+"/", newConn, func(resp *http.Response) string {
		return resp.Header.Get("X-Backend")
	})
}

// requestStream is stream with any method (POST and PUT carry a 16-byte
// body), target URL and way of naming the backend that answered.
func requestStream(t *testing.T, method, url string, newConn bool, backend func(*http.Response) string) <-chan result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	out := make(chan result, 6000)
	tr := &http.Transport{DisableKeepAlives: newConn, MaxIdleConnsPerHost: 4}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	go func() {
		defer close(out)
		defer tr.CloseIdleConnections()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range 6000 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			r := result{sent: time.Now()}
			var body io.Reader
			if method == http.MethodPost || method == http.MethodPut {
				body = strings.NewReader("0123456789abcdef")
			}
			req, _ := http.NewRequestWithContext(ctx, method, url, body)
			resp, err := client.Do(req)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.err = err
			} else {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				r.status, r.backend = resp.StatusCode, backend(resp)
			}
			out <- r
		}
	}()
	return out
}

// consume reads results until done returns true, failing the test on any
// failed request (unless allowFail) or when the stream ends first.
func consume(t *testing.T, results <-chan result, what string, allowFail bool, done func(result) bool) {
	t.Helper()
	for r := range results {
		if !allowFail && !r.ok() {
			t.Fatalf("%s: %v; want every request to succeed", what, r)
		}
		if done(r) {
			return
		}
	}
	t.Fatalf("%s: the request stream ended first", what)
}

// expectFollow asserts that after a DNS change made at changed, every
// request sent later than followBound goes to want, that none fails, and
// returns once 20 such requests were seen.
func expectFollow(t *testing.T, results <-chan result, changed time.Time, want string) {
	t.Helper()
	expectFollowWithin(t, results, changed, want, followBound)
}

// expectFollowWithin is expectFollow with another bound.
func expectFollowWithin(t *testing.T, results <-chan result, changed time.Time, want string, bound time.Duration) {
	t.Helper()
	after := 0
	var first time.Time
	consume(t, results, "after the change to "+want, false, func(r result) bool {
		if r.backend == want && first.IsZero() {
			first = r.sent
		}
		if r.sent.Before(changed.Add(bound)) {
			return false
		}
		if r.backend != want {
			t.Fatalf("%v: %s after the change; want every request to reach %s", r, r.sent.Sub(changed), want)
		}
		after++
		return after == 20
	})
	t.Logf("first request on %s was sent %s after the change", want, first.Sub(changed).Round(time.Millisecond))
}

// The record moves from a to b and back, as Route53 moves an ELB: requests
// follow both ways, none fails while the old backend stays up, and no
// start-up answer survives. The CNAME case puts app -> elb -> A in front.
func TestDNSChangeIsFollowed(t *testing.T) {
	for _, tc := range []struct {
		name    string
		target  string
		newConn bool
	}{
		{name: "a-record-keep-alive", target: "elb.proxy.test"},
		{name: "a-record-new-connections", target: "elb.proxy.test", newConn: true},
		{name: "cname-chain", target: "app.proxy.test"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ips := []string{"127.0.0.21", "127.0.0.22"}
			s := startStack(t, ips, stackOptions{target: tc.target, records: []peer.Record{
				{Name: "elb", TTL: recordTTL, Type: "A", Value: ips[0]},
				{Name: "app", TTL: recordTTL, Type: "CNAME", Value: "elb.proxy.test."},
			}})
			results := stream(t, s.webtier.URL(), tc.newConn)
			consume(t, results, "before the change", false, func(r result) bool { return r.backend == ips[0] })

			s.bind.SetA(t, "elb", recordTTL, ips[1])
			expectFollow(t, results, time.Now(), ips[1])

			s.bind.SetA(t, "elb", recordTTL, ips[0])
			expectFollow(t, results, time.Now(), ips[0])
		})
	}
}

// With BIND gone, webtier keeps serving from the last good answer for the
// stale window; once BIND is back it follows changes again. "stopped" gets
// refused queries at once, "paused" (SIGSTOP) gets timeouts.
func TestServesStaleWhileDNSIsDown(t *testing.T) {
	for _, mode := range []string{"stopped", "paused"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ips := []string{"127.0.0.23", "127.0.0.24"}
			s := startStack(t, ips, stackOptions{target: "elb.proxy.test", records: []peer.Record{
				{Name: "elb", TTL: recordTTL, Type: "A", Value: ips[0]},
			}})
			results := stream(t, s.webtier.URL(), false)
			consume(t, results, "before DNS went down", false, func(r result) bool { return r.backend == ips[0] })

			down := time.Now()
			if mode == "stopped" {
				s.bind.Stop(t)
			} else {
				s.bind.Pause(t)
			}
			// Five TTLs without DNS: every refresh fails, every request
			// still reaches a.
			consume(t, results, "while DNS is down", false, func(r result) bool {
				if r.backend != ips[0] {
					t.Fatalf("%v; want %s from the stale answer", r, ips[0])
				}
				return r.sent.After(down.Add(5 * recordTTL * time.Second))
			})

			if mode == "stopped" {
				s.bind.Restart(t)
			} else {
				s.bind.Resume(t)
			}
			s.bind.SetA(t, "elb", recordTTL, ips[1])
			expectFollow(t, results, time.Now(), ips[1])
		})
	}
}

// When DNS stays down past the stale window, the name has no addresses and
// webtier answers 502 rather than guessing; requests sent inside the window
// all succeed.
func TestStaleWindowEnds(t *testing.T) {
	t.Parallel()
	const stale = 3 * time.Second
	ips := []string{"127.0.0.25"}
	s := startStack(t, ips, stackOptions{target: "elb.proxy.test", stale: stale, records: []peer.Record{
		{Name: "elb", TTL: recordTTL, Type: "A", Value: ips[0]},
	}})
	results := stream(t, s.webtier.URL(), false)
	consume(t, results, "before DNS went down", false, func(r result) bool { return r.backend == ips[0] })
	down := time.Now()
	s.bind.Stop(t)
	// The window starts when the last answer expires, at most one TTL after
	// BIND went down.
	inside := down.Add(stale)
	outside := down.Add(recordTTL*time.Second + stale + followBound)
	failed := 0
	consume(t, results, "around the end of the stale window", true, func(r result) bool {
		switch {
		case r.sent.Before(inside) && !r.ok():
			t.Fatalf("%v: inside the stale window; want 200", r)
		case r.sent.After(outside) && r.status != http.StatusBadGateway:
			t.Fatalf("%v: after the stale window; want 502", r)
		case r.sent.After(outside):
			failed++
		}
		return failed == 10
	})
}

// A name that lost its addresses comes back within about a TTL of its
// record's return, however long it was gone: the record deleted past
// negative_hold (an ELB deleted and recreated) and BIND down past the
// stale window. Before, the resolver retried such a name on a backoff
// that had grown to 30 s, so requests kept getting 502 for up to 30 s
// after the record was back.
func TestNameComesBack(t *testing.T) {
	for _, tc := range []struct {
		name     string
		resolver string
		lose     func(*stack)
		restore  func(*stack)
	}{
		{
			name:     "deleted-past-negative-hold",
			resolver: "  negative_hold: 2s\n",
			lose:     func(s *stack) { s.bind.Delete(t, "elb") },
			restore:  func(s *stack) { s.bind.SetA(t, "elb", recordTTL, "127.0.0.26") },
		},
		{
			name:     "dns-down-past-stale",
			resolver: "  stale: 2s\n",
			lose:     func(s *stack) { s.bind.Stop(t) },
			restore:  func(s *stack) { s.bind.Restart(t) },
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ips := []string{"127.0.0.26"}
			s := &stack{backends: peer.StartBackends(t, ips...)}
			s.bind = peer.StartBIND(t, peer.BINDOptions{Records: []peer.Record{
				{Name: "elb", TTL: recordTTL, Type: "A", Value: ips[0]},
			}})
			s.webtier = startWebtierResolver(t, s.bind, "elb.proxy.test", s.backends[0].Port(),
				"    connect_timeout: 1s\n", tc.resolver)
			results := stream(t, s.webtier.URL(), false)
			consume(t, results, "before the name was lost", false, func(r result) bool { return r.backend == ips[0] })

			tc.lose(s)
			var gone time.Time
			consume(t, results, "while the name is lost", true, func(r result) bool {
				if r.status == http.StatusBadGateway && gone.IsZero() {
					gone = r.sent
				}
				// Long enough for the old backoff to have grown past 16 s.
				return !gone.IsZero() && r.sent.After(gone.Add(25*time.Second))
			})
			tc.restore(s)
			back := time.Now()
			ok := 0
			var first time.Time
			consume(t, results, "after the name came back", true, func(r result) bool {
				if r.ok() && first.IsZero() {
					first = r.sent
				}
				if r.sent.Before(back.Add(followBound)) {
					return false
				}
				if !r.ok() || r.backend != ips[0] {
					t.Fatalf("%v: %s after the name came back; want 200 from %s", r, r.sent.Sub(back), ips[0])
				}
				ok++
				return ok == 20
			})
			t.Logf("first 200 was sent %s after the name came back", first.Sub(back).Round(time.Millisecond))
		})
	}
}

// A first nameserver that drops every query (a UDP socket that never
// answers) costs one query_timeout, not one per query: after it, webtier
// asks BIND first, so changes are followed within the usual bound and not
// query_timeout later; the dead server only gets background probes.
func TestDeadFirstNameserver(t *testing.T) {
	t.Parallel()
	ips := []string{"127.0.0.30", "127.0.0.31"}
	bs := peer.StartBackends(t, ips...)
	bind := peer.StartBIND(t, peer.BINDOptions{Records: []peer.Record{
		{Name: "elb", TTL: recordTTL, Type: "A", Value: ips[0]},
	}})
	dead, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dead.Close()
	var deadQueries atomic.Int64
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := dead.ReadFrom(buf); err != nil {
				return
			}
			deadQueries.Add(1)
		}
	}()
	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`
listeners:
  - address: %q
routes:
  - upstream: elb
upstreams:
  elb:
    targets: [http://elb.proxy.test:%d]
resolver:
  nameservers: [%q, %q]
  query_timeout: 2s
logging:
  level: info
  format: json
`, listen, bs[0].Port(), dead.LocalAddr().String(), bind.Addr())
	w := peer.StartWebtier(t, peer.Build(t), listen, cfg)
	results := stream(t, w.URL(), false)
	consume(t, results, "before the change", false, func(r result) bool { return r.backend == ips[0] })
	w.WaitLog(t, "nameserver did not answer")

	for i, ip := range []string{ips[1], ips[0], ips[1]} {
		bind.SetA(t, "elb", recordTTL, ip)
		expectFollow(t, results, time.Now(), ip)
		t.Logf("change %d followed; the dead server got %d queries so far", i+1, deadQueries.Load())
	}
	// Probes back off from 2 s to a minute: far fewer than the one query
	// per refresh (about 1 a second here) that it got before.
	if n := deadQueries.Load(); n > 8 {
		t.Errorf("the dead server got %d queries; want a few probes at most", n)
	}
}
