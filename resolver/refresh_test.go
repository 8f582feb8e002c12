package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/webtier/webtier/resolver"
)

// Timers in these tests run on synctest's fake clock. The resolver's
// queries go over real loopback sockets; a goroutine blocked reading one is
// not durably blocked, so the fake clock waits for every query to finish
// before it moves on. A query that times out does so after QueryTimeout of
// real time, which is why timeout cases use a short one.

// sleep moves the fake clock on by d and lets every goroutine of the bubble
// settle (finish its queries and block again).
func sleep(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

func lookup(t *testing.T, r *resolver.Resolver, name string) ([]string, error) {
	t.Helper()
	got, err := r.Lookup(context.Background(), name)
	var out []string
	for _, a := range got {
		out = append(out, a.String())
	}
	return out, err
}

func TestLookup_refreshesBeforeTTL(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		srv.SetA("app.test", 10, addrs("10.0.0.1")...)
		if got, err := lookup(t, h.r, "app.test"); err != nil || !slices.Equal(got, []string{"10.0.0.1"}) {
			t.Fatalf("Lookup = %v, %v; want [10.0.0.1]", got, err)
		}
		srv.SetA("app.test", 10, addrs("10.0.0.2")...)

		// The refresh is due at 90% of the 10 s TTL.
		sleep(9*time.Second - time.Millisecond)
		if got, _ := lookup(t, h.r, "app.test"); !slices.Equal(got, []string{"10.0.0.1"}) {
			t.Errorf("Lookup just before 9s = %v; want the cached [10.0.0.1]", got)
		}
		if got := srv.QueriesFor("app.test"); got != 1 {
			t.Errorf("queries before 9s = %d; want 1", got)
		}
		sleep(2 * time.Millisecond)
		if got, _ := lookup(t, h.r, "app.test"); !slices.Equal(got, []string{"10.0.0.2"}) {
			t.Errorf("Lookup just after 9s = %v; want the refreshed [10.0.0.2]", got)
		}
		if got := srv.QueriesFor("app.test"); got != 2 {
			t.Errorf("queries after 9s = %d; want 2", got)
		}
		// Lookups in between never queried: only the refresh did.
		sleep(8 * time.Second)
		if got := srv.QueriesFor("app.test"); got != 2 {
			t.Errorf("queries at 17s = %d; want 2 (next refresh at 18s)", got)
		}
	})
}

func TestTTLClamp(t *testing.T) {
	tests := []struct {
		name         string
		recordTTL    uint32
		minTTL       time.Duration
		maxTTL       time.Duration
		wantTTL      time.Duration
		wantRefresh  time.Duration
		wantRefresh2 time.Duration
	}{
		{name: "zero-becomes-min", recordTTL: 0, minTTL: 2 * time.Second, maxTTL: time.Minute, wantTTL: 2 * time.Second, wantRefresh: 1800 * time.Millisecond},
		{name: "below-min", recordTTL: 1, minTTL: 5 * time.Second, maxTTL: time.Minute, wantTTL: 5 * time.Second, wantRefresh: 4500 * time.Millisecond},
		{name: "above-max", recordTTL: 3600, minTTL: time.Second, maxTTL: time.Minute, wantTTL: time.Minute, wantRefresh: 54 * time.Second},
		{name: "within", recordTTL: 30, minTTL: time.Second, maxTTL: time.Minute, wantTTL: 30 * time.Second, wantRefresh: 27 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{MinTTL: tt.minTTL, MaxTTL: tt.maxTTL}, srv)
				srv.SetA("app.test", tt.recordTTL, addrs("10.0.0.1")...)
				a, err := h.r.Resolve(context.Background(), "app.test")
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if a.TTL != tt.wantTTL {
					t.Errorf("Answer.TTL = %v; want %v", a.TTL, tt.wantTTL)
				}
				sleep(tt.wantRefresh - time.Millisecond)
				if got := srv.QueriesFor("app.test"); got != 1 {
					t.Errorf("queries just before %v = %d; want 1", tt.wantRefresh, got)
				}
				sleep(2 * time.Millisecond)
				if got := srv.QueriesFor("app.test"); got != 2 {
					t.Errorf("queries just after %v = %d; want 2", tt.wantRefresh, got)
				}
			})
		})
	}
}

// TestStale covers RFC 8767 serve-stale: a refresh failing with SERVFAIL,
// REFUSED or a timeout keeps the last good answer, marked Stale, logged
// once per failing episode, for Options.Stale from the first failed refresh.
func TestStale(t *testing.T) {
	tests := []struct {
		name        string
		fail        func(*testing.T, *serverSwitch)
		wantRcode   int
		wantTimeout bool
		wantResult  string
		// queryTimeout, when set, replaces the default 2s.
		queryTimeout time.Duration
	}{
		{name: "servfail", fail: func(_ *testing.T, s *serverSwitch) { s.rcode(dns.RcodeServerFailure) }, wantRcode: dns.RcodeServerFailure, wantResult: "servfail"},
		{name: "refused", fail: func(_ *testing.T, s *serverSwitch) { s.rcode(dns.RcodeRefused) }, wantRcode: dns.RcodeRefused, wantResult: "refused"},
		// Each timed-out query costs QueryTimeout of real time.
		{name: "timeout", fail: func(_ *testing.T, s *serverSwitch) { s.drop() }, wantRcode: -1, wantTimeout: true, wantResult: "timeout",
			queryTimeout: 250 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{Stale: 2 * time.Minute, QueryTimeout: tt.queryTimeout, Attempts: 1}, srv)
				srv.SetA("app.test", 10, addrs("10.0.0.1", "10.0.0.2")...)
				var rec recorder
				defer h.r.Subscribe("app.test", rec.fn)()
				if _, err := h.r.Lookup(context.Background(), "app.test"); err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				sleep(0)
				sw := &serverSwitch{srv: srv}
				tt.fail(t, sw)

				sleep(9*time.Second + time.Millisecond) // the refresh at 9s fails
				a, err := resolver.Cached(h.r, "app.test")
				if !a.Stale || !slices.Equal(a.Addrs, addrs("10.0.0.1", "10.0.0.2")) {
					t.Errorf("after a failed refresh: Answer = %+v; want the last addresses with Stale set", a)
				}
				var rerr *resolver.Error
				if !errors.As(err, &rerr) || rerr.Rcode != tt.wantRcode || rerr.IsTimeout != tt.wantTimeout {
					t.Errorf("stale error = %#v; want *Error with Rcode %d, IsTimeout %v", err, tt.wantRcode, tt.wantTimeout)
				}
				if got, err := lookup(t, h.r, "app.test"); err != nil || len(got) != 2 {
					t.Errorf("Lookup while stale = %v, %v; want both addresses", got, err)
				}

				// Retries keep failing: still one warning, one episode.
				sleep(40 * time.Second)
				if got := srv.QueriesFor("app.test"); got < 5 {
					t.Errorf("queries after 49s of failures = %d; want retries (at least 5)", got)
				}
				if got := h.count("dns refresh failed, serving last good answer"); got != 1 {
					t.Errorf("warnings for one failing episode = %d; want 1", got)
				}
				if got := h.metric(t, "webtier_resolver_stale_episodes_total"); got != 1 {
					t.Errorf("stale_episodes_total = %v; want 1", got)
				}
				if got := h.metric(t, "webtier_resolver_stale_names"); got != 1 {
					t.Errorf("stale_names = %v; want 1", got)
				}
				if got := h.metric(t, "webtier_resolver_queries_total", "result", tt.wantResult); got < 5 {
					t.Errorf("queries_total{result=%q} = %v; want at least 5", tt.wantResult, got)
				}
				if got := rec.calls(); len(got) != 1 {
					t.Errorf("subscriber calls = %s; want only the first answer (Stale alone is no change)", fmtSets(got))
				}

				// Recovery within the window ends the episode. Retries after
				// 9s ran at 10, 12, 16, 24 and 40s; the next is at 70s.
				sw.heal()
				sleep(21*time.Second + time.Millisecond)
				if a, err := resolver.Cached(h.r, "app.test"); a.Stale || err != nil {
					t.Errorf("after recovery: Answer = %+v, err %v; want fresh", a, err)
				}
				if got := h.metric(t, "webtier_resolver_stale_names"); got != 0 {
					t.Errorf("stale_names after recovery = %v; want 0", got)
				}
				if got := h.count("dns refresh recovered"); got != 1 {
					t.Errorf("recovery lines = %d; want 1", got)
				}
			})
		})
	}
}

// serverSwitch turns a failure mode on the test server on and off.
type serverSwitch struct {
	srv interface {
		SetRcode(int)
		SetDrop(bool)
	}
}

func (s *serverSwitch) rcode(rc int) { s.srv.SetRcode(rc) }
func (s *serverSwitch) drop()        { s.srv.SetDrop(true) }
func (s *serverSwitch) heal() {
	s.srv.SetRcode(dns.RcodeSuccess)
	s.srv.SetDrop(false)
}

func TestStale_expires(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{Stale: time.Minute}, srv)
		srv.SetA("app.test", 10, addrs("10.0.0.1")...)
		var rec recorder
		defer h.r.Subscribe("app.test", rec.fn)()
		sleep(0)
		srv.SetRcode(dns.RcodeServerFailure)

		// The refresh at 9s fails first; the answer is kept for a minute.
		sleep(69*time.Second - time.Millisecond)
		if got, err := lookup(t, h.r, "app.test"); err != nil || len(got) != 1 {
			t.Errorf("Lookup just before 69s = %v, %v; want the stale address", got, err)
		}
		sleep(2 * time.Millisecond)
		got, err := h.r.Lookup(context.Background(), "app.test")
		var rerr *resolver.Error
		if len(got) != 0 || !errors.As(err, &rerr) || rerr.Rcode != dns.RcodeServerFailure || !rerr.Temporary() || rerr.IsNotFound {
			t.Errorf("Lookup after 69s = %v, %v; want no addresses and a temporary SERVFAIL *Error", got, err)
		}
		if got, want := fmtSets(rec.calls()), fmtSets([][]netip.Addr{addrs("10.0.0.1"), nil}); got != want {
			t.Errorf("subscriber calls = %s; want %s", got, want)
		}
		lines := h.logs.FilterMessage("dns last good answer dropped, name has no addresses").All()
		if len(lines) != 1 || lines[0].Level.String() != "error" || lines[0].ContextMap()["reason"] != "stale_window_ended" {
			t.Errorf("drop log lines = %+v; want one error line with reason stale_window_ended", lines)
		}
		if got := h.metric(t, "webtier_resolver_stale_names"); got != 0 {
			t.Errorf("stale_names after expiry = %v; want 0", got)
		}
	})
}

// TestRefreshSpread: 200 names with TTL 1, answered together at start-up,
// are not re-queried together for ever: each refresh lands at a random
// point between 80% and 100% of the TTL, so after a while the queries are
// spread over time, at the same average rate as refreshes at 90%. Queries
// are counted per 100 ms window of the fake clock.
func TestRefreshSpread(t *testing.T) {
	const names = 200
	srv := startServer(t)
	for i := range names {
		srv.SetA(fmt.Sprintf("n%d.test", i), 1, addrs("10.0.0.1")...)
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarnessSpread(t, resolver.Options{}, true, srv)
		for i := range names {
			defer h.r.Subscribe(fmt.Sprintf("n%d.test", i), func(resolver.Answer) {})()
		}
		sleep(30 * time.Second) // the spread grows with every refresh
		const windows = 100     // 10 s
		counts := make([]int64, windows)
		for i := range counts {
			before := srv.Queries()
			sleep(100 * time.Millisecond)
			counts[i] = srv.Queries() - before
		}
		var total, peak int64
		for _, c := range counts {
			total += c
			peak = max(peak, c)
		}
		// Refreshes at 90% of 1 s on average: 200/0.9 queries a second.
		want := float64(names) / 0.9 * 10
		if d := float64(total)/want - 1; d < -0.05 || d > 0.05 {
			t.Errorf("queries in 10 s = %d; want %.0f ± 5%% (the same average rate)", total, want)
		}
		mean := float64(total) / windows
		if float64(peak) > 3*mean {
			t.Errorf("busiest 100 ms window = %d queries; want at most 3× the mean %.1f (windows: %v)", peak, mean, counts)
		}
		t.Logf("queries per 100 ms: mean %.1f, peak %d", mean, peak)
	})
}

// TestResolveFresh: the maintain pass's resolution takes an answer received
// within maxAge and within its TTL as fresh (no query), and asks DNS again
// for an older one.
func TestResolveFresh(t *testing.T) {
	srv := startServer(t)
	srv.SetA("short.test", 1, addrs("10.0.0.1")...)
	srv.SetA("long.test", 300, addrs("10.0.0.2")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		for _, n := range []string{"short.test", "long.test"} {
			defer h.r.Subscribe(n, func(resolver.Answer) {})()
		}
		sleep(500 * time.Millisecond)
		for _, tt := range []struct {
			name        string
			wantQueries int64
		}{
			{"short.test", 0}, // 0.5 s old, TTL 1 s
			{"long.test", 0},  // 0.5 s old, within 60 s
		} {
			before := srv.QueriesFor(tt.name)
			if _, err := h.r.ResolveFresh(context.Background(), tt.name, time.Minute); err != nil {
				t.Fatal(err)
			}
			if got := srv.QueriesFor(tt.name) - before; got != tt.wantQueries {
				t.Errorf("%s at 0.5 s: queries = %d; want %d", tt.name, got, tt.wantQueries)
			}
		}
		sleep(61 * time.Second) // long.test's answer is now 61 s old
		before := srv.QueriesFor("long.test")
		if _, err := h.r.ResolveFresh(context.Background(), "long.test", time.Minute); err != nil {
			t.Fatal(err)
		}
		if got := srv.QueriesFor("long.test") - before; got != 1 {
			t.Errorf("long.test at 61 s: queries = %d; want 1", got)
		}
	})
}
