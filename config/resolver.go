package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"strconv"
	"strings"

	"github.com/webtier/webtier/resolver"
)

func (c *checker) resolver(r *rawResolver) resolver.Options {
	o := resolver.Options{
		Nameservers:      c.nameservers(r.Nameservers),
		Search:           c.search(r.Search),
		MinTTL:           c.duration(r.MinTTL, resolver.DefaultMinTTL),
		MaxTTL:           c.duration(r.MaxTTL, resolver.DefaultMaxTTL),
		Stale:            c.duration(r.Stale, resolver.DefaultStale),
		NegativeHold:     c.duration(r.NegativeHold, resolver.DefaultNegativeHold),
		QueryTimeout:     c.duration(r.QueryTimeout, resolver.DefaultQueryTimeout),
		Attempts:         c.intRange(r.Attempts, 1, 10, resolver.DefaultAttempts),
		Family:           c.family(r.Family),
		RefreshNowMinGap: c.duration(r.RefreshNowMinGap, resolver.DefaultRefreshNowMinGap),
		IdleTimeout:      c.duration(r.IdleTimeout, resolver.DefaultIdleTimeout),
	}
	o.HostsFile, _ = c.filePath(r.HostsFile, resolver.DefaultHostsFile)
	// ndots 0 is valid in resolv.conf(5), but resolver.Options reads a zero
	// Ndots as "the default", so the file cannot ask for it.
	const maxNdots = 15 // resolv.conf(5) caps ndots at 15
	if len(r.Nameservers.V) > 0 {
		if r.ResolvConf.Set {
			c.errorf(r.ResolvConf.loc, "resolv_conf is only read when nameservers is empty, and nameservers is set (line %d); remove one of them",
				r.Nameservers.Line)
		}
		o.Ndots = c.intRange(r.Ndots, 1, maxNdots, resolver.DefaultNdots)
	} else {
		// Search and ndots come from resolv.conf unless the file sets them,
		// so they are not defaulted here.
		var written bool
		o.ResolvConf, written = c.filePath(r.ResolvConf, resolver.DefaultResolvConf)
		if written {
			if p := resolvConfProblem(o.ResolvConf); p != "" {
				c.errorf(r.ResolvConf.loc, "%s; name a resolv.conf(5) file webtier can read that has a nameserver line, or set nameservers instead", p)
			}
		} else if r.ResolvConf.Set {
			// Empty: reported by filePath.
		} else if p := resolvConfProblem(o.ResolvConf); p != "" {
			// Found now rather than when webtier starts (or reloads).
			c.errorf(loc{Path: "resolver.resolv_conf"}, "%s (the default, read because nameservers is not set); set resolver.nameservers to your DNS servers' IP addresses, or resolver.resolv_conf to another file", p)
		}
		if r.Ndots.Set {
			o.Ndots = c.intRange(r.Ndots, 1, maxNdots, resolver.DefaultNdots)
		}
	}
	if o.MaxTTL < o.MinTTL {
		if r.MaxTTL.Set {
			from := "the default"
			if r.MinTTL.Set {
				from = "line " + strconv.Itoa(r.MinTTL.Line)
			}
			c.errorf(r.MaxTTL.loc, "max_ttl %s is less than min_ttl %s (%s); make max_ttl at least min_ttl",
				formatDuration(o.MaxTTL), formatDuration(o.MinTTL), from)
		} else {
			c.errorf(r.MinTTL.loc, "min_ttl %s is greater than max_ttl %s (the default); lower min_ttl or set max_ttl at least as high",
				formatDuration(o.MinTTL), formatDuration(o.MaxTTL))
		}
	}
	return o
}

// filePath returns the path f names, relative to the config file's
// directory, and true; or def and false when f is absent. An empty value is
// reported and gives def.
func (c *checker) filePath(f field[string], def string) (string, bool) {
	if !f.Set {
		return def, false
	}
	if f.V == "" {
		c.errorf(f.loc, "is empty; write a file path like %s, or leave the key out", def)
		return def, false
	}
	return c.relative(f.V), true
}

// nameservers returns each nameserver as IP:port, with port 53 filled in.
// Only IP literals are allowed: the resolver cannot look up its own servers.
func (c *checker) nameservers(f field[[]field[string]]) []string {
	var out []string
	first := make(map[string]loc)
	for _, s := range f.V {
		var ap netip.AddrPort
		if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s.V, "["), "]")); err == nil {
			ap = netip.AddrPortFrom(a, 53)
		} else if ap, err = netip.ParseAddrPort(s.V); err != nil || ap.Port() == 0 {
			c.errorf(s.loc, "%q is not an IP address or IP:port; write it like 10.0.0.2 or 10.0.0.2:53 (names are not allowed: the resolver cannot look up its own nameservers)", s.V)
			continue
		}
		n := ap.String()
		if prev, dup := first[n]; dup {
			c.errorf(s.loc, "%s is already listed at line %d; remove one of them", n, prev.Line)
			continue
		}
		first[n] = s.loc
		out = append(out, n)
	}
	return out
}

// search returns the search domains lowercased, without trailing dots.
func (c *checker) search(f field[[]field[string]]) []string {
	var out []string
	if f.Set {
		// Written in the file, even as [], it replaces resolv.conf's list
		// (the resolver reads a nil Search as "not set").
		out = []string{}
	}
	for _, s := range f.V {
		d := strings.ToLower(strings.TrimSuffix(s.V, "."))
		if p := hostnameProblem(d); p != "" {
			c.errorf(s.loc, "%q %s; write a domain like example.internal", s.V, p)
			continue
		}
		out = append(out, d)
	}
	return out
}

func (c *checker) family(f field[string]) resolver.Family {
	if !f.Set {
		return resolver.DefaultFamily
	}
	fam, err := resolver.ParseFamily(f.V)
	if err != nil {
		c.errorf(f.loc, "%q is not an address family; write ipv4, ipv6 or both", f.V)
		return resolver.DefaultFamily
	}
	return fam
}

func (c *checker) logging(r *rawLogging) Logging {
	return Logging{
		Level:  c.oneOf(r.Level, "log level", "info", "debug", "info", "warn", "error"),
		Format: c.oneOf(r.Format, "log format", "auto", "auto", "json", "console"),
	}
}

// resolvConfProblem says what keeps the resolver from using path as its
// resolv.conf, or returns "".
func resolvConfProblem(path string) string {
	err := resolver.CheckResolvConf(path)
	if err == nil {
		return ""
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Sprintf("cannot read %q: %v", path, pe.Err)
	}
	return err.Error()
}
