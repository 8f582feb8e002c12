package resolver_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

// negativeCases are the two ways a name can stop having addresses while the
// server keeps answering.
var negativeCases = []struct {
	name      string
	make      func(s *dnsserver.Server, name string)
	wantRcode int
	wantErr   error
}{
	{name: "nxdomain", make: func(s *dnsserver.Server, name string) { s.Delete(name) }, wantRcode: dns.RcodeNameError, wantErr: resolver.ErrNoSuchHost},
	{name: "nodata", make: func(s *dnsserver.Server, name string) { s.SetA(name, 10) }, wantRcode: dns.RcodeSuccess, wantErr: resolver.ErrNoAddress},
}

func TestNegative_firstAnswer(t *testing.T) {
	for _, tt := range negativeCases {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{}, srv)
				tt.make(srv, "gone.test")
				got, err := h.r.Lookup(context.Background(), "gone.test")
				var rerr *resolver.Error
				if !errors.As(err, &rerr) {
					t.Fatalf("Lookup = %v, %v; want an *Error", got, err)
				}
				if !rerr.IsNotFound || rerr.IsTimeout || rerr.Temporary() || rerr.Rcode != tt.wantRcode || rerr.Name != "gone.test" || rerr.Server != srv.Addr() {
					t.Errorf("Lookup error = %#v; want IsNotFound, Rcode %d, Name gone.test, Server %s", rerr, tt.wantRcode, srv.Addr())
				}
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("errors.Is(%v, %v) = false; want true", err, tt.wantErr)
				}
				// The negative answer is cached: a second Lookup does not wait or query.
				n := srv.Queries()
				if _, err2 := h.r.Lookup(context.Background(), "gone.test"); err2 != err {
					t.Errorf("second Lookup error = %v; want the cached %v", err2, err)
				}
				if got := srv.Queries(); got != n {
					t.Errorf("queries after a cached negative Lookup = %d; want %d", got, n)
				}
			})
		})
	}
}

// TestNegative_hold pins the HAProxy "hold nx" choice: after a good answer,
// NXDOMAIN or NODATA keeps it for NegativeHold, then drops it.
func TestNegative_hold(t *testing.T) {
	for _, tt := range negativeCases {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{NegativeHold: 30 * time.Second}, srv)
				srv.SetA("app.test", 10, addrs("10.0.0.1")...)
				var rec recorder
				defer h.r.Subscribe("app.test", rec.fn)()
				sleep(0)
				tt.make(srv, "app.test")

				// The refresh at 9s is the first negative answer: held until 39s.
				sleep(39*time.Second - time.Millisecond)
				a, _ := resolver.Cached(h.r, "app.test")
				if !a.Stale || !slices.Equal(a.Addrs, addrs("10.0.0.1")) {
					t.Errorf("Answer just before the hold ends = %+v; want [10.0.0.1] with Stale", a)
				}
				if got, err := lookup(t, h.r, "app.test"); err != nil || len(got) != 1 {
					t.Errorf("Lookup during the hold = %v, %v; want the held address", got, err)
				}
				sleep(2 * time.Millisecond)
				got, err := h.r.Lookup(context.Background(), "app.test")
				var rerr *resolver.Error
				if len(got) != 0 || !errors.As(err, &rerr) || !rerr.IsNotFound || rerr.Rcode != tt.wantRcode {
					t.Errorf("Lookup after the hold = %v, %v; want no addresses and IsNotFound with Rcode %d", got, err, tt.wantRcode)
				}
				if got, want := fmtSets(rec.calls()), fmtSets([][]netip.Addr{addrs("10.0.0.1"), nil}); got != want {
					t.Errorf("subscriber calls = %s; want %s", got, want)
				}
				lines := h.logs.FilterMessage("dns last good answer dropped, name has no addresses").All()
				if len(lines) != 1 || lines[0].ContextMap()["reason"] != "negative_hold_ended" {
					t.Errorf("drop log lines = %+v; want one with reason negative_hold_ended", lines)
				}

				// The name coming back is picked up within its last TTL
				// (10 s), not after the 30 s backoff cap.
				srv.SetA("app.test", 10, addrs("10.0.0.3")...)
				sleep(10*time.Second + time.Millisecond)
				if got, err := lookup(t, h.r, "app.test"); err != nil || !slices.Equal(got, []string{"10.0.0.3"}) {
					t.Errorf("Lookup 10s after the name returned = %v, %v; want [10.0.0.3]", got, err)
				}
			})
		})
	}
}

// TestNegative_recoversAtLastTTL: a name that lost its addresses (the
// record deleted past NegativeHold, or DNS down past Stale) is retried at
// the TTL of its last good answer, so a TTL-1 record that is added again
// (an ELB recreated) is used within about a second, whatever the backoff
// has grown to meanwhile.
func TestNegative_recoversAtLastTTL(t *testing.T) {
	tests := []struct {
		name string
		opts resolver.Options
		lose func(s *dnsserver.Server)
	}{
		{"deleted past negative_hold", resolver.Options{NegativeHold: 5 * time.Second},
			func(s *dnsserver.Server) { s.Delete("app.test") }},
		{"servfail past stale", resolver.Options{Stale: 5 * time.Second},
			func(s *dnsserver.Server) { s.SetRcode(dns.RcodeServerFailure) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, tt.opts, srv)
				srv.SetA("app.test", 1, addrs("10.0.0.1")...)
				var rec recorder
				defer h.r.Subscribe("app.test", rec.fn)()
				sleep(0)
				tt.lose(srv)
				// Long enough past the drop for the backoff to reach its cap.
				sleep(120 * time.Second)
				if a, _ := resolver.Cached(h.r, "app.test"); len(a.Addrs) != 0 {
					t.Fatalf("Answer 120s after the loss = %+v; want no addresses", a)
				}
				srv.SetRcode(dns.RcodeSuccess)
				srv.SetA("app.test", 1, addrs("10.0.0.2")...)
				sleep(time.Second + time.Millisecond)
				if got, err := lookup(t, h.r, "app.test"); err != nil || !slices.Equal(got, []string{"10.0.0.2"}) {
					t.Errorf("Lookup 1s after the record returned = %v, %v; want [10.0.0.2]", got, err)
				}
				if got, want := fmtSets(rec.calls()), fmtSets([][]netip.Addr{addrs("10.0.0.1"), nil, addrs("10.0.0.2")}); got != want {
					t.Errorf("subscriber calls = %s; want %s", got, want)
				}
			})
		})
	}
}

// TestNegative_blip pins why the hold exists: an NXDOMAIN shorter than
// NegativeHold changes nothing for subscribers.
func TestNegative_blip(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{NegativeHold: 30 * time.Second}, srv)
		srv.SetA("app.test", 10, addrs("10.0.0.1")...)
		var rec recorder
		defer h.r.Subscribe("app.test", rec.fn)()
		sleep(0)
		srv.Delete("app.test")
		sleep(12 * time.Second) // refreshes at 9s and 10s fail
		srv.SetA("app.test", 10, addrs("10.0.0.1")...)
		sleep(20 * time.Second)
		if got, want := fmtSets(rec.calls()), fmtSets([][]netip.Addr{addrs("10.0.0.1")}); got != want {
			t.Errorf("subscriber calls = %s; want %s (the blip must not reach them)", got, want)
		}
		if a, _ := resolver.Cached(h.r, "app.test"); a.Stale {
			t.Errorf("Answer after the blip = %+v; want fresh", a)
		}
	})
}

// TestNegative_firstLookupReachesSubscribers: a name whose first lookup
// fails still reaches its subscribers, as an answer without addresses, so
// that they know the first lookup is over (the upstream pool holds
// requests until then); when the name appears, they get it.
func TestNegative_firstLookupReachesSubscribers(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		var rec recorder
		defer h.r.Subscribe("app.test", rec.fn)()
		sleep(time.Second)
		if got := fmtSets(rec.calls()); got != "[]" {
			t.Errorf("subscriber calls after a failed first lookup = %s; want [] (one call, no addresses)", got)
		}
		srv.SetA("app.test", 10, addrs("10.0.0.1")...)
		sleep(time.Minute)
		if got := fmtSets(rec.calls()); got != "[] [10.0.0.1]" {
			t.Errorf("subscriber calls = %s; want [] [10.0.0.1]", got)
		}
	})
}
