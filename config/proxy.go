package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/upstream"
	"golang.org/x/net/http/httpguts"
)

func (c *checker) proxy(raw *rawFile) proxy.Options {
	opts := proxy.Options{
		Listeners:           c.listeners(raw.Listeners),
		Routes:              c.routes(raw.Routes, raw.Upstreams.V),
		Upstreams:           c.upstreamsUnlessStatic(raw), // static files (config/static.go)
		Drain:               c.drain(&raw.Drain),
		MaxIdleBackendConns: c.intRange(raw.Backends.MaxIdle, 1, -1, proxy.DefaultMaxIdleBackendConns),
	}
	c.listenersHealth(raw.Listeners.V, opts.Listeners, raw.Upstreams.V)
	c.listenersACME(raw.Listeners.V, opts.Listeners)                            // TLS: config/tls.go
	c.routeRewrites(raw.Routes.V, opts.Routes, raw.Upstreams.V, opts.Upstreams) // rewrite rules (rewrite.go)
	return opts
}

func (c *checker) listeners(f field[[]rawListener]) []proxy.ListenerOptions {
	if len(f.V) == 0 {
		c.errorf(f.loc, `%s; webtier needs at least one listener, like: listeners: [{address: ":8080"}]`, missing(f.Set))
		return nil
	}
	type bound struct {
		host, port string
		at         loc
	}
	var addrs []bound
	names := make(map[string]loc)
	out := make([]proxy.ListenerOptions, 0, len(f.V))
	for _, r := range f.V {
		l := proxy.ListenerOptions{
			Name:              r.Name.V,
			Address:           r.Address.V,
			TrustedProxies:    c.prefixes(r.TrustedProxies),
			ReadHeaderTimeout: c.duration(r.ReadHeaderTimeout, proxy.DefaultReadHeaderTimeout),
			IdleTimeout:       c.duration(r.IdleTimeout, proxy.DefaultClientIdleTimeout),
			TLS:               c.listenerTLS(r.TLS),
			Engine:            c.engine(r.Engine),

			KeepUnderscoreHeaders: r.KeepUnderscoreHeaders.V,

			ProxyProtocol:   c.proxyProtocol(r.ProxyProtocol),
			ForwardedHeader: r.ForwardedHeader.V,
			Rules:           c.listenerRules(r), // header rules, error pages (rules.go)
			Compress:        c.compress(r.Compress),
		}
		c.listenerLimits(r, &l)
		if l.Name == "" {
			l.Name = l.Address
		}
		dupAddr := false
		if host, port, ok := c.listenAddress(r.Address); ok {
			for _, b := range addrs {
				if b.port != port {
					continue
				}
				switch {
				case b.host == host:
					c.errorf(r.Address.loc, "address %q is already used by %s (line %d); give each listener its own address",
						l.Address, parent(b.at.Path), b.at.Line)
				case b.host == "" || host == "":
					// ":8080" binds every local address, so it overlaps any
					// other address with port 8080.
					c.errorf(r.Address.loc, "address %q overlaps the address of %s (line %d): an address without a host listens on all of them; use one or the other",
						l.Address, parent(b.at.Path), b.at.Line)
				default:
					continue
				}
				dupAddr = true
				break
			}
			addrs = append(addrs, bound{host, port, r.Address.loc})
		}
		if prev, dup := names[l.Name]; !dup {
			names[l.Name] = r.Name.loc
		} else if !dupAddr && l.Name != "" {
			c.errorf(r.Name.loc, "name %q is already used by %s (line %d); give each listener its own name",
				l.Name, parent(prev.Path), prev.Line)
		}
		out = append(out, l)
	}
	return out
}

// Bounds of the listener limits: below the minimum no ordinary request
// fits; above the maximum a limit stops bounding memory.
const (
	minHeadLimit = 256
	maxHeadLimit = 1 << 20
)

// listenerLimits sets the request head limits and the body and write
// timeouts of a listener.
func (c *checker) listenerLimits(r rawListener, l *proxy.ListenerOptions) {
	l.MaxRequestLine = c.intRange(r.MaxRequestLine, minHeadLimit, maxHeadLimit, proxy.DefaultMaxRequestLine)
	l.MaxHeaderFieldSize = c.intRange(r.MaxHeaderFieldSize, minHeadLimit, maxHeadLimit, proxy.DefaultMaxHeaderFieldSize)
	l.MaxHeaderFields = c.intRange(r.MaxHeaderFields, 1, 10000, proxy.DefaultMaxHeaderFields)
	l.MaxHeaderSize = c.intRange(r.MaxHeaderSize, minHeadLimit, maxHeadLimit, proxy.DefaultMaxHeaderSize)
	l.BodyTimeout = c.duration(r.BodyTimeout, proxy.DefaultBodyTimeout)
	l.BodyMinRate = c.intRange(r.BodyMinRate, 1, 1<<30, proxy.DefaultBodyMinRate)
	l.WriteTimeout = c.duration(r.WriteTimeout, proxy.DefaultWriteTimeout)
}

// listenAddress checks a listener address and returns its lowercased host
// and its port.
func (c *checker) listenAddress(f field[string]) (host, port string, ok bool) {
	const like = `write it like ":8080" or "127.0.0.1:8080"`
	if f.V == "" {
		c.errorf(f.loc, "%s; write the host:port to listen on, like \":8080\" or \"127.0.0.1:8080\"", missing(f.Set))
		return "", "", false
	}
	host, port, err := net.SplitHostPort(f.V)
	if err != nil {
		c.errorf(f.loc, "%q is not host:port; %s", f.V, like)
		return "", "", false
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		c.errorf(f.loc, "port %q is not a number from 1 to 65535; %s", port, like)
		return "", "", false
	}
	if _, err := netip.ParseAddr(host); host != "" && err != nil {
		if p := hostnameProblem(host); p != "" {
			c.errorf(f.loc, "host %q %s; write an IP address, a host name, or no host (\":8080\") to listen on all addresses", host, p)
			return "", "", false
		}
	}
	return strings.ToLower(host), port, true
}

// prefixes parses trusted_proxies: CIDRs, or single addresses which become
// /32 or /128 prefixes.
func (c *checker) prefixes(f field[[]field[string]]) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range f.V {
		var p netip.Prefix
		var err error
		if strings.Contains(s.V, "/") {
			p, err = netip.ParsePrefix(s.V)
			p = p.Masked()
		} else {
			var a netip.Addr
			a, err = netip.ParseAddr(s.V)
			if err == nil && a.Zone() != "" {
				err = errors.New("zone")
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if err != nil {
			c.errorf(s.loc, "%q is not an IP address or CIDR; write it like 10.0.0.0/8 or 192.0.2.7", s.V)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (c *checker) routes(f field[[]rawRoute], ups entries[rawUpstream]) []proxy.RouteOptions {
	if len(f.V) == 0 {
		c.errorf(f.loc, "%s; webtier needs at least one route, like: routes: [{path: /, upstream: app}]", missing(f.Set))
		return nil
	}
	names := make([]string, 0, len(ups))
	for _, e := range ups {
		names = append(names, e.Key)
	}
	type match struct{ host, path string }
	first := make(map[match]loc)
	out := make([]proxy.RouteOptions, 0, len(f.V))
	for _, r := range f.V {
		host, hostOK := c.routeHost(r.Host)
		path, pathOK := c.routePath(r.Path)
		isStatic := c.staticRoute(r) // static files and compression (config/static.go)
		switch {
		case r.Redirect.Set: // rewrite rules: a redirect route forwards nothing
			c.redirectRouteUpstream(r)
		case !isStatic:
			c.routeUpstream(r.Upstream, names)
		}
		if hostOK && pathOK {
			m := match{host, path}
			if prev, dup := first[m]; dup {
				what := fmt.Sprintf("host %q", host)
				if host == "" {
					what = "any host"
				}
				c.errorf(r.loc, "%s and path %q are already routed by %s (line %d); remove one of them or change its host or path",
					what, path, prev.Path, prev.Line)
			} else {
				first[m] = r.loc
			}
		}
		out = append(out, proxy.RouteOptions{Host: host, PathPrefix: path, Upstream: r.Upstream.V,
			Upgrades: c.upgrades(r.Upgrades), Static: c.static(r.Static), Compress: c.compress(r.Compress),
			Rules: c.routeRules(r, ups)}) // header rules, error pages, limits, access (rules.go)
	}
	return out
}

// upgrades returns a route's upgrades: the protocols, lowercased, whose
// Upgrade requests are forwarded as such. Not set: proxy.DefaultUpgrades;
// an empty list: none (never nil, which would mean the default).
func (c *checker) upgrades(f field[[]field[string]]) []string {
	if !f.Set {
		return slices.Clone(proxy.DefaultUpgrades)
	}
	out := []string{}
	for _, s := range f.V {
		v := strings.ToLower(strings.TrimSpace(s.V))
		switch {
		case v == "h2c":
			c.errorf(s.loc, "h2c cannot be forwarded: after the backend's 101 the connection would be an HTTP/2 tunnel whose requests skip routing, X-Forwarded-* and every rule; clients get HTTP/2 from a listener with tls:")
		case !httpguts.ValidHeaderFieldName(v): // a token, as RFC 9110 defines one
			c.errorf(s.loc, "%q is not a protocol name; write one as clients send it in Upgrade, like websocket", s.V)
		default:
			out = append(out, v)
		}
	}
	return out
}

// routeHost returns the lowercased host a route matches, "" for any host.
func (c *checker) routeHost(f field[string]) (string, bool) {
	const like = `write a host name like www.example.com, a wildcard like *.example.com, or "*" for any host`
	s := strings.ToLower(f.V)
	if s == "" || s == "*" {
		return "", true
	}
	if strings.Contains(s, "://") {
		c.errorf(f.loc, "%q has a scheme; routes match the Host header, so %s", f.V, like)
		return "", false
	}
	if strings.Contains(s, "/") {
		c.errorf(f.loc, "%q has a path; put the path under path: and %s", f.V, like)
		return "", false
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		c.errorf(f.loc, "%q has a port; routes match the Host header without its port, so write %q", f.V, h)
		return "", false
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil && a.Zone() == "" {
		return a.String(), true
	}
	name := strings.TrimPrefix(s, "*.")
	if strings.Contains(name, "*") {
		c.errorf(f.loc, `%q has a "*" other than a leading "*."; %s`, f.V, like)
		return "", false
	}
	if p := hostnameProblem(name); p != "" {
		c.errorf(f.loc, "%q %s; %s", f.V, p, like)
		return "", false
	}
	return s, true
}

func (c *checker) routePath(f field[string]) (string, bool) {
	if !f.Set {
		return "/", true
	}
	if !strings.HasPrefix(f.V, "/") {
		c.errorf(f.loc, `%q does not start with "/"; write a path prefix like / or /api/`, f.V)
		return "", false
	}
	if i := strings.IndexAny(f.V, "?# \t"); i >= 0 {
		c.errorf(f.loc, `%q contains %q; a route path is a plain path prefix like /api/`, f.V, f.V[i])
		return "", false
	}
	return f.V, true
}

func (c *checker) routeUpstream(f field[string], names []string) {
	if len(names) == 0 {
		return // the missing upstreams section is reported once, not per route
	}
	if f.V == "" {
		c.errorf(f.loc, "%s; name the upstream to send these requests to: %s (or serve files with static: {root: /var/www/html})", missing(f.Set), orList(names))
		return
	}
	if slices.Contains(names, f.V) {
		return
	}
	if s := suggest(f.V, names); s != "" {
		c.errorf(f.loc, "no upstream named %q; did you mean %q? Defined upstreams: %s", f.V, s, strings.Join(names, ", "))
		return
	}
	c.errorf(f.loc, "no upstream named %q; write one of the defined upstreams: %s", f.V, strings.Join(names, ", "))
}

func (c *checker) upstreams(f field[entries[rawUpstream]]) []proxy.UpstreamOptions {
	if len(f.V) == 0 {
		c.errorf(f.loc, "%s; define at least one upstream, like: upstreams: {app: {targets: [http://10.0.0.5:8080]}}", missing(f.Set))
		return nil
	}
	out := make([]proxy.UpstreamOptions, 0, len(f.V))
	for _, e := range f.V {
		if !validName(e.Key) {
			c.errorf(e.loc, `%q is not a valid upstream name; use only letters, digits, "_", "." and "-"`, e.Key)
		}
		r := &e.V
		proto := c.protocol(r.Targets)
		u := proxy.UpstreamOptions{
			Name:                  e.Key,
			Targets:               c.targets(r.Targets),
			ConnectTimeout:        c.duration(r.ConnectTimeout, proxy.DefaultConnectTimeout),
			ResponseHeaderTimeout: c.duration(r.ResponseHeaderTimeout, proxy.DefaultResponseHeaderTimeout),
			IdleConnTimeout:       c.duration(r.IdleTimeout, proxy.DefaultIdleConnTimeout),
			MaxIdlePerAddress:     c.maxIdle(r.MaxIdlePerAddress),
			HostHeader:            c.hostHeader(r.HostHeader),
		}
		u.AJP = c.ajpOptions(r.AJP, proto)
		u.Engine = c.upstreamEngine(r.Engine, proto)
		// HTTPS and HTTP/2 to backends (config/upstreamtls.go).
		u.TLS = c.upstreamTLS(r.TLS, r.Targets)
		u.Protocol = c.backendProtocol(r.Protocol, r.Targets, proto)
		c.resilience(&u, r, proto)
		out = append(out, u)
	}
	return out
}

// maxIdle checks max_idle_per_address and converts it to its option value.
// Absent, it is the default: no cap of the address's own (zero in the
// options). Written as 0 it means "keep no idle connections", as it always
// has: a negative option value turns keep-alive off.
func (c *checker) maxIdle(f field[int]) int {
	switch {
	case !f.Set:
		return proxy.DefaultMaxIdlePerAddress
	case f.V < 0:
		c.errorf(f.loc, "must be 0 or more, got %d; leave it out to keep the idle connections the load needs (within backends.max_idle), write a cap like 256, or 0 for no keep-alive to the backend", f.V)
		return proxy.DefaultMaxIdlePerAddress
	case f.V == 0:
		return -1
	}
	return f.V
}

func (c *checker) targets(f field[[]rawTarget]) []proxy.TargetOptions {
	if len(f.V) == 0 {
		c.errorf(f.loc, "%s; every upstream needs at least one target, like: targets: [http://10.0.0.5:8080]", missing(f.Set))
		return nil
	}
	first := make(map[proxy.TargetOptions]loc)
	routes := make(map[string]loc)
	out := make([]proxy.TargetOptions, 0, len(f.V))
	for _, r := range f.V {
		t, ok := c.target(r)
		if t.Route != "" {
			if prev, dup := routes[t.Route]; dup {
				c.errorf(r.Route.loc, "route %q is already used by %s (line %d); give each target its own route, the jvmRoute of that Tomcat",
					t.Route, parent(prev.Path), prev.Line)
			} else {
				routes[t.Route] = r.Route.loc
			}
		}
		if !ok {
			continue
		}
		// The same backend twice is a mistake whatever its other keys say.
		k := t
		k.Weight, k.Route, k.Backup = 0, "", false
		if prev, dup := first[k]; dup {
			c.errorf(r.loc, "%s://%s is already a target at %s (line %d); remove one of them, or raise its weight",
				t.Scheme, net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port))), prev.Path, prev.Line)
			continue
		}
		first[k] = r.loc
		out = append(out, t)
	}
	return out
}

// target checks a target URL: http, https or ajp, a host (DNS name, IPv4 or
// [IPv6]) and an optional port, and nothing else.
func (c *checker) target(r rawTarget) (proxy.TargetOptions, bool) {
	like := "write it like http://10.0.0.5:8080 or https://app.internal"
	t := proxy.TargetOptions{
		Weight: c.intRange(r.Weight, 1, 1000, upstream.DefaultWeight),
		Route:  c.route(r.Route),
		Backup: r.Backup.V,
	}
	f := r.URL
	if f.V == "" {
		c.errorf(f.loc, "%s; write the backend's URL, like url: http://10.0.0.5:8080", missing(f.Set))
		return t, false
	}
	scheme, rest, ok := strings.Cut(f.V, "://")
	if !ok {
		c.errorf(f.loc, "%q has no scheme; write http://%s or https://%s", f.V, f.V, f.V)
		return t, false
	}
	t.Scheme = strings.ToLower(scheme)
	switch t.Scheme {
	case "http", "https":
	case "ajp":
		like = "write it like ajp://10.0.0.5:8009 or ajp://tomcat.internal"
	default:
		c.errorf(f.loc, "scheme %q is not supported; write http://, https:// or ajp://", scheme)
		return t, false
	}
	if hasUserinfo(rest) {
		// Before any other check: "user:pw@host:port" would read as an
		// unbracketed IPv6 address or a bad port, and every other message
		// echoes the URL, which holds a password. Not shown here either.
		how := "webtier sends no credentials to backends; let the backend trust webtier's network address instead"
		if t.Scheme == "ajp" {
			how = "to authenticate to Tomcat's AJP connector, set ajp.secret (its secret attribute)"
		}
		c.errorf(f.loc, "has a user:password@ part (not shown), and userinfo is not supported in a target URL; write %s://host:port: %s",
			t.Scheme, how)
		return t, false
	}
	if hostport, _, _ := strings.Cut(rest, "/"); strings.Count(hostport, ":") > 1 && !strings.HasPrefix(hostport, "[") {
		port := "8080"
		if t.Scheme == "ajp" {
			port = strconv.Itoa(defaultAJPPort)
		}
		c.errorf(f.loc, "%q: write an IPv6 address in brackets, like %s://[2001:db8::1]:%s", f.V, t.Scheme, port)
		return t, false
	}
	u, err := url.Parse(f.V)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.errorf(f.loc, "%q is not a valid URL (%v); %s", f.V, err, like)
		return t, false
	}
	switch {
	case u.RawQuery != "" || u.ForceQuery:
		c.errorf(f.loc, "%q has a query; remove %q", f.V, "?"+u.RawQuery)
		return t, false
	case u.Fragment != "" || strings.HasSuffix(rest, "#"):
		c.errorf(f.loc, "%q has a fragment; remove %q", f.V, "#"+u.Fragment)
		return t, false
	}
	host := u.Hostname()
	if host == "" {
		c.errorf(f.loc, "%q has no host; %s", f.V, like)
		return t, false
	}
	switch port := u.Port(); {
	case port != "":
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			c.errorf(f.loc, "%q: port %q is not a number from 1 to 65535; %s", f.V, port, like)
			return t, false
		}
		t.Port = uint16(p)
	case strings.HasSuffix(u.Host, ":"):
		c.errorf(f.loc, "%q has an empty port; write a port after the colon or remove the colon", f.V)
		return t, false
	case t.Scheme == "https":
		t.Port = 443
	case t.Scheme == "ajp":
		t.Port = defaultAJPPort
	default:
		t.Port = 80
	}
	if strings.HasPrefix(u.Host, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			c.errorf(f.loc, "%q: %q is not an IPv6 address; %s", f.V, host, like)
			return t, false
		}
		t.Host = a.String()
		return t, true
	}
	if a, err := netip.ParseAddr(host); err == nil {
		t.Host = a.String()
		return t, true
	}
	if p := hostnameProblem(host); p != "" {
		c.errorf(f.loc, "%q: host %q %s; %s", f.V, host, p, like)
		return t, false
	}
	t.Host = strings.ToLower(host)
	return t, true
}

// hasUserinfo reports whether rest, a target URL after "scheme://", has a
// "user@" or "user:password@" part: an "@" in the authority (before the
// first "/", "?" or "#"), or a last "@" followed by a bare host and preceded
// by a colon, as in a password holding "/", "?" or "#" that was not
// percent-encoded.
func hasUserinfo(rest string) bool {
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return false
	}
	if end := strings.IndexAny(rest, "/?#"); end < 0 || at < end {
		return true
	}
	return !strings.ContainsAny(rest[at+1:], "/?#") && strings.Contains(rest[:at], ":")
}

// hostHeader checks host_header: a host name or IP, optionally with a port.
func (c *checker) hostHeader(f field[string]) string {
	if f.V == "" {
		return ""
	}
	host := f.V
	if h, port, err := net.SplitHostPort(f.V); err == nil {
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			c.errorf(f.loc, "port %q is not a number from 1 to 65535; write a host name, optionally with a port, like app.internal or app.internal:8080", port)
			return ""
		}
		host = h
	}
	if _, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")); err == nil {
		return f.V
	}
	if p := hostnameProblem(host); p != "" {
		c.errorf(f.loc, "%q %s; write a host name, optionally with a port, like app.internal or app.internal:8080", f.V, p)
		return ""
	}
	return f.V
}
