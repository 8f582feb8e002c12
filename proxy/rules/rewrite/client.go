package rewrite

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Client is the client as the rules see it: the listener's trusted
// proxies decide whether X-Forwarded-For and X-Forwarded-Proto are
// believed, as they do for the X-Forwarded-* headers the proxy sends.
type Client struct {
	R       *http.Request
	Trusted []netip.Prefix
	// AddrOf, when set, decides the client address (the proxy's one
	// decision per request, which walks a chain of trusted proxies);
	// without it Addr believes the last X-Forwarded-For address of a
	// trusted peer.
	AddrOf func(*http.Request) netip.Addr
}

// peer returns the TCP peer's address and whether it is a trusted proxy.
func (c Client) peer() (netip.Addr, bool) {
	host, _, err := net.SplitHostPort(c.R.RemoteAddr)
	if err != nil {
		host = c.R.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return a, true
		}
	}
	return a, false
}

// Addr is the client's address: the peer, or behind a trusted proxy the
// last address that proxy put in X-Forwarded-For (the client it saw).
func (c Client) Addr() netip.Addr {
	if c.AddrOf != nil {
		return c.AddrOf(c.R)
	}
	a, trusted := c.peer()
	if !trusted {
		return a
	}
	xff := c.R.Header["X-Forwarded-For"]
	if len(xff) == 0 {
		return a
	}
	last := xff[len(xff)-1]
	if i := strings.LastIndexByte(last, ','); i >= 0 {
		last = last[i+1:]
	}
	if x, err := netip.ParseAddr(strings.TrimSpace(last)); err == nil {
		return x.Unmap()
	}
	return a
}

// Scheme is the scheme the client used: https on a TLS connection, or
// what a trusted proxy says in X-Forwarded-Proto (http or https).
func (c Client) Scheme() string {
	scheme := "http"
	if c.R.TLS != nil {
		scheme = "https"
	}
	if v := c.R.Header["X-Forwarded-Proto"]; len(v) > 0 {
		if _, trusted := c.peer(); trusted {
			switch p := strings.ToLower(strings.TrimSpace(v[0])); p {
			case "http", "https":
				scheme = p
			}
		}
	}
	return scheme
}
