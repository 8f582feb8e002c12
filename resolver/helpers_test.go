package resolver_test

import (
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

// startServer starts a dnsserver server and closes it when t ends. Call
// it outside a synctest bubble: the server's goroutines must not belong to
// the bubble.
func startServer(t *testing.T) *dnsserver.Server {
	t.Helper()
	s, err := dnsserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("dnsserver.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// harness is a Resolver with its metrics registry and observed logs.
type harness struct {
	r    *resolver.Resolver
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
}

// newHarness builds a Resolver asking servers in order (unless
// opts.Nameservers is set) and closes it when t ends.
func newHarness(t *testing.T, opts resolver.Options, servers ...*dnsserver.Server) *harness {
	t.Helper()
	return newHarnessSpread(t, opts, false, servers...)
}

// newHarnessSpread is newHarness where spread keeps the random spread of
// refresh times (TestRefreshSpread); newHarness has every refresh at 90%
// of the TTL, so that tests can name the moment.
func newHarnessSpread(t *testing.T, opts resolver.Options, spread bool, servers ...*dnsserver.Server) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	h := &harness{reg: prometheus.NewRegistry(), logs: logs}
	if opts.Nameservers == nil {
		for _, s := range servers {
			opts.Nameservers = append(opts.Nameservers, s.Addr())
		}
	}
	opts.Logger = zap.New(core)
	opts.Registerer = h.reg
	r, err := resolver.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !spread {
		resolver.FixJitter(r)
	}
	t.Cleanup(func() { r.Close() })
	h.r = r
	return h
}

// metric returns the value of the counter or gauge name whose labels include
// the given name/value pairs, or 0 when there is none.
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// count returns how many log lines with message msg were written.
func (h *harness) count(msg string) int {
	return h.logs.FilterMessage(msg).Len()
}

// addrs parses IP addresses, sorted as the resolver sorts them.
func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, 0, len(ss))
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// recorder collects the answers a subscriber is called with.
type recorder struct {
	mu  sync.Mutex
	got [][]netip.Addr
}

func (rec *recorder) fn(a resolver.Answer) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.got = append(rec.got, a.Addrs)
}

func (rec *recorder) calls() [][]netip.Addr {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.got)
}

func fmtSets(sets [][]netip.Addr) string {
	var b strings.Builder
	for i, s := range sets {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString("[")
		for j, a := range s {
			if j > 0 {
				b.WriteString(" ")
			}
			b.WriteString(a.String())
		}
		b.WriteString("]")
	}
	return b.String()
}

// checkGoroutines fails t if, after every later cleanup has run, more
// goroutines are left than when it was called. Register it first so that
// it runs last. It polls with a bound instead of sleeping a fixed time.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= before {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: got %d after cleanup; want at most %d (as before the test)\n%s", n, before, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
