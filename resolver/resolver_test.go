package resolver_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap/zapcore"

	"github.com/webtier/webtier/resolver"
)

// TestLookup_singleflight: N concurrent first Lookups cost exactly one
// query per record type. The server delays its answer so that all of them
// are waiting while the query is in flight.
func TestLookup_singleflight(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 60, addrs("10.0.0.1", "2001:db8::1")...)
	srv.SetDelay(50 * time.Millisecond)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{Family: resolver.FamilyBoth}, srv)
		const n = 20
		results := make([][]netip.Addr, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got, err := h.r.Lookup(context.Background(), "app.test")
				if err != nil {
					t.Errorf("Lookup %d: %v", i, err)
				}
				results[i] = got
			})
		}
		wg.Wait()
		for qt, want := range map[uint16]int64{dns.TypeA: 1, dns.TypeAAAA: 1} {
			if got := srv.QueriesForType("app.test", qt); got != want {
				t.Errorf("%s queries = %d; want %d", dns.TypeToString[qt], got, want)
			}
		}
		for i, got := range results {
			if !slices.Equal(got, addrs("10.0.0.1", "2001:db8::1")) || &got[0] != &results[0][0] {
				t.Errorf("Lookup %d = %v; want the one shared answer %v", i, got, results[0])
			}
		}
	})
}

// TestLookup_callerCancelDoesNotCancelQuery: a caller giving up must not
// cancel the shared first query for the others.
func TestLookup_callerCancelDoesNotCancelQuery(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 60, addrs("10.0.0.1")...)
	srv.SetDelay(50 * time.Millisecond)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := h.r.Lookup(ctx, "app.test")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Lookup with a cancelled ctx = %v; want context.Canceled", err)
		}
		if got, err := lookup(t, h.r, "app.test"); err != nil || len(got) != 1 {
			t.Errorf("second Lookup = %v, %v; want [10.0.0.1]", got, err)
		}
		if got := srv.Queries(); got != 1 {
			t.Errorf("queries = %d; want 1 (the first query was shared, not cancelled)", got)
		}
	})
}

func TestResolve(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 300, addrs("10.0.0.1")...)
	// The delay keeps each resolution in flight long enough for 10
	// concurrent Resolves to join it.
	srv.SetDelay(100 * time.Millisecond)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		var rec recorder
		defer h.r.Subscribe("app.test", rec.fn)()
		sleep(0)

		// Resolve queries even though an answer is cached, and the change
		// reaches subscribers at once.
		srv.SetA("app.test", 300, addrs("10.0.0.2")...)
		a, err := h.r.Resolve(context.Background(), "app.test")
		if err != nil || !slices.Equal(a.Addrs, addrs("10.0.0.2")) || a.Stale {
			t.Fatalf("Resolve = %+v, %v; want fresh [10.0.0.2]", a, err)
		}
		sleep(0)
		if got, want := fmtSets(rec.calls()), fmtSets([][]netip.Addr{addrs("10.0.0.1"), addrs("10.0.0.2")}); got != want {
			t.Errorf("subscriber calls = %s; want %s", got, want)
		}

		// Concurrent Resolves share one resolution.
		before := srv.Queries()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := h.r.Resolve(context.Background(), "app.test"); err != nil {
					t.Errorf("Resolve: %v", err)
				}
			})
		}
		wg.Wait()
		// Usually 1; 2 if a goroutine was scheduled only after the shared
		// resolution had ended (TestFlight pins the joining itself).
		if got := srv.Queries() - before; got > 2 {
			t.Errorf("queries for 10 concurrent Resolves = %d; want 1 (at most 2)", got)
		}

		// A failed Resolve returns the error, not the stale answer Lookup
		// still serves.
		srv.SetRcode(dns.RcodeServerFailure)
		a, err = h.r.Resolve(context.Background(), "app.test")
		var rerr *resolver.Error
		if !errors.As(err, &rerr) || rerr.Rcode != dns.RcodeServerFailure || len(a.Addrs) != 0 {
			t.Errorf("Resolve during SERVFAIL = %+v, %v; want no addresses and a SERVFAIL *Error", a, err)
		}
		if got, err := lookup(t, h.r, "app.test"); err != nil || !slices.Equal(got, []string{"10.0.0.2"}) {
			t.Errorf("Lookup during SERVFAIL = %v, %v; want the stale [10.0.0.2]", got, err)
		}
	})
}

func TestRefreshNow_rateLimit(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 300, addrs("10.0.0.1")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{RefreshNowMinGap: time.Second}, srv)
		if _, err := h.r.Lookup(context.Background(), "app.test"); err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		srv.SetA("app.test", 300, addrs("10.0.0.2")...)
		for range 5 {
			h.r.RefreshNow("app.test")
		}
		synctest.Wait()
		if got := srv.QueriesFor("app.test"); got != 2 {
			t.Errorf("queries after 5 RefreshNow = %d; want 2 (lookup + one refresh)", got)
		}
		if got, _ := lookup(t, h.r, "app.test"); !slices.Equal(got, []string{"10.0.0.2"}) {
			t.Errorf("Lookup after RefreshNow = %v; want [10.0.0.2]", got)
		}
		if got := h.metric(t, "webtier_resolver_refresh_now_dropped_total"); got != 4 {
			t.Errorf("refresh_now_dropped_total = %v; want 4", got)
		}

		sleep(time.Second - time.Millisecond)
		h.r.RefreshNow("app.test")
		synctest.Wait()
		if got := srv.QueriesFor("app.test"); got != 2 {
			t.Errorf("queries after RefreshNow inside the gap = %d; want 2", got)
		}
		sleep(time.Millisecond)
		h.r.RefreshNow("app.test")
		synctest.Wait()
		if got := srv.QueriesFor("app.test"); got != 3 {
			t.Errorf("queries after RefreshNow past the gap = %d; want 3", got)
		}

		h.r.RefreshNow("unknown.test")
		synctest.Wait()
		if got := srv.QueriesFor("unknown.test"); got != 0 || resolver.NumNames(h.r) != 1 {
			t.Errorf("RefreshNow of an unknown name: %d queries, %d names; want 0 and 1", got, resolver.NumNames(h.r))
		}
	})
}

// TestSubscribe_onlySetChanges: subscribers hear about new address sets,
// not about refreshes that change only order or TTL.
func TestSubscribe_onlySetChanges(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		srv.SetA("app.test", 10, addrs("10.0.0.1", "10.0.0.2")...)
		var rec recorder
		unsub := h.r.Subscribe("app.test", rec.fn)
		sleep(0)

		steps := []struct {
			name    string
			set     []netip.Addr
			ttl     uint32
			changes bool
		}{
			{name: "same-set-other-order", set: addrs("10.0.0.2", "10.0.0.1"), ttl: 10},
			{name: "same-set-other-ttl", set: addrs("10.0.0.1", "10.0.0.2"), ttl: 20},
			{name: "duplicate-address", set: append(addrs("10.0.0.1", "10.0.0.2"), netip.MustParseAddr("10.0.0.1")), ttl: 20},
			{name: "new-set", set: addrs("10.0.0.3"), ttl: 20, changes: true},
		}
		want := [][]netip.Addr{addrs("10.0.0.1", "10.0.0.2")}
		for _, st := range steps {
			srv.SetA("app.test", st.ttl, st.set...)
			sleep(20 * time.Second) // at least one refresh
			if st.changes {
				want = append(want, sortedSet(st.set))
			}
			if got := fmtSets(rec.calls()); got != fmtSets(want) {
				t.Errorf("after %s: subscriber calls = %s; want %s", st.name, got, fmtSets(want))
			}
		}
		if got := h.count("dns answer changed"); got != len(want) {
			t.Errorf("answer-changed lines = %d; want %d", got, len(want))
		}
		if got := h.metric(t, "webtier_resolver_answer_changes_total"); got != float64(len(want)) {
			t.Errorf("answer_changes_total = %v; want %d", got, len(want))
		}

		unsub()
		unsub() // idempotent
		srv.SetA("app.test", 20, addrs("10.0.0.4")...)
		sleep(20 * time.Second)
		if got := fmtSets(rec.calls()); got != fmtSets(want) {
			t.Errorf("after unsubscribe: subscriber calls = %s; want no more than %s", got, fmtSets(want))
		}
	})
}

func sortedSet(s []netip.Addr) []netip.Addr {
	s = slices.Clone(s)
	slices.SortFunc(s, netip.Addr.Compare)
	return slices.Compact(s)
}

// TestSubscribe_cached: a subscriber to a cached name is called once,
// promptly, with the cached answer and without a query.
func TestSubscribe_cached(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 60, addrs("10.0.0.1")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		if _, err := h.r.Lookup(context.Background(), "app.test"); err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		got := make(chan resolver.Answer, 2)
		defer h.r.Subscribe("app.test", func(a resolver.Answer) { got <- a })()
		select {
		case a := <-got:
			if a.Name != "app.test" || !slices.Equal(a.Addrs, addrs("10.0.0.1")) || a.TTL != 60*time.Second {
				t.Errorf("first call = %+v; want app.test [10.0.0.1] TTL 1m", a)
			}
		case <-time.After(time.Millisecond): // fake time: "promptly" means before any timer
			t.Fatal("subscriber to a cached name was not called")
		}
		// A second subscriber gets its own first call; the first hears nothing new.
		var rec recorder
		defer h.r.Subscribe("app.test", rec.fn)()
		sleep(0)
		if got := fmtSets(rec.calls()); got != "[10.0.0.1]" {
			t.Errorf("second subscriber calls = %s; want [10.0.0.1]", got)
		}
		if len(got) != 0 || srv.Queries() != 1 {
			t.Errorf("extra calls %d, queries %d; want 0 and 1", len(got), srv.Queries())
		}
	})
}

// TestSubscribe_serialised: calls for one name never overlap, and a panic
// in one subscriber is logged and does not stop the others.
func TestSubscribe_serialised(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		srv.SetA("app.test", 1, addrs("10.0.0.1")...)
		var mu sync.Mutex
		running, overlaps := 0, 0
		slow := func(resolver.Answer) {
			mu.Lock()
			running++
			if running > 1 {
				overlaps++
			}
			mu.Unlock()
			time.Sleep(3 * time.Second) // longer than the refresh interval
			mu.Lock()
			running--
			mu.Unlock()
		}
		var rec recorder
		defer h.r.Subscribe("app.test", slow)()
		defer h.r.Subscribe("app.test", func(resolver.Answer) { panic("subscriber bug") })()
		defer h.r.Subscribe("app.test", rec.fn)()
		for i := range 10 {
			srv.SetA("app.test", 1, netip.AddrFrom4([4]byte{10, 0, 1, byte(i)}))
			sleep(time.Second)
		}
		sleep(10 * time.Second)
		if overlaps != 0 {
			t.Errorf("overlapping calls = %d; want 0", overlaps)
		}
		if calls := rec.calls(); len(calls) == 0 || !slices.Equal(calls[len(calls)-1], addrs("10.0.1.9")) {
			t.Errorf("calls after a panicking subscriber = %s; want them to end with [10.0.1.9]", fmtSets(calls))
		}
		if h.count("dns subscriber panicked") == 0 {
			t.Error("no log line for the panicking subscriber")
		}
	})
}

// TestAnswerChangedLog pins the one info line per change and its fields.
func TestAnswerChangedLog(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		srv.SetA("app.test", 10, addrs("10.0.0.1")...)
		if _, err := h.r.Lookup(context.Background(), "app.test"); err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		srv.SetA("app.test", 20, addrs("10.0.0.3", "10.0.0.2")...)
		sleep(9*time.Second + time.Millisecond)
		sleep(30 * time.Second) // more refreshes, no more changes

		lines := h.logs.FilterMessage("dns answer changed").All()
		want := []map[string]any{
			{"name": "app.test", "old": []any{}, "new": []any{"10.0.0.1"}, "ttl": 10 * time.Second, "source": "dns"},
			{"name": "app.test", "old": []any{"10.0.0.1"}, "new": []any{"10.0.0.2", "10.0.0.3"}, "ttl": 20 * time.Second, "source": "dns"},
		}
		if len(lines) != len(want) {
			t.Fatalf("answer-changed lines = %d; want %d", len(lines), len(want))
		}
		for i, l := range lines {
			if l.Level != zapcore.InfoLevel {
				t.Errorf("line %d level = %v; want info", i, l.Level)
			}
			got := l.ContextMap()
			for k, v := range want[i] {
				if !equalField(got[k], v) {
					t.Errorf("line %d field %s = %#v; want %#v", i, k, got[k], v)
				}
			}
			if len(got) != len(want[i]) {
				t.Errorf("line %d fields = %v; want exactly %v", i, got, want[i])
			}
		}
	})
}

func equalField(got, want any) bool {
	g, gok := got.([]any)
	w, wok := want.([]any)
	if gok && wok {
		return slices.Equal(g, w)
	}
	return got == want
}

func TestIdleNamesAreDropped(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{IdleTimeout: time.Minute}, srv)
		srv.SetA("looked-up.test", 10, addrs("10.0.0.1")...)
		srv.SetA("subscribed.test", 10, addrs("10.0.0.2")...)
		srv.SetA("hot.test", 10, addrs("10.0.0.3")...)
		for _, n := range []string{"looked-up.test", "hot.test"} {
			if _, err := h.r.Lookup(context.Background(), n); err != nil {
				t.Fatalf("Lookup(%s): %v", n, err)
			}
		}
		defer h.r.Subscribe("subscribed.test", func(resolver.Answer) {})()
		for range 10 {
			sleep(10 * time.Second)
			lookup(t, h.r, "hot.test")
		}
		if got := resolver.NumNames(h.r); got != 2 {
			t.Errorf("names after 100s = %d; want 2 (hot and subscribed)", got)
		}
		if got := h.metric(t, "webtier_resolver_names"); got != 2 {
			t.Errorf("names gauge = %v; want 2", got)
		}
		n := srv.QueriesFor("looked-up.test")
		sleep(time.Minute)
		if got := srv.QueriesFor("looked-up.test"); got != n {
			t.Errorf("queries for a dropped name went on: %d; want %d", got, n)
		}
		// A dropped name is resolved again on its next use.
		if got, err := lookup(t, h.r, "looked-up.test"); err != nil || len(got) != 1 {
			t.Errorf("Lookup of a dropped name = %v, %v; want [10.0.0.1]", got, err)
		}
	})
}

func TestClose(t *testing.T) {
	checkGoroutines(t)
	srv := startServer(t)
	srv.SetA("app.test", 60, addrs("10.0.0.1")...)
	slow := startServer(t)
	slow.SetDrop(true)

	h := newHarness(t, resolver.Options{}, srv)
	if _, err := h.r.Lookup(context.Background(), "app.test"); err != nil {
		t.Fatalf("Lookup: %v", err)
	}
	unsub := h.r.Subscribe("app.test", func(resolver.Answer) {})
	defer unsub()
	h.r.Subscribe("10.9.9.9", func(resolver.Answer) {})

	// A resolver whose first query hangs for QueryTimeout: Close must not
	// wait for it, and the waiting Lookup must learn why it failed.
	hs := newHarness(t, resolver.Options{QueryTimeout: time.Minute}, slow)
	errc := make(chan error, 1)
	go func() {
		_, err := hs.r.Lookup(context.Background(), "hang.test")
		errc <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); slow.Queries() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the first query never reached the server")
		}
		time.Sleep(time.Millisecond) // poll until the query is on the wire
	}
	start := time.Now()
	for _, r := range []*resolver.Resolver{h.r, hs.r} {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v; want it to interrupt the query in flight", d)
	}
	if err := <-errc; !errors.Is(err, resolver.ErrClosed) {
		t.Errorf("waiting Lookup = %v; want ErrClosed", err)
	}
	if _, err := h.r.Lookup(context.Background(), "new.test"); !errors.Is(err, resolver.ErrClosed) {
		t.Errorf("Lookup of a new name after Close = %v; want ErrClosed", err)
	}
	if _, err := h.r.Resolve(context.Background(), "app.test"); !errors.Is(err, resolver.ErrClosed) {
		t.Errorf("Resolve after Close = %v; want ErrClosed", err)
	}
	if got, err := lookup(t, h.r, "app.test"); err != nil || len(got) != 1 {
		t.Errorf("Lookup of a cached name after Close = %v, %v; want the cached answer", got, err)
	}
	h.r.RefreshNow("app.test")
	h.r.Subscribe("app.test", func(resolver.Answer) { t.Error("subscriber called after Close") })()
}
