// Package resolver is webtier's one shared DNS cache: the only source of
// upstream addresses.
//
// It exists because Apache httpd resolved upstream names once and kept
// sending to dead IPs after an AWS ELB moved. Here every name in use is
// re-resolved in the background shortly before its TTL runs out, and the
// proxy either reads the current answer (Lookup, which after the first
// answer never waits for DNS, allocates nothing and takes no lock) or is
// told when the address set changes (Subscribe).
//
// # What it does
//
//   - Queries the nameservers of Options or resolv.conf (nameserver, search,
//     options ndots) directly with miekg/dns: UDP with EDNS0 (1232 bytes),
//     TCP when the reply is truncated, Attempts rounds over the servers in
//     order, rcodes checked. NXDOMAIN is final; SERVFAIL, REFUSED, FORMERR
//     and timeouts move on to the next server.
//   - Follows CNAME chains (up to 8 hops, across queries when an answer
//     ends in a CNAME) and uses the minimum TTL of the chain and the
//     address records, clamped to [MinTTL, MaxTTL].
//   - Collapses concurrent work: each name has exactly one goroutine that
//     queries for it, so N concurrent first Lookups cost one query per
//     record type, and concurrent Resolve calls share one resolution.
//   - Serves the last good answer, marked Stale, when refreshes fail with a
//     timeout, SERVFAIL or REFUSED, for Options.Stale from the first failed
//     refresh (RFC 8767), retrying on a backoff from MinTTL doubling to 30 s, but never less often
//     than the last good answer's TTL.
//
// # Negative answers: hold, then drop
//
// When a name that had addresses starts answering NXDOMAIN or NODATA, the
// last good answer is kept for Options.NegativeHold and only then dropped
// (subscribers get an empty set). This is HAProxy's "hold nx" and not
// nginx's behaviour, which drops every address on the first NXDOMAIN: with
// Route 53 and ELB, a short-lived NXDOMAIN is far more often a DNS blip than
// a deleted load balancer, and dropping turns the blip into an outage.
// A name whose first answer is NXDOMAIN or NODATA has nothing to hold, and
// Lookup returns an *Error with IsNotFound.
//
// # What it assumes and refuses
//
// Names are cache keys as given: "a.example" and "A.example" are two
// entries, and "a.example." (absolute) is a third. Nameservers must be IP
// addresses. It is a stub resolver: it does not recurse, validate DNSSEC,
// cache negative answers by SOA TTL (failed names are retried on the
// backoff instead) or read /etc/hosts. Only miekg/dns is used, and only in
// this package (miekg/dns v1 receives fixes only).
//
// # Goroutines
//
// New starts nothing. The first use of a name starts its refresh goroutine,
// which ends when the name has been unused (no subscriber, no Lookup) for
// Options.IdleTimeout or when Close is called. Subscriber functions run on
// short-lived delivery goroutines, one at a time per name. Close stops and
// waits for all of them.
package resolver
