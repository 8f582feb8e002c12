// Package rewrite is the route rules an httpd vhost writes around
// ProxyPass: path remapping (ProxyPass /shop/ http://tomcat/shop-app/),
// ProxyPassReverse and its cookie forms, Redirect, RedirectMatch, and a
// subset of mod_rewrite (RewriteRule with RewriteCond).
//
// config compiles a route's rules into one *Rules at load; the proxy hangs
// it on the route (nil when the route has none) and calls Request before
// it forwards and Response on the backend's response header.
//
// Every path this package reads or writes is the escaped path, as the
// backend receives it after the proxy's path cleaning: regexps match it,
// captures are pasted from it, and the remapped path is built from it, so
// that an escape such as %2F is passed on byte for byte and nothing is
// decoded twice. Regexps are Go's RE2: matching is linear in the input.
package rewrite

import (
	"net/netip"
	"regexp"
	"strings"
)

// DefaultRedirectStatus is the status of a redirect without one, as
// httpd's Redirect and RewriteRule [R].
const DefaultRedirectStatus = 302

// Options are one route's rules, checked and compiled by config.
type Options struct {
	// Prefix is the route's path prefix, as configured ("/shop/").
	Prefix string
	// TargetPath is the escaped path of the route's upstream targets
	// ("/shop-app/"): the prefix is replaced by it before forwarding.
	// "": no remapping. It ends in "/" exactly when Prefix does (config
	// checks).
	TargetPath string

	// Reverse is ProxyPassReverse; its zero value is off.
	Reverse ReverseOptions

	// Redirect, when set, answers every request of the route (httpd's
	// Redirect).
	Redirect *Redirect
	// Redirects are tried in order; the first whose Match matches the
	// path answers (RedirectMatch).
	Redirects []RedirectMatch
	// Rewrites are applied in order (RewriteRule).
	Rewrites []Rule
}

// ReverseOptions say which response header values name the backend and
// how cookies are rewritten.
type ReverseOptions struct {
	// Enabled turns the rewriting on.
	Enabled bool
	// Backends are the authorities ("host:port", "[v6]:port") under which
	// the backend may name itself: the targets' hosts, and the upstream's
	// host_header. The address each request was sent to is added per
	// response. Entries with a default port match without it too.
	Backends []string
	// CookieDomain maps a Set-Cookie Domain (compared without case and
	// leading ".") to the client's (ProxyPassReverseCookieDomain).
	CookieDomain []Pair
	// CookiePath maps a Set-Cookie Path prefix to the client's
	// (ProxyPassReverseCookiePath). The remapping (TargetPath to Prefix)
	// is applied after these when none of them matched.
	CookiePath []Pair
}

// Pair is one from → to mapping.
type Pair struct{ From, To string }

// Redirect is httpd's Redirect: To with the rest of the path after the
// route's prefix appended.
type Redirect struct {
	To     string // "" with status 410
	Status int    // 301, 302, 303, 307, 308 or 410
}

// RedirectMatch is httpd's RedirectMatch: To with $0..$9 replaced by the
// captures of Match on the escaped path.
type RedirectMatch struct {
	Match  *regexp.Regexp
	To     string // "" with status 410
	Status int
}

// Rule is one RewriteRule with its RewriteConds.
type Rule struct {
	Match *regexp.Regexp
	// To is the substitution, with $N (captures of Match) and %N (of the
	// last regexp condition that matched); "-" leaves the path as it is.
	To    string
	When  []Condition
	Flags Flags
}

// Flags are a rule's mod_rewrite flags.
type Flags struct {
	Last      bool // L: no further rule after this one matched
	Redirect  int  // R=code: answer with a redirect; 0: none
	QSA       bool // QSA: append the request's query to the substitution's
	NoEscape  bool // NE: paste %N captures without escaping them
	Forbidden bool // F: answer 403
	Gone      bool // G: answer 410
}

// Condition is one RewriteCond: a regexp on a request value, or a client
// address range.
type Condition struct {
	On     Subject
	Header string         // with OnHeader: the canonical header name
	Match  *regexp.Regexp // nil with OnClient
	Client netip.Prefix   // with OnClient
	Negate bool
	// Or joins this condition with the next, as RewriteCond's [OR]: A
	// [OR], B, C holds when (A or B) and C.
	Or bool
}

// Subject is what a Condition tests.
type Subject uint8

// The subjects of a Condition.
const (
	OnHost   Subject = iota + 1 // the Host without port, lower case
	OnPath                      // the escaped path (after earlier rewrites)
	OnQuery                     // the raw query (after earlier rewrites)
	OnHeader                    // a header field's first value ("" when absent)
	OnMethod                    // the method
	OnClient                    // the client address
)

// Rules is one route's compiled rules. Its methods are safe for
// concurrent use: nothing in it changes after New.
type Rules struct {
	opts Options
	// request: a rule runs before forwarding (redirects or rewrites).
	request bool
	// escPrefix is Prefix escaped as the cleaned path would have it.
	escPrefix string
	// remap is TargetPath != "".
	remap bool
	// reverse is Reverse.Enabled; cookies is whether Set-Cookie is read.
	reverse, cookies bool
	// backends are the authorities the backend may name itself by.
	backends []string
}

// New builds a route's rules from checked options.
//
// It returns nil when o holds nothing to do (no redirect, rewrite or
// remapping, and reverse off), so that such a route costs one nil check.
func New(o Options) *Rules {
	if o.Redirect == nil && len(o.Redirects) == 0 && len(o.Rewrites) == 0 && o.TargetPath == "" && !o.Reverse.Enabled {
		return nil
	}
	rs := &Rules{
		opts:      o,
		request:   o.Redirect != nil || len(o.Redirects) > 0 || len(o.Rewrites) > 0,
		escPrefix: escapePath(o.Prefix),
		remap:     o.TargetPath != "",
		reverse:   o.Reverse.Enabled,
	}
	if rs.reverse {
		rs.cookies = len(o.Reverse.CookieDomain) > 0 || len(o.Reverse.CookiePath) > 0 || rs.remap
		rs.backends = o.Reverse.Backends
	}
	return rs
}

// AnswersAll reports whether every request of the route is answered by
// the rules (a Redirect), so that the route needs no upstream.
func (rs *Rules) AnswersAll() bool { return rs.opts.Redirect != nil }

// OnRequest reports whether the rules change or answer requests (a
// redirect, a rewrite or the remapping), not only responses.
func (rs *Rules) OnRequest() bool { return rs.request || rs.remap }

// Remaps reports whether the route's prefix is replaced before forwarding.
func (rs *Rules) Remaps() bool { return rs.remap }

// escapePath escapes the bytes of a configured path that the cleaned
// request path would carry escaped.
func escapePath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		if pathByte(c) || c == '%' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
	return b.String()
}

// unreserved reports whether c is an RFC 3986 unreserved character.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// pathByte reports whether c may stand unescaped in a path: unreserved,
// sub-delims, ":", "@" and "/".
func pathByte(c byte) bool {
	return unreserved(c) || strings.IndexByte("!$&'()*+,;=:@/", c) >= 0
}

const upperHex = "0123456789ABCDEF"
