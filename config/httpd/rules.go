package httpd

import (
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// This file translates what an httpd server does besides proxying: headers,
// TLS, the client address, static files, redirects and rewrites, logs,
// error pages, access control and compression.

// --- headers ---------------------------------------------------------------

// headerActions maps mod_headers' actions to the keys of request_headers
// and response_headers.
var headerActions = map[string]struct {
	key    string
	status Status
	note   string
}{
	"set":    {"set", Exact, ""},
	"add":    {"add", Exact, ""},
	"append": {"add", Approx, "append joins the value to an existing field with a comma; webtier adds a field line (the same to HTTP, except for Set-Cookie)"},
	"merge":  {"add", Approx, "merge adds the value unless it is there; webtier adds it always"},
	"unset":  {"unset", Exact, ""},
	"edit":   {"edit", Approx, "edit replaces the first match; check webtier's edit, which follows Go's regexp"},
	"edit*":  {"edit", Exact, ""},
}

func (t *translator) header(c ctx, d *dir) {
	args := d.Args
	side := "response_headers"
	if d.Is("RequestHeader") {
		side = "request_headers"
	}
	note := ""
	if len(args) > 0 && (strings.EqualFold(args[0], "always") || strings.EqualFold(args[0], "onsuccess")) {
		if strings.EqualFold(args[0], "always") {
			note = "always: webtier sets response headers on every answer from the backend"
		}
		args = args[1:]
	}
	if len(args) < 2 {
		t.mark(d, Left, "needs an action and a header name")
		return
	}
	act, ok := headerActions[strings.ToLower(args[0])]
	if !ok {
		t.mark(d, Left, fmt.Sprintf("action %s has no counterpart; webtier sets, adds, unsets and edits", args[0]))
		return
	}
	name, rest := args[1], args[2:]
	if why, st := reservedHeader(side, name); why != "" {
		t.mark(d, st, why)
		return
	}
	for _, a := range rest {
		if strings.HasPrefix(a, "env=") || strings.HasPrefix(a, "expr=") || strings.HasPrefix(a, "early") {
			t.mark(d, Left, "conditions (env=, expr=, early) have no counterpart; the header would be set always")
			return
		}
	}
	for _, a := range rest {
		if strings.Contains(a, "%{") || strings.Contains(a, "%D") || strings.Contains(a, "%t") {
			t.mark(d, Left, "format variables (%{...}, %D, %t) have no counterpart; webtier's values know {client_ip}, {request_id}, {scheme} and {host}")
			return
		}
	}
	l := c.s.loc(c.location)
	target := &l.keys
	if !t.has(Headers) {
		target = &l.missing
	}
	h := target.sub(side)
	switch act.key {
	case "unset":
		var list []string
		if v, ok := h.get("unset"); ok {
			list = v.([]string)
		}
		h.set("unset", append(list, name))
	case "edit":
		if len(rest) < 2 {
			t.mark(d, Left, "edit needs a regular expression and a replacement")
			return
		}
		var list []any
		if v, ok := h.get("edit"); ok {
			list = v.([]any)
		}
		h.set("edit", append(list, &obj{{"name", name}, {"match", rest[0]}, {"replace", rest[1]}}))
	default:
		if len(rest) < 1 {
			t.mark(d, Left, "needs a value")
			return
		}
		h.sub(act.key).set(name, rest[0])
	}
	l.src = append(l.src, d)
	if !t.has(Headers) {
		t.mark(d, Left, missingNote(Headers))
		return
	}
	t.mark(d, act.status, joinNotes("routes[]."+side+"."+act.key, act.note, note))
}

// reservedHeader says why webtier's header rules may not touch name (the
// rule branch refuses these at load), or "".
func reservedHeader(side, name string) (string, Status) {
	c := http.CanonicalHeaderKey(name)
	switch {
	case c == "Content-Length" || c == "Transfer-Encoding" || c == "Trailer":
		return c + " frames the message: webtier writes it", Left
	case c == "Connection" || c == "Keep-Alive" || c == "Te" || c == "Upgrade" || c == "Proxy-Connection" || c == "Proxy-Authenticate" || c == "Proxy-Authorization":
		return c + " is hop-by-hop: removed at every hop", Left
	case side == "request_headers" && c == "Host":
		return "set the upstream's host_header instead", Left
	case side == "request_headers" && (c == "Forwarded" || strings.HasPrefix(c, "X-Forwarded-")):
		return c + " is written by webtier itself: the scheme, host and client it received, or what a trusted proxy (listeners[].trusted_proxies) sent", Approx
	}
	return "", Exact
}

// --- TLS -----------------------------------------------------------------

func (t *translator) ssl(c ctx, d *dir) {
	s := c.s
	s.sslSrc = append(s.sslSrc, d)
	v := first(d.Args)
	switch strings.ToLower(d.Name) {
	case "sslengine":
		s.ssl = strings.EqualFold(v, "on")
		t.mark(d, Exact, "listeners[].tls")
	case "sslcertificatefile":
		s.cert = t.path(v)
		t.mark(d, Exact, "listeners[].tls.cert_file")
	case "sslcertificatekeyfile":
		s.key = t.path(v)
		t.mark(d, Exact, "listeners[].tls.key_file")
	case "sslcertificatechainfile":
		s.chain, s.chainSrc = t.path(v), d
	case "sslprotocol":
		min, st, note := sslProtocolMin(d.Args)
		if st != Exact {
			t.mark(d, st, note)
		}
		s.minTLS, s.minTLSSrc = min, d
		if !t.has(TLSMin) {
			if min == "1.2" {
				t.mark(d, Exact, "webtier's TLS minimum is 1.2")
			} else {
				t.mark(d, Left, missingNote(TLSMin))
			}
			return
		}
		t.mark(d, Exact, "listeners[].tls.min_version")
	}
}

// sslProtocolMin reads SSLProtocol's list as httpd does (a bare name
// starts the set again, +name adds, -name removes; "all" is every
// version) and returns webtier's min_version for the set.
func sslProtocolMin(args []string) (min string, st Status, note string) {
	versions := []string{"sslv3", "tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3"}
	on := map[string]bool{"tlsv1.2": true, "tlsv1.3": true} // httpd 2.4's default
	for _, a := range args {
		a = strings.ToLower(a)
		sign := byte(0)
		if a != "" && (a[0] == '+' || a[0] == '-') {
			sign, a = a[0], a[1:]
		}
		if sign == 0 {
			on = map[string]bool{}
		}
		names := []string{a}
		if a == "all" {
			names = versions
		}
		for _, n := range names {
			on[n] = sign != '-'
		}
	}
	old := on["sslv3"] || on["tlsv1"] || on["tlsv1.1"]
	switch {
	case on["tlsv1.3"] && !on["tlsv1.2"] && old:
		// The admin turned 1.2 off: never offer it.
		return "1.3", Approx, "webtier never offers TLS 1.0 or 1.1, and without 1.2 its minimum is 1.3"
	case on["tlsv1.3"] && !on["tlsv1.2"]:
		return "1.3", Exact, ""
	case old:
		return "1.2", Approx, "webtier never offers TLS 1.0 or 1.1; the minimum is 1.2"
	case !on["tlsv1.3"]:
		return "1.2", Approx, "webtier always offers TLS 1.3 with 1.2"
	}
	return "1.2", Exact, ""
}

// sslProxy reads mod_ssl's settings for https:// backends (SSLProxy*),
// which become the tls keys of the upstreams this server's ProxyPass lines
// send to over https.
func (t *translator) sslProxy(c ctx, d *dir) {
	s := c.s
	v := first(d.Args)
	set := func(k string, val any, st Status, note string) {
		s.proxyTLS = append(removeKey(append(obj{}, s.proxyTLS...), k), kv{k, val})
		s.proxyTLSSrc = append(s.proxyTLSSrc, d)
		if !t.has(UpTLS) {
			t.mark(d, Left, missingNote(UpTLS))
			return
		}
		t.mark(d, st, note)
	}
	switch strings.ToLower(d.Name) {
	case "sslproxyengine":
		if strings.EqualFold(v, "on") {
			t.mark(d, Exact, "webtier speaks TLS to every https:// target")
		} else {
			t.mark(d, Exact, "")
		}
	case "sslproxycacertificatefile":
		set("ca_file", t.path(v), Exact, "upstreams' tls.ca_file")
	case "sslproxyverify":
		switch strings.ToLower(v) {
		case "none", "optional_no_ca":
			set("insecure_skip_verify", true, Exact, "upstreams' tls.insecure_skip_verify: the backend's certificate is not checked (webtier logs it at start)")
		default:
			t.mark(d, Exact, "webtier verifies the backend's certificate by default")
		}
	case "sslproxycheckpeername", "sslproxycheckpeercn":
		if strings.EqualFold(v, "off") {
			set("insecure_skip_verify", true, Approx, "upstreams' tls.insecure_skip_verify: webtier cannot skip the name check alone, so the chain is not checked either; set tls.server_name to the name the certificate holds and drop insecure_skip_verify to keep the chain check")
		} else {
			t.mark(d, Exact, "webtier checks the backend's name by default")
		}
	case "sslproxycheckpeerexpire":
		if strings.EqualFold(v, "off") {
			set("insecure_skip_verify", true, Approx, "upstreams' tls.insecure_skip_verify: webtier cannot accept an expired certificate alone, so nothing of it is checked")
		} else {
			t.mark(d, Exact, "webtier checks the backend's certificate dates")
		}
	case "sslproxymachinecertificatefile":
		// httpd's file holds the certificate and its key, as Go's loader
		// reads them from one file named twice.
		set("cert_file", t.path(v), Exact, "upstreams' tls.cert_file and key_file (the same file: certificate and key)")
		set("key_file", t.path(v), Exact, "")
	case "sslproxyprotocol":
		t.mark(d, Approx, "webtier speaks TLS 1.2 or 1.3 to backends")
	}
}

// path makes a relative file path absolute against ServerRoot, as httpd
// does.
func (t *translator) path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(t.tree.ServerRoot, p)
}

// --- client address --------------------------------------------------------

func (t *translator) remoteIP(c ctx, d *dir) {
	if c.s.vhost != nil {
		t.mark(d, Approx, "webtier trusts proxies per listener: applied to every listener")
	}
	if d.Is("RemoteIPHeader") {
		if !strings.EqualFold(first(d.Args), "X-Forwarded-For") {
			t.mark(d, Left, "webtier reads the client address from X-Forwarded-For only (or the PROXY protocol)")
			return
		}
		t.mark(d, Exact, "listeners[].trusted_proxies read X-Forwarded-For")
		return
	}
	for _, a := range d.Args {
		if _, err := netip.ParsePrefix(a); err != nil {
			if _, err := netip.ParseAddr(a); err != nil {
				t.mark(d, Left, fmt.Sprintf("%q is not an address or CIDR (host names and files are not read)", a))
				continue
			}
		}
		t.trusted = append(t.trusted, a)
	}
	t.mark(d, Exact, "listeners[].trusted_proxies")
}

type ppLine struct {
	d     *dir
	ports []string
}

// remoteIPProxyProtocol reads mod_remoteip's PROXY protocol switch; the
// listeners get proxy_protocol in proxyProtocol.
func (t *translator) remoteIPProxyProtocol(c ctx, d *dir) {
	if d.Is("RemoteIPProxyProtocolExceptions") {
		t.ppExcept = append(t.ppExcept, d)
		return
	}
	if !strings.EqualFold(first(d.Args), "on") {
		t.mark(d, Exact, "webtier reads no PROXY header without proxy_protocol")
		return
	}
	var ports []string
	if c.s.vhost != nil {
		ports = c.s.ports
	}
	t.proxyProto = append(t.proxyProto, ppLine{d, ports})
}

// proxyProtocol sets l's proxy_protocol from RemoteIPProxyProtocol On.
// httpd requires the header from every client but the exceptions; webtier
// from the listed balancer addresses only, which are here the
// RemoteIPTrustedProxy/InternalProxy ones.
func (t *translator) proxyProtocol(l *listenerOut) {
	var on []*dir
	for _, p := range t.proxyProto {
		if p.ports == nil || containsStr(p.ports, l.port) {
			on = append(on, p.d)
		}
	}
	if len(on) == 0 {
		return
	}
	switch {
	case !t.has(ProxyProto):
		for _, d := range on {
			t.mark(d, Left, missingNote(ProxyProto))
		}
		return
	case len(t.trusted) == 0:
		for _, d := range on {
			t.mark(d, Left, "listeners[].proxy_protocol needs from: the balancer's addresses, which this config does not name (no RemoteIPTrustedProxy); add proxy_protocol: {from: [the NLB's subnets]} to the listener")
		}
		return
	}
	l.keys.set("proxy_protocol", &obj{{"from", t.trusted}})
	l.src = append(l.src, on...)
	for _, d := range on {
		t.mark(d, Approx, "listeners[].proxy_protocol, from the RemoteIPTrustedProxy addresses: webtier requires the header from those only and serves others with their own address, where httpd refuses every connection without one (check that from lists the balancer)")
	}
	for _, d := range t.ppExcept {
		t.mark(d, Exact, "webtier serves connections from outside proxy_protocol.from without a header")
	}
}

// --- static files ------------------------------------------------------------

func (t *translator) documentRoot(c ctx, d *dir) {
	c.s.docRoot, c.s.docRootSrc = strings.TrimSuffix(t.path(first(d.Args)), "/"), d
}

func (t *translator) alias(c ctx, d *dir) {
	if len(d.Args) != 2 {
		t.mark(d, Left, "needs a URL path and a directory")
		return
	}
	c.s.aliases = append(c.s.aliases, &alias{path: d.Args[0], root: t.path(d.Args[1]), d: d})
}

func (t *translator) directoryIndex(c ctx, d *dir) {
	c.s.index, c.s.indexSrc = d.Args, d
}

// --- redirects ------------------------------------------------------------

var redirectStatus = map[string]int{"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}

func (t *translator) redirect(c ctx, d *dir) {
	args := d.Args
	status := 302
	switch {
	case d.Is("RedirectPermanent"):
		status = 301
	case len(args) == 3 || len(args) == 2 && strings.EqualFold(args[0], "gone"):
		if n, ok := redirectStatus[strings.ToLower(args[0])]; ok {
			status = n
		} else if n, err := strconv.Atoi(args[0]); err == nil && n >= 300 && n < 400 {
			status = n
		} else {
			t.mark(d, Left, fmt.Sprintf("status %s has no counterpart (gone and 4xx answers are not redirects)", args[0]))
			return
		}
		args = args[1:]
	}
	path := c.location
	if status == 410 && len(args) == 1 && path == "" {
		c.s.redirects = append(c.s.redirects, &redirect{path: args[0], status: 410, d: d})
		return
	}
	if len(args) == 2 {
		path, args = args[0], args[1:]
	}
	if len(args) != 1 || path == "" {
		t.mark(d, Left, "needs a URL path and a URL")
		return
	}
	c.s.redirects = append(c.s.redirects, &redirect{path: path, to: args[0], status: status, d: d})
}

func (t *translator) redirectMatch(c ctx, d *dir) {
	args := d.Args
	status := 302
	if len(args) == 3 {
		n, ok := redirectStatus[strings.ToLower(args[0])]
		if !ok {
			var err error
			if n, err = strconv.Atoi(args[0]); err != nil || n < 300 || n > 399 {
				t.mark(d, Left, fmt.Sprintf("status %s has no counterpart", args[0]))
				return
			}
		}
		status, args = n, args[1:]
	}
	if len(args) != 2 {
		t.mark(d, Left, "needs a regular expression and a URL")
		return
	}
	if _, err := regexp.Compile(args[0]); err != nil {
		t.mark(d, Left, fmt.Sprintf("the expression is not RE2 (webtier's regexp: no backreferences or lookaround): %v", err))
		return
	}
	c.s.matches = append(c.s.matches, &obj{{"match", args[0]}, {"to", args[1]}, {"status", status}})
	c.s.matchSrc = append(c.s.matchSrc, d)
}

// --- mod_rewrite ---------------------------------------------------------

func (t *translator) rewriteEngine(c ctx, d *dir) {
	c.s.rewriteOn = strings.EqualFold(first(d.Args), "on")
	t.mark(d, Exact, "")
}

func (t *translator) rewriteCond(c ctx, d *dir) {
	c.s.conds = append(c.s.conds, d)
}

// condVars are the RewriteCond test strings that a rewrite's when list can
// check, and the key each becomes.
var condVars = map[string]string{
	"%{HTTP_HOST}":      "host",
	"%{REQUEST_URI}":    "path",
	"%{QUERY_STRING}":   "query",
	"%{REQUEST_METHOD}": "method",
}

// rewriteFlags maps the [flags] webtier's rewrites know.
var rewriteFlags = map[string]string{"L": "L", "LAST": "L", "QSA": "QSA", "QSAPPEND": "QSA", "NE": "NE", "NOESCAPE": "NE",
	"F": "F", "FORBIDDEN": "F", "G": "G", "GONE": "G", "END": "L"}

var headerVar = regexp.MustCompile(`^%\{HTTP:([A-Za-z0-9-]+)\}$`)

func (t *translator) rewriteRule(c ctx, d *dir) {
	s := c.s
	conds := s.conds
	s.conds = nil
	fail := func(why string) {
		t.mark(d, Left, why)
		for _, cd := range conds {
			t.mark(cd, Left, "its RewriteRule is not translated")
		}
	}
	if !s.rewriteOn {
		t.mark(d, Unneeded, "RewriteEngine is not On here, so httpd ignores it")
		return
	}
	if c.location != "" || c.dirPath != "" {
		fail("a RewriteRule in <Location> or <Directory> (per-directory rewriting) is not translated; move it to the server level")
		return
	}
	if len(d.Args) < 2 {
		fail("needs a pattern and a substitution")
		return
	}
	pattern, subst := d.Args[0], d.Args[1]
	var flags []string
	status, nc := 0, false
	if len(d.Args) > 2 {
		for _, f := range strings.Split(strings.Trim(d.Args[2], "[]"), ",") {
			f = strings.TrimSpace(f)
			up := strings.ToUpper(f)
			switch {
			case up == "R" || up == "REDIRECT":
				status = 302
				flags = append(flags, "R=302")
			case strings.HasPrefix(up, "R=") || strings.HasPrefix(up, "REDIRECT="):
				_, v, _ := strings.Cut(up, "=")
				n, err := strconv.Atoi(v)
				if err != nil {
					fail(fmt.Sprintf("flag %s: only a numeric status translates", f))
					return
				}
				status = n
				flags = append(flags, "R="+v)
			case up == "NC" || up == "NOCASE":
				nc = true
			case rewriteFlags[up] != "":
				flags = append(flags, rewriteFlags[up])
			default:
				fail(fmt.Sprintf("flag [%s] has no counterpart; webtier's rewrites know L, R=code, QSA, NE, F and G (proxying with [P] is a route)", f))
				return
			}
		}
	}
	if strings.HasPrefix(pattern, "!") {
		fail("a negated pattern has no counterpart; write the condition as a RewriteCond with !")
		return
	}
	if nc {
		pattern = "(?i)" + pattern
	}
	if _, err := regexp.Compile(pattern); err != nil {
		fail(fmt.Sprintf("the pattern is not RE2 (webtier's regexp): %v", err))
		return
	}
	if httpsRedirect.MatchString(subst) && status != 0 {
		t.httpsRule(c.s, d, conds, fail)
		return
	}
	if strings.Contains(subst, "%{") {
		fail("server variables (%{...}) in the substitution have no counterpart; only $N and %N captures")
		return
	}
	rule := &obj{{"match", pattern}, {"to", subst}}
	var when []any
	for _, cd := range conds {
		w, why := condition(cd)
		if why != "" {
			fail("RewriteCond at line " + strconv.Itoa(cd.Line) + ": " + why)
			return
		}
		when = append(when, w)
	}
	if len(when) > 0 {
		rule.set("when", when)
	}
	if len(flags) > 0 {
		rule.set("flags", flags)
	}
	s.rewrites = append(s.rewrites, rule)
	s.rewriteSrc = append(s.rewriteSrc, d)
	s.rewriteSrc = append(s.rewriteSrc, conds...)
}

// httpsRedirect is the substitution of the usual "everything to https"
// rule.
var httpsRedirect = regexp.MustCompile(`^https://%\{(HTTP_HOST|SERVER_NAME)\}(%\{REQUEST_URI\}|/\$1|\$1)?$`)

// httpsRule translates RewriteCond %{HTTPS} off (or %{SERVER_PORT} 80) +
// RewriteRule ... https://%{HTTP_HOST}%{REQUEST_URI} [R]: the plain
// listener's redirect_https. A condition on X-Forwarded-Proto means TLS
// ends at a load balancer that also sends https requests here: that is
// left, as redirect_https would answer those with a redirect too.
func (t *translator) httpsRule(s *server, d *dir, conds []*dir, fail func(string)) {
	for _, cd := range conds {
		test, pat := first(cd.Args), ""
		if len(cd.Args) > 1 {
			pat = strings.ToLower(cd.Args[1])
		}
		switch {
		case test == "%{HTTPS}" && (pat == "off" || pat == "!on" || pat == "!=on" || pat == "!^on$" || pat == "^off$"):
		case test == "%{SERVER_PORT}" && (pat == "80" || pat == "^80$" || pat == "=80" || pat == "!443" || pat == "!^443$"):
		case strings.HasPrefix(test, "%{HTTP:X-Forwarded-Proto}"):
			fail("a redirect to https decided by X-Forwarded-Proto: TLS ends at the load balancer, which sends https requests here too; redirect at the load balancer (ALB: an HTTP listener rule \"redirect to HTTPS\")")
			return
		default:
			fail("RewriteCond " + strings.Join(cd.Args, " ") + " with a redirect to https: only %{HTTPS} off and %{SERVER_PORT} 80 translate (to redirect_https)")
			return
		}
	}
	s.httpsRedirect = append(append(s.httpsRedirect, d), conds...)
}

// condition translates one RewriteCond, or says why it cannot.
func condition(d *dir) (*obj, string) {
	if len(d.Args) < 2 {
		return nil, "needs a test string and a pattern"
	}
	test, pat := d.Args[0], d.Args[1]
	nc, or := false, false
	if len(d.Args) > 2 {
		for _, f := range strings.Split(strings.Trim(d.Args[2], "[]"), ",") {
			switch strings.ToUpper(strings.TrimSpace(f)) {
			case "NC", "NOCASE":
				nc = true
			case "OR", "ORNEXT":
				or = true
			default:
				return nil, fmt.Sprintf("flag [%s] has no counterpart; webtier's conditions know NC and OR", f)
			}
		}
	}
	neg := strings.HasPrefix(pat, "!")
	pat = strings.TrimPrefix(pat, "!")
	if strings.HasPrefix(pat, "-") || strings.HasPrefix(pat, "=") || strings.HasPrefix(pat, "<") || strings.HasPrefix(pat, ">") {
		return nil, "file tests and comparisons (-f, -d, =, <, >) have no counterpart; only regular expressions"
	}
	if nc {
		pat = "(?i)" + pat
	}
	if _, err := regexp.Compile(pat); err != nil {
		return nil, fmt.Sprintf("not RE2 (webtier's regexp): %v", err)
	}
	w := &obj{}
	switch {
	case condVars[test] != "":
		w.set(condVars[test], pat)
	case headerVar.MatchString(test):
		w.set("header", headerVar.FindStringSubmatch(test)[1])
		w.set("match", pat)
	case test == "%{HTTP_USER_AGENT}" || test == "%{HTTP_REFERER}" || test == "%{HTTP_COOKIE}":
		name := map[string]string{"%{HTTP_USER_AGENT}": "User-Agent", "%{HTTP_REFERER}": "Referer", "%{HTTP_COOKIE}": "Cookie"}[test]
		w.set("header", name)
		w.set("match", pat)
	default:
		return nil, fmt.Sprintf("test string %s has no counterpart; webtier checks host, path, query, method, a header or the client address", test)
	}
	if neg {
		w.set("negate", true)
	}
	if or {
		w.set("or", true)
	}
	return w, ""
}

// --- logs ------------------------------------------------------------------

// standardFormats are the LogFormat strings of httpd's and Debian's
// combined and common formats, which webtier writes byte for byte.
var standardFormats = map[string]string{
	`%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`: "combined",
	`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"`: "combined",
	`%h %l %u %t "%r" %>s %O`:                                "common",
	`%h %l %u %t "%r" %>s %b`:                                "common",
}

// jsonFields are the LogFormat directives whose value webtier's json
// access log holds, with the field's name.
var jsonFields = map[string]string{
	"%h": "client", "%a": "client", "%{c}a": "client", "%t": "time", "%r": "method, uri and proto", "%m": "method",
	"%U": "uri", "%q": "uri", "%H": "proto", "%>s": "status", "%s": "status", "%b": "bytes", "%B": "bytes", "%O": "bytes",
	"%{Referer}i": "referer", "%{User-Agent}i": "user_agent", "%{User-agent}i": "user_agent", "%v": "host", "%{Host}i": "host",
	"%D": "duration", "%T": "duration", "%{ms}T": "duration", "%{us}T": "duration", "%{X-Request-ID}i": "request_id",
	"%l": "", "%u": "",
}

var logDirective = regexp.MustCompile(`%[<>]?(\{[^}]*\})?[a-zA-Z%]`)

// expressFormat says which of webtier's access log formats writes what a
// LogFormat string asks for: combined and common byte for byte; the same
// with httpd's virtual host in front (vhost_combined) approximately; any
// other string whose every directive is a field of the json format, as
// json (approximately: another line layout).
func expressFormat(f string) (format string, st Status, note string) {
	if std := standardFormats[f]; std != "" {
		return std, Exact, ""
	}
	for _, prefix := range []string{"%v:%p ", "%v "} {
		if std := standardFormats[strings.TrimPrefix(f, prefix)]; std != "" && strings.HasPrefix(f, prefix) {
			return std, Approx, fmt.Sprintf("written as %s without the leading %s (the virtual host); the json format has the host", std, strings.TrimSpace(prefix))
		}
	}
	var fields, missing []string
	for _, m := range logDirective.FindAllString(f, -1) {
		name, ok := jsonFields[m]
		switch {
		case m == "%%":
		case !ok:
			missing = append(missing, m)
		case name != "" && !containsStr(fields, name):
			fields = append(fields, name)
		}
	}
	if len(missing) > 0 || len(fields) == 0 {
		return "", Left, fmt.Sprintf("%s has no field in webtier's json format", strings.Join(missing, " "))
	}
	return "json", Approx, "written as the json format, which holds " + strings.Join(fields, ", ") + " (and more), one JSON object a line"
}

func (t *translator) logFormatLine(c ctx, d *dir) {
	if len(d.Args) == 2 && standardFormats[d.Args[0]] != "" {
		t.mark(d, Unneeded, "webtier's access_log writes "+standardFormats[d.Args[0]]+" itself")
		return
	}
	t.mark(d, Unneeded, "read through the CustomLog lines that use it")
}

func (t *translator) customLog(c ctx, d *dir) {
	if len(d.Args) < 2 {
		t.mark(d, Left, "needs a file and a format")
		return
	}
	if len(d.Args) > 2 {
		t.mark(d, Left, "conditional logging (env=, expr=) has no counterpart")
		return
	}
	file, f := d.Args[0], d.Args[1]
	if nick, ok := t.logFormat[f]; ok {
		f = nick
	}
	format, fst, fnote := expressFormat(f)
	if format == "" && (f == "combined" || f == "common") {
		format, fst = f, Exact // httpd's built-in nicknames
	}
	if format == "" {
		t.mark(d, Left, fmt.Sprintf("the format %q is not one webtier writes (combined, common, json): %s", d.Args[1], fnote))
		return
	}
	if fst != Exact {
		t.mark(d, fst, fnote)
	}
	if strings.HasPrefix(file, "|") {
		t.mark(d, Left, "piped logs have no counterpart; webtier writes to a file or stdout (pipe stdout instead)")
		return
	}
	merged := func(into *dir) string {
		return fmt.Sprintf("webtier writes one access log; this one is merged into the one of %s", t.pos(into))
	}
	if t.logSrc != nil {
		if t.logExact || fst != Exact {
			t.mark(d, Approx, merged(t.logSrc))
			return
		}
		// A log webtier writes as httpd did wins over an approximate one
		// (Debian's other_vhosts_access.log in vhost_combined).
		e := t.marks[t.logSrc]
		e.Status, e.Note = Approx, merged(d)
	}
	t.logSrc, t.logExact = d, fst == Exact
	t.accessLog = obj{{"format", format}, {"path", t.path(file)}}
	note := "access_log"
	if c.s.vhost != nil && t.vhostCount > 1 {
		note = "access_log (webtier's one access log, for every virtual host)"
		t.mark(d, Approx, note)
		return
	}
	t.mark(d, Exact, note)
}

// --- error pages, limits, access ---------------------------------------------

func (t *translator) errorDocument(c ctx, d *dir) {
	if len(d.Args) != 2 {
		t.mark(d, Left, "needs a status and a document")
		return
	}
	code, doc := d.Args[0], d.Args[1]
	if !strings.HasPrefix(doc, "/") {
		t.mark(d, Left, "only a local document (/path) translates; a URL redirects and a text message has no counterpart")
		return
	}
	root := c.s.docRoot
	if root == "" {
		t.mark(d, Left, "a local document needs a DocumentRoot to find the file")
		return
	}
	file := filepath.Join(root, doc)
	l := c.s.loc(c.location)
	target := &l.keys
	if !t.has(ErrorPages) {
		target = &l.missing
	}
	target.sub("error_pages").set(code, file)
	l.src = append(l.src, d)
	if !t.has(ErrorPages) {
		t.mark(d, Left, missingNote(ErrorPages))
		return
	}
	t.mark(d, Approx, "routes[].error_pages: the file "+file+" is sent as it is; httpd ran it as an internal request")
}

func (t *translator) bodyLimit(c ctx, d *dir) {
	n, err := strconv.ParseInt(first(d.Args), 10, 64)
	if err != nil || n < 0 {
		t.mark(d, Left, fmt.Sprintf("%q is not a number of bytes", first(d.Args)))
		return
	}
	if n == 0 {
		t.mark(d, Exact, "0 is unlimited, webtier's default")
		return
	}
	t.locKey(c.s, c.location, d, BodyLimit, "max_body_size", strconv.FormatInt(n, 10), Exact, "routes[].max_body_size")
}

func (t *translator) require(c ctx, d *dir) {
	args := d.Args
	neg := false
	if len(args) > 0 && strings.EqualFold(args[0], "not") {
		neg, args = true, args[1:]
	}
	if len(args) == 0 {
		t.mark(d, Left, "needs an argument")
		return
	}
	switch strings.ToLower(args[0]) {
	case "all":
		if c.dirPath != "" {
			t.mark(d, Exact, "webtier serves no file outside its static roots, and every file inside them")
			return
		}
		if strings.EqualFold(first(args[1:]), "granted") {
			t.mark(d, Exact, "webtier's default")
			return
		}
		t.locKey(c.s, c.location, d, Access, "deny", []string{"0.0.0.0/0", "::/0"}, Exact, "routes[].deny: every client")
	case "ip":
		var cidrs []string
		for _, a := range args[1:] {
			if p, err := netip.ParsePrefix(a); err == nil {
				cidrs = append(cidrs, p.String())
				continue
			}
			if ip, err := netip.ParseAddr(a); err == nil {
				cidrs = append(cidrs, netip.PrefixFrom(ip, ip.BitLen()).String())
				continue
			}
			t.mark(d, Left, fmt.Sprintf("%q: only full addresses and CIDRs translate (not partial addresses like 10.1)", a))
			return
		}
		key := "allow"
		if neg {
			key = "deny"
		}
		if c.dirPath != "" {
			t.mark(d, Left, "access rules in <Directory> are not translated; put them in a <Location> for the URL path")
			return
		}
		t.locKey(c.s, c.location, d, Access, key, cidrs, Approx, "routes[]."+key+": by the client address after trusted proxies; several Require lines are ANDed or ORed in httpd (RequireAny by default), webtier allows the listed CIDRs")
	case "local":
		if c.dirPath != "" {
			t.mark(d, Left, "access rules in <Directory> are not translated; put them in a <Location> for the URL path")
			return
		}
		t.locKey(c.s, c.location, d, Access, "allow", []string{"127.0.0.0/8", "::1/128"}, Exact, "routes[].allow: loopback")
	case "valid-user", "user":
		t.mark(d, Exact, "with basic_auth, every user in the file")
		if strings.EqualFold(args[0], "user") {
			t.mark(d, Approx, "basic_auth lets every user in the file in, not only those named")
		}
	default:
		t.mark(d, Left, fmt.Sprintf("Require %s has no counterpart", args[0]))
	}
}

func (t *translator) auth(c ctx, d *dir) {
	l := c.s.loc(c.location)
	target := &l.keys
	if !t.has(BasicAuth) {
		target = &l.missing
	}
	ba := target.sub("basic_auth")
	switch strings.ToLower(d.Name) {
	case "authtype":
		if !strings.EqualFold(first(d.Args), "basic") {
			t.mark(d, Left, "only AuthType Basic translates")
			return
		}
	case "authname":
		ba.set("realm", first(d.Args))
	case "authuserfile":
		ba.set("htpasswd_file", t.path(first(d.Args)))
	case "authbasicprovider":
		if !strings.EqualFold(first(d.Args), "file") {
			t.mark(d, Left, "only the file provider translates")
			return
		}
	}
	l.src = append(l.src, d)
	if !t.has(BasicAuth) {
		t.mark(d, Left, missingNote(BasicAuth))
		return
	}
	t.mark(d, Approx, "routes[].basic_auth: webtier checks bcrypt hashes only (htpasswd -B); MD5 and SHA entries must be set again")
}

func (t *translator) deflate(c ctx, d *dir) {
	if len(d.Args) < 2 || !strings.EqualFold(d.Args[0], "DEFLATE") {
		t.mark(d, Left, "only AddOutputFilterByType DEFLATE translates")
		return
	}
	c.s.compress = append(c.s.compress, d.Args[1:]...)
	c.s.compressSrc = append(c.s.compressSrc, d)
}

// joinNotes joins the non-empty notes with "; ".
func joinNotes(notes ...string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}
