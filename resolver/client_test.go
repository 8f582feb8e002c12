package resolver_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/miekg/dns"

	"github.com/webtier/webtier/resolver"
	"github.com/webtier/webtier/resolver/dnsserver"
)

func TestCNAME(t *testing.T) {
	chain := func(n int) func(*dnsserver.Server) {
		return func(s *dnsserver.Server) {
			for i := range n {
				s.SetCNAME(fmt.Sprintf("c%d.test", i), fmt.Sprintf("c%d.test", i+1), 300)
			}
			s.SetA(fmt.Sprintf("c%d.test", n), 300, addrs("10.0.0.9")...)
		}
	}
	tests := []struct {
		name          string
		noFollow      bool // the server answers a CNAME alone, as across zones
		setup         func(*dnsserver.Server)
		lookup        string
		wantAddrs     []string
		wantTTL       time.Duration
		wantErr       error
		wantQueriesOf map[string]int64
	}{
		{
			name: "chain-in-one-answer-min-ttl-on-cname",
			setup: func(s *dnsserver.Server) {
				s.SetCNAME("www.test", "lb.test", 300)
				s.SetCNAME("lb.test", "node.test", 30)
				s.SetA("node.test", 60, addrs("10.0.0.1", "10.0.0.2")...)
			},
			lookup:        "www.test",
			wantAddrs:     []string{"10.0.0.1", "10.0.0.2"},
			wantTTL:       30 * time.Second,
			wantQueriesOf: map[string]int64{"www.test": 1, "lb.test": 0, "node.test": 0},
		},
		{
			name: "chain-in-one-answer-min-ttl-on-address",
			setup: func(s *dnsserver.Server) {
				s.SetCNAME("www.test", "node.test", 300)
				s.SetA("node.test", 20, addrs("10.0.0.1")...)
			},
			lookup:    "www.test",
			wantAddrs: []string{"10.0.0.1"},
			wantTTL:   20 * time.Second,
		},
		{
			name:     "chain-continued-by-second-query",
			noFollow: true,
			setup: func(s *dnsserver.Server) {
				s.SetCNAME("www.test", "elb.other.test", 20)
				s.SetA("elb.other.test", 100, addrs("10.0.0.7")...)
			},
			lookup:        "www.test",
			wantAddrs:     []string{"10.0.0.7"},
			wantTTL:       20 * time.Second,
			wantQueriesOf: map[string]int64{"www.test": 1, "elb.other.test": 1},
		},
		{
			name:      "eight-hops",
			setup:     chain(8),
			lookup:    "c0.test",
			wantAddrs: []string{"10.0.0.9"},
			wantTTL:   300 * time.Second,
		},
		{name: "nine-hops", setup: chain(9), lookup: "c0.test", wantErr: resolver.ErrCNAMEChain},
		{
			name:     "nine-hops-across-queries",
			noFollow: true,
			setup:    chain(9),
			lookup:   "c0.test",
			wantErr:  resolver.ErrCNAMEChain,
		},
		{
			name: "loop",
			setup: func(s *dnsserver.Server) {
				s.SetCNAME("a.test", "b.test", 60)
				s.SetCNAME("b.test", "a.test", 60)
			},
			lookup:  "a.test",
			wantErr: resolver.ErrCNAMEChain,
		},
		{
			name:    "dangling-target",
			setup:   func(s *dnsserver.Server) { s.SetCNAME("www.test", "missing.test", 60) },
			lookup:  "www.test",
			wantErr: resolver.ErrNoSuchHost,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			srv.SetFollowCNAME(!tt.noFollow)
			tt.setup(srv)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{}, srv)
				a, err := h.r.Resolve(context.Background(), tt.lookup)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("Resolve(%s) = %+v, %v; want %v", tt.lookup, a, err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("Resolve(%s): %v", tt.lookup, err)
				}
				var got []string
				for _, ip := range a.Addrs {
					got = append(got, ip.String())
				}
				if !slices.Equal(got, tt.wantAddrs) || a.TTL != tt.wantTTL {
					t.Errorf("Resolve(%s) = %v TTL %v; want %v TTL %v", tt.lookup, got, a.TTL, tt.wantAddrs, tt.wantTTL)
				}
				for name, want := range tt.wantQueriesOf {
					if got := srv.QueriesFor(name); got != want {
						t.Errorf("queries for %s = %d; want %d", name, got, want)
					}
				}
			})
		})
	}
}

func TestTruncatedRetriesOverTCP(t *testing.T) {
	srv := startServer(t)
	srv.SetTruncateUDP(true)
	srv.SetA("big.test", 60, addrs("10.0.0.1", "10.0.0.2", "10.0.0.3")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		got, err := lookup(t, h.r, "big.test")
		if err != nil || len(got) != 3 {
			t.Fatalf("Lookup = %v, %v; want 3 addresses", got, err)
		}
		if got, want := srv.TCPQueries(), int64(1); got != want {
			t.Errorf("TCP queries = %d; want %d", got, want)
		}
		if got, want := srv.Queries(), int64(2); got != want {
			t.Errorf("queries = %d; want %d (UDP, then TCP)", got, want)
		}
	})
}

// TestNameservers covers the walk over the nameservers: failure rcodes and
// timeouts move on to the next server, NXDOMAIN does not, and Attempts
// rounds are made before giving up.
func TestNameservers(t *testing.T) {
	tests := []struct {
		name        string
		first       func(*dnsserver.Server)
		second      func(*dnsserver.Server)
		wantAddrs   []string
		wantRcode   int // when wantAddrs is nil
		wantNotFnd  bool
		wantQueries [2]int64
		wantResult  string // a queries_total result counted once
	}{
		{
			name:        "refused-then-second-server",
			first:       func(s *dnsserver.Server) { s.SetRcode(dns.RcodeRefused) },
			wantAddrs:   []string{"10.0.0.2"},
			wantQueries: [2]int64{1, 1},
			wantResult:  "refused",
		},
		{
			name:        "servfail-then-second-server",
			first:       func(s *dnsserver.Server) { s.SetRcode(dns.RcodeServerFailure) },
			wantAddrs:   []string{"10.0.0.2"},
			wantQueries: [2]int64{1, 1},
			wantResult:  "servfail",
		},
		{
			name:        "formerr-then-second-server",
			first:       func(s *dnsserver.Server) { s.SetRcode(dns.RcodeFormatError) },
			wantAddrs:   []string{"10.0.0.2"},
			wantQueries: [2]int64{1, 1},
			wantResult:  "error",
		},
		{
			name:        "timeout-then-second-server",
			first:       func(s *dnsserver.Server) { s.SetDrop(true) },
			wantAddrs:   []string{"10.0.0.2"},
			wantQueries: [2]int64{1, 1},
			wantResult:  "timeout",
		},
		{
			name:        "nxdomain-is-final",
			first:       func(s *dnsserver.Server) { s.Delete("app.test") },
			wantRcode:   dns.RcodeNameError,
			wantNotFnd:  true,
			wantQueries: [2]int64{1, 0},
			wantResult:  "nxdomain",
		},
		{
			name:        "all-refused-two-rounds",
			first:       func(s *dnsserver.Server) { s.SetRcode(dns.RcodeRefused) },
			second:      func(s *dnsserver.Server) { s.SetRcode(dns.RcodeRefused) },
			wantRcode:   dns.RcodeRefused,
			wantQueries: [2]int64{2, 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s1, s2 := startServer(t), startServer(t)
			s1.SetA("app.test", 60, addrs("10.0.0.1")...)
			s2.SetA("app.test", 60, addrs("10.0.0.2")...)
			tt.first(s1)
			if tt.second != nil {
				tt.second(s2)
			}
			synctest.Test(t, func(t *testing.T) {
				// 500ms: long enough for a loaded -race run, and paid in real
				// time only by the timeout case.
				h := newHarness(t, resolver.Options{QueryTimeout: 500 * time.Millisecond, Attempts: 2}, s1, s2)
				got, err := lookup(t, h.r, "app.test")
				if tt.wantAddrs != nil {
					if err != nil || !slices.Equal(got, tt.wantAddrs) {
						t.Errorf("Lookup = %v, %v; want %v", got, err, tt.wantAddrs)
					}
				} else {
					var rerr *resolver.Error
					if !errors.As(err, &rerr) || rerr.Rcode != tt.wantRcode || rerr.IsNotFound != tt.wantNotFnd {
						t.Errorf("Lookup = %v, %#v; want *Error with Rcode %d, IsNotFound %v", got, err, tt.wantRcode, tt.wantNotFnd)
					}
				}
				if q := [2]int64{s1.Queries(), s2.Queries()}; q != tt.wantQueries {
					t.Errorf("queries per server = %v; want %v", q, tt.wantQueries)
				}
				if tt.wantResult != "" {
					if got := h.metric(t, "webtier_resolver_queries_total", "result", tt.wantResult); got != 1 {
						t.Errorf("queries_total{result=%q} = %v; want 1", tt.wantResult, got)
					}
				}
			})
		})
	}
}

func TestTimeout(t *testing.T) {
	srv := startServer(t)
	srv.SetDrop(true)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{QueryTimeout: 30 * time.Millisecond, Attempts: 2}, srv)
		_, err := h.r.Lookup(context.Background(), "slow.test")
		var rerr *resolver.Error
		if !errors.As(err, &rerr) || !rerr.IsTimeout || !rerr.Timeout() || !rerr.Temporary() || rerr.IsNotFound || rerr.Rcode != -1 {
			t.Fatalf("Lookup error = %#v; want a timeout *Error", err)
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("errors.Is(%v, os.ErrDeadlineExceeded) = false; want true", err)
		}
		if got := srv.Queries(); got != 2 {
			t.Errorf("queries = %d; want 2 (one per attempt)", got)
		}
		if got := h.count("dns resolution failed"); got != 1 {
			t.Errorf("warnings = %d; want 1", got)
		}
	})
}

func TestFamily(t *testing.T) {
	tests := []struct {
		name      string
		family    resolver.Family
		records   []string
		want      []string
		wantErr   error
		wantTypes map[uint16]int64
	}{
		{name: "ipv4", family: resolver.FamilyIPv4, records: []string{"10.0.0.1", "2001:db8::1"}, want: []string{"10.0.0.1"},
			wantTypes: map[uint16]int64{dns.TypeA: 1, dns.TypeAAAA: 0}},
		{name: "ipv6", family: resolver.FamilyIPv6, records: []string{"10.0.0.1", "2001:db8::1"}, want: []string{"2001:db8::1"},
			wantTypes: map[uint16]int64{dns.TypeA: 0, dns.TypeAAAA: 1}},
		{name: "both", family: resolver.FamilyBoth, records: []string{"2001:db8::1", "10.0.0.1"}, want: []string{"10.0.0.1", "2001:db8::1"},
			wantTypes: map[uint16]int64{dns.TypeA: 1, dns.TypeAAAA: 1}},
		{name: "both-ipv4-only", family: resolver.FamilyBoth, records: []string{"10.0.0.1"}, want: []string{"10.0.0.1"}},
		{name: "ipv6-without-aaaa", family: resolver.FamilyIPv6, records: []string{"10.0.0.1"}, wantErr: resolver.ErrNoAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			srv.SetA("app.test", 60, addrs(tt.records...)...)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{Family: tt.family}, srv)
				got, err := lookup(t, h.r, "app.test")
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("Lookup = %v, %v; want %v", got, err, tt.wantErr)
					}
					return
				}
				if err != nil || !slices.Equal(got, tt.want) {
					t.Errorf("Lookup = %v, %v; want %v", got, err, tt.want)
				}
				for qt, want := range tt.wantTypes {
					if got := srv.QueriesForType("app.test", qt); got != want {
						t.Errorf("%s queries = %d; want %d", dns.TypeToString[qt], got, want)
					}
				}
			})
		})
	}
}

// TestFamilyBoth_ttlIsMin checks that with both families the TTL is the
// smaller of the two answers' (here via a CNAME on the AAAA side only).
func TestFamilyBoth_ttlIsMin(t *testing.T) {
	srv := startServer(t)
	srv.SetA("v4.test", 100, addrs("10.0.0.1")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{Family: resolver.FamilyBoth}, srv)
		srv.SetA("app.test", 100, addrs("10.0.0.1", "2001:db8::1")...)
		a, err := h.r.Resolve(context.Background(), "app.test")
		if err != nil || a.TTL != 100*time.Second {
			t.Fatalf("Resolve = %+v, %v; want TTL 100s", a, err)
		}
		srv.SetCNAME("app.test", "v4.test", 7)
		a, err = h.r.Resolve(context.Background(), "app.test")
		if err != nil || a.TTL != 7*time.Second || len(a.Addrs) != 1 {
			t.Errorf("Resolve = %+v, %v; want [10.0.0.1] TTL 7s", a, err)
		}
	})
}

// TestSearch follows resolv.conf(5): names with at least ndots dots are
// tried as is first, others after the search list; absolute names only as
// is.
func TestSearch(t *testing.T) {
	tests := []struct {
		name        string
		ndots       int
		lookup      string
		want        []string
		wantNotFnd  bool
		wantQueried []string // names asked for, in any order
		wantSkipped []string // names never asked for
	}{
		{name: "short-name-uses-search", ndots: 1, lookup: "web", want: []string{"10.0.0.2"},
			wantQueried: []string{"web.a.test", "web.b.test"}, wantSkipped: []string{"web."}},
		{name: "dotted-name-as-is-first", ndots: 1, lookup: "web.b.test", want: []string{"10.0.0.2"},
			wantSkipped: []string{"web.b.test.a.test"}},
		{name: "few-dots-search-first", ndots: 2, lookup: "svc.internal", want: []string{"10.0.0.4"},
			wantSkipped: []string{"svc.internal."}},
		{name: "enough-dots-as-is-first", ndots: 1, lookup: "svc.internal", want: []string{"10.0.0.3"},
			wantSkipped: []string{"svc.internal.a.test"}},
		{name: "absolute-name", ndots: 5, lookup: "svc.internal.", want: []string{"10.0.0.3"},
			wantSkipped: []string{"svc.internal.a.test"}},
		{name: "not-found-anywhere", ndots: 1, lookup: "nothere", wantNotFnd: true,
			wantQueried: []string{"nothere.a.test", "nothere.b.test", "nothere."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			srv.SetA("web.b.test", 60, addrs("10.0.0.2")...)
			srv.SetA("svc.internal", 60, addrs("10.0.0.3")...)
			srv.SetA("svc.internal.a.test", 60, addrs("10.0.0.4")...)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{Search: []string{"a.test", "b.test."}, Ndots: tt.ndots}, srv)
				got, err := lookup(t, h.r, tt.lookup)
				if tt.wantNotFnd {
					var rerr *resolver.Error
					if !errors.As(err, &rerr) || !rerr.IsNotFound || rerr.Name != tt.lookup {
						t.Errorf("Lookup(%s) = %v, %v; want IsNotFound for %s", tt.lookup, got, err, tt.lookup)
					}
				} else if err != nil || !slices.Equal(got, tt.want) {
					t.Errorf("Lookup(%s) = %v, %v; want %v", tt.lookup, got, err, tt.want)
				}
				for _, n := range tt.wantQueried {
					if srv.QueriesFor(n) != 1 {
						t.Errorf("queries for %s = %d; want 1", n, srv.QueriesFor(n))
					}
				}
				for _, n := range tt.wantSkipped {
					if srv.QueriesFor(n) != 0 {
						t.Errorf("queries for %s = %d; want 0", n, srv.QueriesFor(n))
					}
				}
			})
		})
	}
}

func TestIPLiteral(t *testing.T) {
	for _, lit := range []string{"10.1.2.3", "2001:db8::7", "fe80::1%eth0"} {
		t.Run(lit, func(t *testing.T) {
			srv := startServer(t)
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{}, srv)
				got, err := lookup(t, h.r, lit)
				if err != nil || !slices.Equal(got, []string{lit}) {
					t.Errorf("Lookup(%s) = %v, %v; want [%s]", lit, got, err, lit)
				}
				a, err := h.r.Resolve(context.Background(), lit)
				if err != nil || len(a.Addrs) != 1 || a.Addrs[0].String() != lit {
					t.Errorf("Resolve(%s) = %+v, %v; want [%s]", lit, a, err, lit)
				}
				var rec recorder
				defer h.r.Subscribe(lit, rec.fn)()
				h.r.RefreshNow(lit)
				sleep(time.Hour)
				if got := fmtSets(rec.calls()); got != "["+lit+"]" {
					t.Errorf("subscriber calls = %s; want [%s]", got, lit)
				}
				if got := srv.Queries(); got != 0 {
					t.Errorf("queries = %d; want 0", got)
				}
			})
		})
	}
}

func TestInvalidName(t *testing.T) {
	srv := startServer(t)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		for _, name := range []string{"", "a..b", "bad name.test.."} {
			if _, err := h.r.Lookup(context.Background(), name); !errors.Is(err, resolver.ErrInvalidName) {
				t.Errorf("Lookup(%q) error = %v; want ErrInvalidName", name, err)
			}
			var rec recorder
			h.r.Subscribe(name, rec.fn)()
			sleep(time.Second)
			if got := rec.calls(); len(got) != 0 {
				t.Errorf("Subscribe(%q) calls = %s; want none", name, fmtSets(got))
			}
		}
		if got := srv.Queries(); got != 0 {
			t.Errorf("queries = %d; want 0", got)
		}
	})
}
