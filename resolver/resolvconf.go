package resolver

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// resolvConf is the part of resolv.conf(5) the resolver uses. Everything
// else in the file (timeout, attempts, rotate, sortlist, ...) is ignored:
// those knobs are Options fields with their own documented defaults.
type resolvConf struct {
	nameservers []string // "ip:port"
	search      []string
	ndots       int // -1 when the file does not set it
}

// maxNameservers is glibc's MAXNS: later nameserver lines are ignored.
const maxNameservers = 3

// maxNdots is the cap resolv.conf(5) puts on ndots.
const maxNdots = 15

// CheckResolvConf reads path as New does when Nameservers is empty and
// returns the problem New would find with it, so that a config check can
// report it before anything starts.
func CheckResolvConf(path string) error {
	conf, err := readResolvConf(path)
	if err != nil {
		return err
	}
	if len(conf.nameservers) == 0 {
		return fmt.Errorf("%q lists no nameserver", path)
	}
	return nil
}

func readResolvConf(path string) (*resolvConf, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading resolv.conf: %w", err)
	}
	defer f.Close()
	conf, err := parseResolvConf(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return conf, nil
}

// parseResolvConf follows glibc: lines starting with ';' or '#' are comments,
// the last "search" or "domain" line wins, at most three nameservers count,
// and ndots is capped at 15. Nameservers that are not IP addresses are
// skipped, as glibc does.
func parseResolvConf(rd io.Reader) (*resolvConf, error) {
	conf := &resolvConf{ndots: -1}
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		line := sc.Text()
		if len(line) > 0 && (line[0] == ';' || line[0] == '#') {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			ip, err := netip.ParseAddr(f[1])
			if err != nil || len(conf.nameservers) >= maxNameservers {
				continue
			}
			conf.nameservers = append(conf.nameservers, netip.AddrPortFrom(ip, 53).String())
		case "domain":
			conf.search = []string{dns.Fqdn(f[1])}
		case "search":
			conf.search = conf.search[:0:0]
			for _, d := range f[1:] {
				if d != "." {
					conf.search = append(conf.search, dns.Fqdn(d))
				}
			}
		case "options":
			for _, o := range f[1:] {
				v, ok := strings.CutPrefix(o, "ndots:")
				if !ok {
					continue
				}
				if n, err := strconv.Atoi(v); err == nil && n >= 0 {
					conf.ndots = min(n, maxNdots)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return conf, nil
}

// parseNameserver accepts "ip", "[ipv6]" or "ip:port" and returns "ip:port".
// Names are refused: the resolver cannot look up its own nameservers.
func parseNameserver(s string) (string, error) {
	if ip, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return netip.AddrPortFrom(ip, 53).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Port() == 0 {
		return "", fmt.Errorf("resolver: nameserver %q is not an IP address or IP:port", s)
	}
	return ap.String(), nil
}

// candidates returns the absolute names to try for name, in order, as
// resolv.conf(5) describes: a name ending in a dot is tried as is and only
// so; a name with at least ndots dots is tried as is first and then with
// each search domain; a name with fewer is tried with each search domain
// first and as is last. Candidates longer than a domain name may be are
// left out.
func candidates(name string, search []string, ndots int) []string {
	if dns.IsFqdn(name) {
		return []string{name}
	}
	abs := name + "."
	dots := strings.Count(name, ".")
	out := make([]string, 0, len(search)+1)
	if dots >= ndots {
		out = append(out, abs)
	}
	for _, s := range search {
		c := abs + dns.Fqdn(s)
		if s == "" || s == "." {
			continue
		}
		if _, ok := dns.IsDomainName(c); ok && len(c) <= 254 {
			out = append(out, c)
		}
	}
	if dots < ndots {
		out = append(out, abs)
	}
	return out
}
