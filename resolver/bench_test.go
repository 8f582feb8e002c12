package resolver_test

import (
	"context"
	"testing"

	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

// benchResolver returns a resolver with app.test cached for 5 minutes, so
// the benchmark measures only the hit path.
func benchResolver(b *testing.B) *resolver.Resolver {
	b.Helper()
	srv, err := dnsserver.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { srv.Close() })
	srv.SetA("app.test", 300, addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")...)
	r, err := resolver.New(resolver.Options{Nameservers: []string{srv.Addr()}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	// A few other names, so the map lookup is not trivially small.
	for _, n := range []string{"app.test", "a.test", "b.test", "c.test"} {
		srv.SetA(n, 300, addrs("10.0.0.9")...)
		if _, err := r.Lookup(context.Background(), n); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

func BenchmarkLookupCached(b *testing.B) {
	r := benchResolver(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Lookup(ctx, "app.test"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookupCachedParallel(b *testing.B) {
	r := benchResolver(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Lookup(ctx, "app.test"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestLookupCachedAllocs pins the zero-allocation hit path outside of
// benchmark runs.
func TestLookupCachedAllocs(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 300, addrs("10.0.0.1")...)
	h := newHarness(t, resolver.Options{}, srv)
	ctx := context.Background()
	if _, err := h.r.Lookup(ctx, "app.test"); err != nil {
		t.Fatal(err)
	}
	if got := testing.AllocsPerRun(1000, func() { h.r.Lookup(ctx, "app.test") }); got != 0 {
		t.Errorf("allocs per cached Lookup = %v; want 0", got)
	}
	if _, err := h.r.Lookup(ctx, "10.1.1.1"); err != nil {
		t.Fatal(err)
	}
	if got := testing.AllocsPerRun(1000, func() { h.r.Lookup(ctx, "10.1.1.1") }); got != 0 {
		t.Errorf("allocs per cached IP-literal Lookup = %v; want 0", got)
	}
}
