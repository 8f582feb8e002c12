package config

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/rules/rewrite"
	"golang.org/x/net/http/httpguts"
)

// upstreamPath is the path of an upstream's targets (ProxyPass remapping)
// and where its first target wrote it.
type upstreamPath struct {
	path string // escaped; "" for none (no path, or "/", as before remapping)
	at   loc
}

// upstreamPaths returns the target path of every upstream, reporting
// upstreams whose targets disagree and paths a backend could read as
// another one.
func (c *checker) upstreamPaths(ups entries[rawUpstream]) map[string]upstreamPath {
	out := make(map[string]upstreamPath, len(ups))
	for _, e := range ups {
		first := true
		for _, t := range e.V.Targets.V {
			scheme, rest, ok := strings.Cut(t.URL.V, "://")
			switch strings.ToLower(scheme) {
			case "http", "https", "ajp":
			default:
				ok = false
			}
			if !ok || hasUserinfo(rest) {
				continue // target reports it (without echoing a password)
			}
			u, err := url.Parse(t.URL.V)
			if err != nil {
				continue
			}
			p := u.EscapedPath()
			if p == "/" {
				p = ""
			}
			if p != "" {
				if problem := targetPathProblem(p); problem != "" {
					c.errorf(t.URL.loc, "the path %q %s; write a plain path like /shop-app/", p, problem)
					continue
				}
			}
			if first {
				out[e.Key] = upstreamPath{p, t.URL.loc}
				first = false
				continue
			}
			if prev := out[e.Key]; prev.path != p {
				c.errorf(t.URL.loc, "has the path %q but %s (line %d) has %q; every target of one upstream must have the same path (the route's path is replaced by it), so write %q here or make a second upstream",
					orSlash(p), strings.TrimSuffix(prev.at.Path, ".url"), prev.at.Line, orSlash(prev.path), orSlash(prev.path))
				break // once per upstream
			}
		}
	}
	return out
}

func orSlash(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// targetPathProblem says what is wrong with a target path, or "".
func targetPathProblem(p string) string {
	if strings.Contains(p, "//") {
		return `has "//"`
	}
	for seg := range strings.SplitSeq(p, "/") {
		name, _, _ := strings.Cut(seg, ";")
		if name == "." || name == ".." || strings.EqualFold(name, "%2e") || strings.EqualFold(name, "%2e%2e") {
			return `has a "." or ".." segment`
		}
	}
	if strings.Contains(p, ";") {
		return `has ";" parameters`
	}
	return ""
}

// routeRewrites compiles the rewrite rules of every route (routes[i] was
// built from raw[i]) with its upstream's target path and addresses.
func (c *checker) routeRewrites(raw []rawRoute, routes []proxy.RouteOptions, rawUps entries[rawUpstream], ups []proxy.UpstreamOptions) {
	if len(raw) != len(routes) {
		return
	}
	paths := c.upstreamPaths(rawUps)
	byName := make(map[string]*proxy.UpstreamOptions, len(ups))
	for i := range ups {
		byName[ups[i].Name] = &ups[i]
	}
	for i := range raw {
		r := &raw[i]
		o := rewrite.Options{Prefix: routes[i].PathPrefix}
		up := byName[r.Upstream.V]
		if tp := paths[r.Upstream.V]; tp.path != "" && up != nil {
			o.TargetPath = tp.path
			if strings.HasSuffix(o.Prefix, "/") != strings.HasSuffix(tp.path, "/") {
				c.errorf(r.Path.loc, `%q and the path %q of upstream %s's targets (line %d) must both end in "/" or both not (as ProxyPass requires): otherwise "%sX" would reach the backend as %q`,
					o.Prefix, tp.path, r.Upstream.V, tp.at.Line, o.Prefix, strings.TrimSuffix(tp.path, "/")+"X")
			}
		}
		o.Reverse = c.reverse(r.Reverse, up, o.TargetPath != "")
		o.Redirect = c.redirect(r.Redirect)
		if o.Redirect != nil && (r.Redirects.Set || r.Rewrites.Set) {
			c.errorf(r.Redirect.loc, "redirect answers every request of the route, so its redirects and rewrites would never run; put them on a route of their own")
		}
		for _, rm := range r.Redirects.V {
			o.Redirects = append(o.Redirects, rewrite.RedirectMatch{
				Match:  c.regexp(rm.Match, true),
				To:     c.redirectTo(rm.To, rm.Status),
				Status: c.redirectStatus(rm.Status),
			})
		}
		for _, rw := range r.Rewrites.V {
			o.Rewrites = append(o.Rewrites, c.rewriteRule(rw))
		}
		routes[i].Rewrite = rewrite.New(o)
	}
}

// redirectRouteUpstream checks that a route with redirect names no
// upstream: every request of it is redirected.
func (c *checker) redirectRouteUpstream(r rawRoute) {
	if r.Upstream.V != "" {
		c.errorf(r.Upstream.loc, "a route with redirect sends every request elsewhere and forwards none; remove upstream, or move the redirect to a route of its own")
	}
}

// reverse builds a route's ProxyPassReverse. It is on by default for a
// remapped route, as users of ProxyPass with a path expect, and for one
// that names cookie maps; elsewhere it is off unless enabled (as httpd
// rewrites nothing without ProxyPassReverse), so that a plain route costs
// nothing per response.
func (c *checker) reverse(f field[rawReverse], up *proxy.UpstreamOptions, remapped bool) rewrite.ReverseOptions {
	on := remapped || len(f.V.CookieDomain.V) > 0 || len(f.V.CookiePath.V) > 0
	if f.V.Enabled.Set {
		on = f.V.Enabled.V
	}
	o := rewrite.ReverseOptions{Enabled: on}
	if up != nil {
		for _, t := range up.Targets {
			o.Backends = append(o.Backends, net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port))))
		}
		if up.HostHeader != "" {
			o.Backends = append(o.Backends, up.HostHeader)
		}
	}
	for _, e := range f.V.CookieDomain.V {
		if e.V == "" || strings.ContainsAny(e.V+e.Key, "; \t,") {
			c.errorf(e.loc, "%q: %q is not a cookie domain; write the domain the client should see, like www.example.com", e.Key, e.V)
			continue
		}
		o.CookieDomain = append(o.CookieDomain, rewrite.Pair{From: e.Key, To: e.V})
	}
	for _, e := range f.V.CookiePath.V {
		if !strings.HasPrefix(e.Key, "/") || !strings.HasPrefix(e.V, "/") || strings.ContainsAny(e.V+e.Key, "; \t,") {
			c.errorf(e.loc, `%q: %q: both the backend's path and the client's must start with "/" and have no ";", like {/shop-app/: /shop/}`, e.Key, e.V)
			continue
		}
		o.CookiePath = append(o.CookiePath, rewrite.Pair{From: e.Key, To: e.V})
	}
	return o
}

func (c *checker) redirect(f field[rawRedirect]) *rewrite.Redirect {
	if !f.Set {
		return nil
	}
	return &rewrite.Redirect{To: c.redirectTo(f.V.To, f.V.Status), Status: c.redirectStatus(f.V.Status)}
}

func (c *checker) redirectStatus(f field[int]) int {
	if !f.Set {
		return rewrite.DefaultRedirectStatus
	}
	switch f.V {
	case 301, 302, 303, 307, 308, 410:
		return f.V
	}
	c.errorf(f.loc, "%d is not a redirect status; write 301, 302, 303, 307 or 308 (or 410 for gone)", f.V)
	return rewrite.DefaultRedirectStatus
}

// redirectTo checks where a redirect sends the client: a path or an
// http(s) URL; none with 410.
func (c *checker) redirectTo(f field[string], status field[int]) string {
	if status.V == http.StatusGone {
		if f.V != "" {
			c.errorf(f.loc, "a 410 answer sends the client nowhere; remove to, or choose a redirect status")
		}
		return ""
	}
	if f.V == "" {
		c.errorf(f.loc, "%s; write where to send the client, a path like /new/ or a URL like https://www.example.com/", missing(f.Set))
		return ""
	}
	if p := locationProblem(f.V); p != "" {
		c.errorf(f.loc, "%q %s", f.V, p)
	}
	return f.V
}

// locationProblem says what is wrong with a redirect target, or "".
func locationProblem(s string) string {
	if strings.ContainsAny(s, " \t\r\n") {
		return "has white space; escape it, like %20"
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return ""
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https")) && rest != "" && rest[0] != '/' {
		return ""
	}
	return "is neither a path starting with one \"/\" nor an http:// or https:// URL; write /new/ or https://www.example.com/new/"
}

// regexp compiles an RE2 regexp; required says whether it must be there.
func (c *checker) regexp(f field[string], required bool) *regexp.Regexp {
	if f.V == "" {
		if required {
			c.errorf(f.loc, "%s; write a regexp (Go RE2 syntax) like ^/old/(.*)$", missing(f.Set))
		}
		return regexp.MustCompile("")
	}
	re, err := regexp.Compile(f.V)
	if err != nil {
		c.errorf(f.loc, "%q is not a valid regexp (Go RE2 syntax: no backreferences or lookaround): %v", f.V, err)
		return regexp.MustCompile("")
	}
	return re
}

func (c *checker) rewriteRule(raw rawRewrite) rewrite.Rule {
	rule := rewrite.Rule{Match: c.regexp(raw.Match, true), To: raw.To.V}
	for _, fl := range raw.Flags.V {
		name, arg, hasArg := strings.Cut(strings.TrimSpace(fl.V), "=")
		switch strings.ToUpper(name) {
		case "L", "LAST":
			rule.Flags.Last = true
		case "R", "REDIRECT":
			rule.Flags.Redirect = rewrite.DefaultRedirectStatus
			if hasArg {
				n, err := strconv.Atoi(arg)
				switch {
				case err != nil:
					c.errorf(fl.loc, "%q: %q is not a status; write R=301, R=302, R=303, R=307 or R=308", fl.V, arg)
				case n == 301 || n == 302 || n == 303 || n == 307 || n == 308:
					rule.Flags.Redirect = n
				default:
					c.errorf(fl.loc, "%q: %d is not a redirect status; write R=301, R=302, R=303, R=307 or R=308 (use G for 410, F for 403)", fl.V, n)
				}
			}
		case "QSA", "QSAPPEND":
			rule.Flags.QSA = true
		case "NE", "NOESCAPE":
			rule.Flags.NoEscape = true
		case "F", "FORBIDDEN":
			rule.Flags.Forbidden = true
		case "G", "GONE":
			rule.Flags.Gone = true
		default:
			c.errorf(fl.loc, "%q is not a supported flag; webtier supports L, R or R=code, QSA, NE, F and G (P is implied: the route forwards to its upstream)", fl.V)
		}
		if hasArg && !strings.EqualFold(name, "R") && !strings.EqualFold(name, "redirect") {
			c.errorf(fl.loc, "%q: only R takes a value", fl.V)
		}
	}
	answers := rule.Flags.Forbidden || rule.Flags.Gone
	switch to := raw.To.V; {
	case to == "":
		c.errorf(raw.To.loc, `%s; write the substitution, like /new/$1, or "-" to leave the path as it is`, missing(raw.To.Set))
	case to == "-" && rule.Flags.Redirect != 0 && !answers:
		c.errorf(raw.To.loc, `"-" with R would redirect the client to the same URL, again and again; write where to send it, like /new/$1`)
	case to == "-" || answers:
	case rule.Flags.Redirect != 0:
		if p := locationProblem(strings.TrimLeft(to, "$%0123456789")); p != "" && !strings.HasPrefix(to, "$") {
			c.errorf(raw.To.loc, "%q %s", to, p)
		}
	case !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//"):
		c.errorf(raw.To.loc, `%q is not a path starting with one "/"; without the R flag a rewrite changes the path sent to the backend (an absolute URL needs R)`, to)
	case strings.ContainsAny(to, " \t\r\n"):
		c.errorf(raw.To.loc, "%q has white space; escape it, like %%20", to)
	}
	for _, cd := range raw.When.V {
		rule.When = append(rule.When, c.condition(cd))
	}
	return rule
}

// condition checks one when item: exactly one subject.
func (c *checker) condition(raw rawCondition) rewrite.Condition {
	cd := rewrite.Condition{Negate: raw.Negate.V, Or: raw.Or.V}
	var set []string
	pick := func(on rewrite.Subject, name string, f field[string]) {
		if f.Set {
			set = append(set, name)
			cd.On = on
			if on != rewrite.OnHeader && on != rewrite.OnClient {
				cd.Match = c.regexp(f, true)
			}
		}
	}
	pick(rewrite.OnHost, "host", raw.Host)
	pick(rewrite.OnPath, "path", raw.Path)
	pick(rewrite.OnQuery, "query", raw.Query)
	pick(rewrite.OnHeader, "header", raw.Header)
	pick(rewrite.OnMethod, "method", raw.Method)
	pick(rewrite.OnClient, "client", raw.Client)
	if len(set) != 1 {
		c.errorf(raw.loc, "has %s; write exactly one of host, path, query, header (with match), method or client per condition",
			describeSet(set))
		return cd
	}
	switch cd.On {
	case rewrite.OnHeader:
		if !httpguts.ValidHeaderFieldName(raw.Header.V) {
			c.errorf(raw.Header.loc, "%q is not a header name; write one like User-Agent", raw.Header.V)
		}
		cd.Header = http.CanonicalHeaderKey(raw.Header.V)
		cd.Match = c.regexp(raw.Match, true)
	case rewrite.OnClient:
		p := c.prefixes(field[[]field[string]]{V: []field[string]{raw.Client}})
		if len(p) == 1 {
			cd.Client = p[0]
		} else {
			cd.Client = netip.Prefix{}
		}
	}
	if raw.Match.Set && cd.On != rewrite.OnHeader {
		c.errorf(raw.Match.loc, "match goes with header only; put the regexp in %s itself", set[0])
	}
	return cd
}

func describeSet(set []string) string {
	if len(set) == 0 {
		return "no subject"
	}
	return fmt.Sprintf("%d subjects (%s)", len(set), strings.Join(set, ", "))
}
