package proxy

import (
	"cmp"
	"net"
	"slices"
	"strings"

	"github.com/webtier/webtier/proxy/rules/rewrite"
	"github.com/webtier/webtier/proxy/static"
)

// router picks the upstream for a request from its Host and path.
//
// Hosts are tried from most to least specific: the exact host, then wildcard
// hosts (longest suffix first), then routes for any host. Within a host the
// longest matching path prefix wins. A request whose host matches but none of
// whose prefixes do falls through to the less specific hosts. Prefixes match
// as plain string prefixes, as httpd's ProxyPass and nginx's location do:
// "/app" also matches "/apple"; write "/app/" to match a directory only.
type router struct {
	exact    map[string][]route
	wildcard []wildcardRoutes // longest suffix first
	any      []route
}

type route struct {
	prefix string
	pool   int // index into Handler.pools
	index  int // into Options.Routes
	// label names the route in metrics and the access log: its host ("*"
	// for any) and path prefix, as configured, so it is bounded.
	label string
	// upgrades are the protocols (lower case, without a version) whose
	// Upgrade requests are forwarded as such; see RouteOptions.Upgrades.
	upgrades []string
	// rewrite is the route's rewrite rules (proxy/rules/rewrite); nil:
	// none.
	rewrite *rewrite.Rules

	// Header rules, error pages, limits and access control (rules.go);
	// nil: none.
	rules *ruleSet

	// Static files (proxy/static): non-nil for a route served from a
	// directory, whose pool is then -1.
	static *static.Handler
}

// allowsUpgrade reports whether the route forwards an upgrade to proto, an
// Upgrade field value naming one protocol ("websocket", "WebSocket/13").
func (rt *route) allowsUpgrade(proto string) bool {
	name, _, _ := strings.Cut(proto, "/")
	name = strings.TrimSpace(name)
	for _, u := range rt.upgrades {
		if strings.EqualFold(name, u) {
			return true
		}
	}
	return false
}

type wildcardRoutes struct {
	suffix string // ".example.com" for "*.example.com"
	routes []route
}

func newRouter(routes []RouteOptions, poolIndex map[string]int) *router {
	r := &router{exact: map[string][]route{}}
	wild := map[string][]route{}
	for i, ro := range routes {
		rt := route{prefix: ro.PathPrefix, pool: poolIndex[ro.Upstream], index: i, upgrades: ro.upgrades()}
		rt.rewrite = ro.Rewrite // rewrite rules
		if rt.prefix == "" {
			rt.prefix = "/"
		}
		if ro.Static != nil { // static files (proxy/static)
			rt.pool, rt.static = -1, static.New(*ro.Static, rt.prefix)
		}
		host := strings.ToLower(ro.Host)
		rt.label = routeLabel(host, rt.prefix)
		switch {
		case host == "" || host == "*":
			r.any = append(r.any, rt)
		case strings.HasPrefix(host, "*."):
			wild[host[1:]] = append(wild[host[1:]], rt)
		default:
			r.exact[host] = append(r.exact[host], rt)
		}
	}
	byPrefix := func(a, b route) int { return cmp.Compare(len(b.prefix), len(a.prefix)) }
	for h := range r.exact {
		slices.SortStableFunc(r.exact[h], byPrefix)
	}
	for suffix, rs := range wild {
		slices.SortStableFunc(rs, byPrefix)
		r.wildcard = append(r.wildcard, wildcardRoutes{suffix: suffix, routes: rs})
	}
	slices.SortFunc(r.wildcard, func(a, b wildcardRoutes) int {
		if c := cmp.Compare(len(b.suffix), len(a.suffix)); c != 0 {
			return c
		}
		return strings.Compare(a.suffix, b.suffix)
	})
	slices.SortStableFunc(r.any, byPrefix)
	return r
}

// match returns the route for host (a Host header, maybe with a port) and
// path, or nil when no route matches.
func (r *router) match(host, path string) *route {
	host = normalizeHost(host)
	if rs, ok := r.exact[host]; ok {
		if rt := matchPrefix(rs, path); rt != nil {
			return rt
		}
	}
	for _, w := range r.wildcard {
		if len(host) > len(w.suffix) && strings.HasSuffix(host, w.suffix) {
			if rt := matchPrefix(w.routes, path); rt != nil {
				return rt
			}
		}
	}
	return matchPrefix(r.any, path)
}

func matchPrefix(rs []route, path string) *route {
	for i := range rs {
		if strings.HasPrefix(path, rs[i].prefix) {
			return &rs[i]
		}
	}
	return nil
}

// normalizeHost strips a port and lowercases, allocating only when the host
// has upper-case letters.
func normalizeHost(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	h = strings.TrimSuffix(h, ".")
	for i := 0; i < len(h); i++ {
		if c := h[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(h)
		}
	}
	return h
}

// routeLabel is a route's name in metrics and the access log, e.g.
// "*/app/" or "www.example.com/".
func routeLabel(host, prefix string) string {
	if host == "" {
		host = "*"
	}
	return host + prefix
}
