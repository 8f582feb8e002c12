package dnsserver

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func start(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ask(t *testing.T, s *Server, network, name string, qtype uint16) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	resp, _, err := c.Exchange(m, s.Addr())
	if err != nil {
		t.Fatalf("Exchange %s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	return resp
}

// summary renders an answer section as "owner type data ttl" strings.
func summary(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	return out
}

func TestServer_answers(t *testing.T) {
	s := start(t)
	s.SetA("App.Test.", 30, netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("2001:db8::1"))
	s.SetCNAME("www.test", "lb.test", 300)
	s.SetCNAME("lb.test", "app.test", 60)
	s.SetA("empty.test", 30)
	s.SetCNAME("dangling.test", "nowhere.test", 10)

	tests := []struct {
		name      string
		qname     string
		qtype     uint16
		wantRcode int
		want      []string
	}{
		{name: "a", qname: "app.test", qtype: dns.TypeA, want: []string{"app.test.\t30\tIN\tA\t10.0.0.1"}},
		{name: "aaaa", qname: "app.test", qtype: dns.TypeAAAA, want: []string{"app.test.\t30\tIN\tAAAA\t2001:db8::1"}},
		{name: "cname-chain-in-one-answer", qname: "www.test", qtype: dns.TypeA, want: []string{
			"www.test.\t300\tIN\tCNAME\tlb.test.",
			"lb.test.\t60\tIN\tCNAME\tapp.test.",
			"app.test.\t30\tIN\tA\t10.0.0.1",
		}},
		{name: "nxdomain", qname: "nope.test", qtype: dns.TypeA, wantRcode: dns.RcodeNameError},
		{name: "nodata", qname: "empty.test", qtype: dns.TypeA},
		{name: "dangling-cname", qname: "dangling.test", qtype: dns.TypeA, wantRcode: dns.RcodeNameError,
			want: []string{"dangling.test.\t10\tIN\tCNAME\tnowhere.test."}},
	}
	for _, tt := range tests {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(tt.name+"-"+network, func(t *testing.T) {
				resp := ask(t, s, network, tt.qname, tt.qtype)
				if resp.Rcode != tt.wantRcode || !resp.Authoritative {
					t.Errorf("rcode %s, aa %v; want %s, aa", dns.RcodeToString[resp.Rcode], resp.Authoritative, dns.RcodeToString[tt.wantRcode])
				}
				if got := summary(resp.Answer); !slices.Equal(got, tt.want) {
					t.Errorf("answer = %q; want %q", got, tt.want)
				}
			})
		}
	}
	if got := s.QueriesFor("APP.test."); got != 4 {
		t.Errorf("QueriesFor(app.test) = %d; want 4", got)
	}
	if got := s.QueriesForType("app.test", dns.TypeAAAA); got != 2 {
		t.Errorf("QueriesForType(app.test, AAAA) = %d; want 2", got)
	}
	if got, want := s.TCPQueries(), int64(len(tests)); got != want {
		t.Errorf("TCPQueries = %d; want %d", got, want)
	}
	if got, want := s.Queries(), int64(2*len(tests)); got != want {
		t.Errorf("Queries = %d; want %d", got, want)
	}
}

func TestServer_faults(t *testing.T) {
	s := start(t)
	s.SetA("app.test", 30, netip.MustParseAddr("10.0.0.1"))

	s.SetFollowCNAME(false)
	s.SetCNAME("www.test", "app.test", 60)
	if got := summary(ask(t, s, "udp", "www.test", dns.TypeA).Answer); len(got) != 1 {
		t.Errorf("answer without following = %q; want only the CNAME", got)
	}
	s.SetFollowCNAME(true)

	s.SetRcode(dns.RcodeRefused)
	if resp := ask(t, s, "udp", "app.test", dns.TypeA); resp.Rcode != dns.RcodeRefused || len(resp.Answer) != 0 {
		t.Errorf("forced rcode: %s with %d records; want REFUSED and none", dns.RcodeToString[resp.Rcode], len(resp.Answer))
	}
	s.SetRcode(dns.RcodeSuccess)

	s.SetTruncateUDP(true)
	if resp := ask(t, s, "udp", "app.test", dns.TypeA); !resp.Truncated || len(resp.Answer) != 0 {
		t.Errorf("UDP while truncating: tc %v, %d records; want tc and none", resp.Truncated, len(resp.Answer))
	}
	if resp := ask(t, s, "tcp", "app.test", dns.TypeA); resp.Truncated || len(resp.Answer) != 1 {
		t.Errorf("TCP while truncating: tc %v, %d records; want the full answer", resp.Truncated, len(resp.Answer))
	}
	s.SetTruncateUDP(false)

	s.Delete("app.test")
	if resp := ask(t, s, "udp", "app.test", dns.TypeA); resp.Rcode != dns.RcodeNameError {
		t.Errorf("after Delete: %s; want NXDOMAIN", dns.RcodeToString[resp.Rcode])
	}

	s.SetDrop(true)
	c := &dns.Client{Timeout: 50 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("app.test.", dns.TypeA)
	before := s.Queries()
	_, _, err := c.Exchange(m, s.Addr())
	var ne net.Error
	if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Exchange while dropping = %v; want a timeout", err)
	}
	if got := s.Queries() - before; got != 1 {
		t.Errorf("dropped queries counted = %d; want 1", got)
	}
}

// TestStart_addr checks the address form; that UDP and TCP share it is
// checked by TestServer_answers, which asks over both.
func TestStart_addr(t *testing.T) {
	s := start(t)
	ap, err := netip.ParseAddrPort(s.Addr())
	if err != nil || !ap.Addr().IsLoopback() || ap.Port() == 0 {
		t.Fatalf("Addr() = %q; want 127.0.0.1:port", s.Addr())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
