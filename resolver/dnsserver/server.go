// Package dnsserver is a small in-process authoritative DNS server: the
// names `webtier demo` resolves, and the DNS peer of the resolver's tests
// and of code built on it. It is part of the binary, not a test helper.
//
// The server listens on UDP and TCP on the same loopback port, answers from
// records its user sets and changes while it runs, and counts the queries it
// gets. Like BIND inside one zone, it follows CNAME chains within its own
// data in one answer, answers NXDOMAIN for names it does not have and NODATA
// for names without records of the asked type. Faults, for tests, are switches: a forced
// rcode, dropped queries, truncated UDP replies and a delay.
//
// It is not a general DNS server: there is one class (IN), no zones, no SOA
// in negative answers, no wildcards and no DNSSEC.
package dnsserver

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Server is a running DNS server. Its methods are safe for concurrent use,
// also while queries are being answered.
type Server struct {
	udp, tcp *dns.Server
	addr     string

	mu         sync.Mutex // guards records, rcode, follow, delay and perName
	records    map[string]*rrset
	rcode      int
	follow     bool
	delay      time.Duration
	perName    map[key]int64
	drop       atomic.Bool
	truncate   atomic.Bool
	queries    atomic.Int64
	tcpQueries atomic.Int64
	closeOnce  sync.Once
	closeErr   error
}

// rrset is the data of one name: either a CNAME or address records.
type rrset struct {
	cname    string
	cnameTTL uint32
	a, aaaa  []netip.Addr
	ttl      uint32
}

// key counts queries per name and type.
type key struct {
	name  string
	qtype uint16
}

// Start listens on addr ("127.0.0.1:0" picks a free port) over UDP and TCP
// on the same port, and returns once both are serving.
func Start(addr string) (*Server, error) {
	var lastErr error
	// With port 0 the UDP port is free for UDP only; another process may
	// hold it for TCP. A few tries with new ports avoid that rare clash.
	for range 10 {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("dnsserver: listen udp %s: %w", addr, err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err != nil {
			pc.Close()
			lastErr = fmt.Errorf("dnsserver: listen tcp %s: %w", pc.LocalAddr(), err)
			if _, port, _ := net.SplitHostPort(addr); port != "0" {
				break
			}
			continue
		}
		return serve(pc, ln)
	}
	return nil, lastErr
}

func serve(pc net.PacketConn, ln net.Listener) (*Server, error) {
	s := &Server{
		addr:    pc.LocalAddr().String(),
		records: map[string]*rrset{},
		follow:  true,
		perName: map[key]int64{},
	}
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	h := dns.HandlerFunc(s.serveDNS)
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	errc := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			s.Close()
			return nil, fmt.Errorf("dnsserver: serve %s: %w", s.addr, err)
		}
	}
	return s, nil
}

// Addr returns the "ip:port" the server listens on, for Options.Nameservers.
func (s *Server) Addr() string { return s.addr }

// Close stops both listeners. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
	})
	return s.closeErr
}

// norm makes a name a lowercase absolute name.
func norm(name string) string { return strings.ToLower(dns.Fqdn(name)) }

// SetA replaces the address records of name with addrs: IPv4 addresses
// become A records, IPv6 addresses AAAA records, all with ttl. A CNAME of
// name is removed. With no addrs the name exists without records, so it
// answers NODATA. name may be absolute or not; case does not matter.
func (s *Server) SetA(name string, ttl uint32, addrs ...netip.Addr) {
	rs := &rrset{ttl: ttl}
	for _, a := range addrs {
		if a.Is4() || a.Is4In6() {
			rs.a = append(rs.a, a.Unmap())
		} else {
			rs.aaaa = append(rs.aaaa, a)
		}
	}
	s.mu.Lock()
	s.records[norm(name)] = rs
	s.mu.Unlock()
}

// SetCNAME makes name an alias of target, replacing any records of name.
func (s *Server) SetCNAME(name, target string, ttl uint32) {
	s.mu.Lock()
	s.records[norm(name)] = &rrset{cname: norm(target), cnameTTL: ttl}
	s.mu.Unlock()
}

// Delete removes name: queries for it then get NXDOMAIN.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	delete(s.records, norm(name))
	s.mu.Unlock()
}

// SetRcode answers every query with rc and no records;
// dns.RcodeSuccess returns to answering from the data.
func (s *Server) SetRcode(rc int) {
	s.mu.Lock()
	s.rcode = rc
	s.mu.Unlock()
}

// SetDrop makes the server read queries and never answer them, so clients
// time out. Dropped queries are still counted.
func (s *Server) SetDrop(drop bool) { s.drop.Store(drop) }

// SetTruncateUDP answers every UDP query with the TC bit and no records, as
// a server does when the answer does not fit, so clients retry over TCP.
func (s *Server) SetTruncateUDP(truncate bool) { s.truncate.Store(truncate) }

// SetFollowCNAME chooses whether an answer follows a CNAME chain through the
// server's data (the default, like BIND within one zone). With false, a
// CNAME is answered alone, as an authoritative server does when the target
// lives in another zone, and the client must ask for the target itself.
func (s *Server) SetFollowCNAME(follow bool) {
	s.mu.Lock()
	s.follow = follow
	s.mu.Unlock()
}

// SetDelay delays every answer by d of real time, to widen the window in
// which clients race for the same answer.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// Queries returns how many queries the server received, over UDP and TCP.
func (s *Server) Queries() int64 { return s.queries.Load() }

// TCPQueries returns how many of those came over TCP.
func (s *Server) TCPQueries() int64 { return s.tcpQueries.Load() }

// QueriesFor returns how many queries for name (any type) were received.
func (s *Server) QueriesFor(name string) int64 {
	n := norm(name)
	s.mu.Lock()
	defer s.mu.Unlock()
	var total int64
	for k, v := range s.perName {
		if k.name == n {
			total += v
		}
	}
	return total
}

// QueriesForType returns how many queries for name and qtype (dns.TypeA,
// dns.TypeAAAA, ...) were received.
func (s *Server) QueriesForType(name string, qtype uint16) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.perName[key{norm(name), qtype}]
}

func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	s.queries.Add(1)
	isTCP := w.LocalAddr().Network() == "tcp"
	if isTCP {
		s.tcpQueries.Add(1)
	}
	if len(req.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	s.mu.Lock()
	s.perName[key{norm(q.Name), q.Qtype}]++
	delay := s.delay
	s.mu.Unlock()
	if s.drop.Load() {
		return
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	m := s.answer(req)
	if !isTCP && s.truncate.Load() {
		m.Answer = nil
		m.Truncated = true
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	w.WriteMsg(m)
}

// answer builds the reply to req from the data.
func (s *Server) answer(req *dns.Msg) *dns.Msg {
	q := req.Question[0]
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rcode != dns.RcodeSuccess {
		m.Rcode = s.rcode
		return m
	}
	name := norm(q.Name)
	owner := q.Name // answer with the client's spelling of the first owner
	for hops := 0; ; hops++ {
		rs := s.records[name]
		if rs == nil {
			m.Rcode = dns.RcodeNameError
			return m
		}
		if rs.cname != "" && q.Qtype != dns.TypeCNAME {
			m.Answer = append(m.Answer, &dns.CNAME{
				Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: rs.cnameTTL},
				Target: rs.cname,
			})
			if !s.follow || hops >= 16 { // 16: stop on loops, the client must notice
				return m
			}
			name, owner = rs.cname, rs.cname
			continue
		}
		hdr := func(t uint16) dns.RR_Header {
			return dns.RR_Header{Name: owner, Rrtype: t, Class: dns.ClassINET, Ttl: rs.ttl}
		}
		switch q.Qtype {
		case dns.TypeA:
			for _, a := range rs.a {
				m.Answer = append(m.Answer, &dns.A{Hdr: hdr(dns.TypeA), A: a.AsSlice()})
			}
		case dns.TypeAAAA:
			for _, a := range rs.aaaa {
				m.Answer = append(m.Answer, &dns.AAAA{Hdr: hdr(dns.TypeAAAA), AAAA: a.AsSlice()})
			}
		case dns.TypeCNAME:
			if rs.cname != "" {
				m.Answer = append(m.Answer, &dns.CNAME{
					Hdr:    dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: rs.cnameTTL},
					Target: rs.cname,
				})
			}
		}
		return m
	}
}
