package resolver

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Family selects which address records a name is resolved to.
type Family uint8

const (
	// FamilyIPv4 queries A records only. It is the default: most ELB/ALB
	// deployments and VPCs are IPv4-only, and an AAAA answer there only adds
	// addresses that cannot be reached.
	FamilyIPv4 Family = iota
	// FamilyIPv6 queries AAAA records only.
	FamilyIPv6
	// FamilyBoth queries A and AAAA in parallel and uses the union.
	FamilyBoth
)

// String returns the configuration spelling of f: "ipv4", "ipv6" or "both".
func (f Family) String() string {
	switch f {
	case FamilyIPv4:
		return "ipv4"
	case FamilyIPv6:
		return "ipv6"
	case FamilyBoth:
		return "both"
	}
	return fmt.Sprintf("Family(%d)", uint8(f))
}

// ParseFamily is the inverse of Family.String.
func ParseFamily(s string) (Family, error) {
	switch s {
	case "ipv4":
		return FamilyIPv4, nil
	case "ipv6":
		return FamilyIPv6, nil
	case "both":
		return FamilyBoth, nil
	}
	return 0, fmt.Errorf("resolver: unknown address family %q (want ipv4, ipv6 or both)", s)
}

// Defaults applied by New to zero-valued Options fields. config uses the same
// values so that README, `webtier validate` and the runtime agree.
const (
	DefaultResolvConf       = "/etc/resolv.conf"
	DefaultHostsFile        = "/etc/hosts"
	DefaultMinTTL           = 1 * time.Second
	DefaultMaxTTL           = 300 * time.Second
	DefaultStale            = 1 * time.Hour
	DefaultNegativeHold     = 30 * time.Second
	DefaultQueryTimeout     = 2 * time.Second
	DefaultAttempts         = 2
	DefaultNdots            = 1
	DefaultRefreshNowMinGap = 1 * time.Second
	DefaultIdleTimeout      = 10 * time.Minute
	// DefaultFamily is the zero Family: A records only (see FamilyIPv4).
	DefaultFamily = FamilyIPv4
)

// Options configure a Resolver. The zero value of every field selects the
// default named in its comment.
type Options struct {
	// Nameservers are "host:port" or "host" (port 53) addresses queried in
	// order, one attempt each per round. host must be an IP address: the
	// resolver cannot look up its own nameservers. If empty, the nameservers,
	// search list and ndots of ResolvConf are used.
	Nameservers []string

	// ResolvConf is read when Nameservers is empty. Default: /etc/resolv.conf.
	ResolvConf string

	// HostsFile is consulted before DNS, as glibc does with "hosts: files
	// dns": a name it lists is answered from it (and localhost names are
	// always the loopback address, RFC 6761). It is read again when it
	// changes. Default: /etc/hosts; a file that does not exist lists no
	// names.
	HostsFile string

	// Search is the search list for relative names (names that do not end
	// in a dot): a name with fewer than Ndots dots is tried with each search
	// domain first and as is last; any other relative name as is first.
	// When Nameservers is empty the resolv.conf search list is used unless
	// Search is non-nil: an empty, non-nil Search means no search domains.
	Search []string

	// Ndots as in resolv.conf(5). Zero means 1 (or resolv.conf's value).
	Ndots int

	// MinTTL and MaxTTL clamp record TTLs; a TTL of 0 becomes MinTTL.
	// Defaults: 1s and 300s.
	MinTTL, MaxTTL time.Duration

	// Stale is how long the last good answer keeps being used after refreshes
	// start failing with a timeout, SERVFAIL or REFUSED (RFC 8767). Default 1h.
	Stale time.Duration

	// NegativeHold is how long the last good answer is kept after the name
	// starts answering NXDOMAIN or an empty answer (HAProxy's "hold nx").
	// After it the name has no addresses. Default 30s.
	NegativeHold time.Duration

	// QueryTimeout bounds one query to one nameserver. Default 2s.
	QueryTimeout time.Duration

	// Attempts is how many rounds over all nameservers one resolution makes
	// before it fails. Default 2.
	Attempts int

	// Family selects A, AAAA or both. Default FamilyIPv4.
	Family Family

	// RefreshNowMinGap rate-limits RefreshNow per name. Default 1s.
	RefreshNowMinGap time.Duration

	// IdleTimeout is how long a name with no subscribers and no Lookup or
	// Resolve call keeps being refreshed before it is dropped from the
	// cache, so that memory stays bounded by the names in use. A dropped
	// name is resolved again (and waited for) on its next use. Default 10m.
	IdleTimeout time.Duration

	// Logger receives one info line per address change, one warning per
	// episode of failed refreshes and an error when a name loses its last
	// addresses. It is used as given: the caller names it (cmd uses
	// Named("resolver")). Nil means no logs.
	Logger *zap.Logger

	// Registerer receives the resolver's metrics. Nil means none are
	// registered.
	Registerer prometheus.Registerer
}
