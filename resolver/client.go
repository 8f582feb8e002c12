package resolver

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// ednsSize is the EDNS0 UDP payload size offered in queries: the DNS Flag
// Day 2020 value, which avoids IP fragmentation on any usual path. Larger
// answers come back truncated and are fetched again over TCP.
const ednsSize = 1232

// maxCNAMEHops bounds a CNAME chain, counted over every query it takes.
const maxCNAMEHops = 8

// aLongTimeAgo is a deadline in the past: setting it wakes a blocked read at
// once (the trick net/http and miekg/dns use to stop readers).
var aLongTimeAgo = time.Unix(1, 0)

// result is the outcome of resolving one name: addresses (sorted,
// deduplicated) and the minimum TTL over the records used, or an error.
type result struct {
	addrs  []netip.Addr
	ttl    uint32 // seconds, before clamping
	err    *Error
	source string // SourceHosts or SourceLocalhost when not from DNS
}

// resolveName resolves e's candidates in order. A candidate that is not
// found moves on to the next one; any other failure ends the resolution.
// Go's resolver moves on after a temporary failure too; webtier does not,
// because quietly switching to a different search domain while the right
// one is merely unreachable would replace good addresses with wrong ones.
func (r *Resolver) resolveName(ctx context.Context, name string, cands []string) result {
	if addrs, src, ok := local(r.hosts, r.opts.Family, name, time.Now()); ok {
		return result{addrs: addrs, ttl: hostsTTL, source: src}
	}
	var notFound *Error
	for _, c := range cands {
		res := r.resolveFQDN(ctx, c)
		if res.err == nil {
			return res
		}
		res.err.Name = name
		if !res.err.IsNotFound {
			return res
		}
		// Keep NODATA over NXDOMAIN, as glibc does: the name exists.
		if notFound == nil || notFound.Rcode == dns.RcodeNameError {
			notFound = res.err
		}
	}
	if notFound == nil { // no candidates: only when every search suffix overflowed
		notFound = &Error{Name: name, Rcode: -1, IsNotFound: true, Err: ErrNoSuchHost}
	}
	return result{err: notFound}
}

// resolveFQDN asks for the families of Options.Family. For FamilyBoth the A
// and AAAA queries run in parallel; the answer is their union with the
// smaller TTL. A temporary failure of either family fails the whole
// resolution (so the last good answer, with both families, is kept), and
// the name is not found only when neither family has addresses.
func (r *Resolver) resolveFQDN(ctx context.Context, fqdn string) result {
	switch r.opts.Family {
	case FamilyIPv6:
		return r.lookupType(ctx, fqdn, dns.TypeAAAA)
	case FamilyBoth:
		ch := make(chan result, 1)
		go func() { ch <- r.lookupType(ctx, fqdn, dns.TypeAAAA) }()
		a := r.lookupType(ctx, fqdn, dns.TypeA)
		aaaa := <-ch
		for _, res := range []result{a, aaaa} {
			if res.err != nil && !res.err.IsNotFound {
				return res
			}
		}
		if a.err != nil && aaaa.err != nil {
			if aaaa.err.Rcode == dns.RcodeNameError {
				return aaaa
			}
			return a
		}
		out := result{ttl: math.MaxUint32}
		for _, res := range []result{a, aaaa} {
			if res.err == nil {
				out.addrs = append(out.addrs, res.addrs...)
				out.ttl = min(out.ttl, res.ttl)
			}
		}
		out.addrs = sortAddrs(out.addrs)
		return out
	default:
		return r.lookupType(ctx, fqdn, dns.TypeA)
	}
}

// lookupType resolves fqdn to records of qtype, following CNAMEs: first
// within each reply, then, when a reply ends in a CNAME with no address
// records (an authoritative server whose target lives in another zone), by
// asking for the target. The TTL is the minimum over every CNAME followed
// and every address record used.
func (r *Resolver) lookupType(ctx context.Context, fqdn string, qtype uint16) result {
	target := fqdn
	ttl := uint32(math.MaxUint32)
	hops := 0
	for {
		resp, server, qerr := r.query(ctx, target, qtype)
		if qerr != nil {
			return result{err: qerr}
		}
		if resp.Rcode == dns.RcodeNameError {
			return result{err: &Error{Server: server, Rcode: dns.RcodeNameError, IsNotFound: true, Err: ErrNoSuchHost}}
		}
		asked := target
		for {
			next, cttl, ok := findCNAME(resp.Answer, target)
			if !ok {
				break
			}
			if hops++; hops > maxCNAMEHops {
				r.m.queries[resultError].Inc()
				return result{err: &Error{Server: server, Rcode: resp.Rcode, IsTemporary: true, Err: ErrCNAMEChain}}
			}
			ttl = min(ttl, cttl)
			target = next
		}
		var addrs []netip.Addr
		for _, rr := range resp.Answer {
			h := rr.Header()
			if h.Rrtype != qtype || h.Class != dns.ClassINET || !strings.EqualFold(h.Name, target) {
				continue
			}
			var a netip.Addr
			switch rr := rr.(type) {
			case *dns.A:
				a, _ = netip.AddrFromSlice(rr.A.To4())
			case *dns.AAAA:
				a, _ = netip.AddrFromSlice(rr.AAAA.To16())
			}
			if a.IsValid() {
				addrs = append(addrs, a)
				ttl = min(ttl, h.Ttl)
			}
		}
		if len(addrs) > 0 {
			r.m.queries[resultOK].Inc()
			return result{addrs: sortAddrs(addrs), ttl: ttl}
		}
		if target != asked {
			// The chain ended in a CNAME without addresses: ask for its target.
			r.m.queries[resultOK].Inc()
			continue
		}
		r.m.queries[resultNoData].Inc()
		return result{err: &Error{Server: server, Rcode: resp.Rcode, IsNotFound: true, Err: ErrNoAddress}}
	}
}

// findCNAME returns the target of the CNAME owned by name in rrs.
func findCNAME(rrs []dns.RR, name string) (target string, ttl uint32, ok bool) {
	for _, rr := range rrs {
		if c, isC := rr.(*dns.CNAME); isC && c.Hdr.Class == dns.ClassINET && strings.EqualFold(c.Hdr.Name, name) {
			return c.Target, c.Hdr.Ttl, true
		}
	}
	return "", 0, false
}

// sortAddrs sorts and deduplicates addrs in place.
func sortAddrs(addrs []netip.Addr) []netip.Addr {
	slices.SortFunc(addrs, netip.Addr.Compare)
	return slices.Compact(addrs)
}

// query asks the nameservers for (name, qtype): Attempts rounds over all
// servers in order, those that did not answer lately last (nameserver.go). NOERROR and NXDOMAIN end it (NXDOMAIN is an
// authoritative "no", so other servers are not asked); a timeout, network
// error or failure rcode moves on to the next server. It counts every
// query's outcome except NOERROR, which only the caller can classify.
func (r *Resolver) query(ctx context.Context, name string, qtype uint16) (*dns.Msg, string, *Error) {
	var last *Error
	var buf [4]*nameserver
	for range r.opts.Attempts {
		for _, s := range r.order(buf[:0], name, qtype) {
			ns := s.addr
			resp, err := r.exchangeTC(ctx, ns, name, qtype)
			if ctx.Err() == nil {
				r.noteReply(s, err)
			}
			if err != nil {
				if ctx.Err() != nil {
					return nil, ns, &Error{Server: ns, Rcode: -1, Err: ErrClosed}
				}
				last = &Error{Server: ns, Rcode: -1, IsTimeout: isTimeout(err), IsTemporary: true, Err: err}
				if last.IsTimeout {
					r.m.queries[resultTimeout].Inc()
				} else {
					r.m.queries[resultError].Inc()
				}
				continue
			}
			switch resp.Rcode {
			case dns.RcodeSuccess:
				return resp, ns, nil
			case dns.RcodeNameError:
				r.m.queries[resultNXDomain].Inc()
				return resp, ns, nil
			case dns.RcodeServerFailure:
				r.m.queries[resultServFail].Inc()
			case dns.RcodeRefused:
				r.m.queries[resultRefused].Inc()
			default:
				r.m.queries[resultError].Inc()
			}
			last = &Error{
				Server:      ns,
				Rcode:       resp.Rcode,
				IsTemporary: true,
				Err:         fmt.Errorf("%w (%s)", ErrServerFailure, dns.RcodeToString[resp.Rcode]),
			}
		}
	}
	return nil, last.Server, last
}

// exchangeTC sends one query over UDP and, when the reply is truncated,
// again over TCP to the same server. miekg/dns does not do that by itself.
func (r *Resolver) exchangeTC(ctx context.Context, server, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(ednsSize, false)
	resp, err := r.exchange(ctx, "udp", server, m)
	if err != nil || !resp.Truncated {
		return resp, err
	}
	return r.exchange(ctx, "tcp", server, m)
}

// exchange sends m to server over network and waits for the matching reply;
// connecting, writing and reading together take at most QueryTimeout. Over
// UDP, replies with the wrong ID or question are skipped (strays of earlier
// queries, or spoofing attempts) until the deadline. Cancelling ctx (Close)
// wakes the read at once.
func (r *Resolver) exchange(ctx context.Context, network, server string, m *dns.Msg) (*dns.Msg, error) {
	m.Id = dns.Id()
	deadline := time.Now().Add(r.opts.QueryTimeout)
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, fmt.Errorf("dial %s %s: %w", network, server, err)
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })
	defer stop()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("set deadline on %s %s: %w", network, server, err)
	}
	co := &dns.Conn{Conn: c, UDPSize: ednsSize}
	if err := co.WriteMsg(m); err != nil {
		return nil, fmt.Errorf("write query to %s %s: %w", network, server, err)
	}
	for {
		resp, err := co.ReadMsg()
		if err != nil {
			return nil, fmt.Errorf("read reply from %s %s: %w", network, server, err)
		}
		if matches(m, resp) {
			return resp, nil
		}
		if network != "udp" {
			return nil, fmt.Errorf("read reply from %s %s: %w", network, server, ErrBadResponse)
		}
	}
}

// matches reports whether resp answers q. Error replies (FORMERR above all)
// may come without a question section.
func matches(q, resp *dns.Msg) bool {
	if resp.Id != q.Id || !resp.Response {
		return false
	}
	if len(resp.Question) == 0 {
		return resp.Rcode != dns.RcodeSuccess
	}
	rq, qq := resp.Question[0], q.Question[0]
	return rq.Qtype == qq.Qtype && rq.Qclass == qq.Qclass && strings.EqualFold(rq.Name, qq.Name)
}
