package rewrite

import (
	"net/http"
	"strconv"
	"strings"
)

// Result is what Request did with a request.
type Result struct {
	// Answered: the rules wrote the response (a redirect, 403 or 410);
	// the request is not forwarded.
	Answered bool
	// Changed: a rewrite changed Path or Query, which the proxy cleans
	// and routes again before forwarding.
	Changed bool
	// Path and Query are the escaped path and raw query to forward.
	Path, Query string
}

// Request applies the route's Redirect, Redirects and Rewrites, in that
// order, to a request whose cleaned escaped path is path. A route without
// any of them returns path and the request's query unchanged at once.
func (rs *Rules) Request(w http.ResponseWriter, c Client, path string) Result {
	r := c.R
	res := Result{Path: path, Query: r.URL.RawQuery}
	if !rs.request {
		return res
	}
	if rd := rs.opts.Redirect; rd != nil {
		rest, ok := rs.rest(path)
		if ok {
			to := ""
			if rd.To != "" {
				to = rd.To + rest
			}
			rs.redirect(w, c, to, rd.Status, res.Query, false)
			res.Answered = true
			return res
		}
	}
	for _, rm := range rs.opts.Redirects {
		m := rm.Match.FindStringSubmatchIndex(path)
		if m == nil {
			continue
		}
		to := ""
		if rm.To != "" {
			to = string(expand(nil, rm.To, path, m, "", nil, false))
		}
		rs.redirect(w, c, to, rm.Status, res.Query, false)
		res.Answered = true
		return res
	}
	for i := range rs.opts.Rewrites {
		rule := &rs.opts.Rewrites[i]
		m := rule.Match.FindStringSubmatchIndex(res.Path)
		if m == nil {
			continue
		}
		csrc, cm, ok := rule.conditions(c, res.Path, res.Query)
		if !ok {
			continue
		}
		switch {
		case rule.Flags.Forbidden:
			answer(w, http.StatusForbidden)
			res.Answered = true
			return res
		case rule.Flags.Gone:
			answer(w, http.StatusGone)
			res.Answered = true
			return res
		}
		newPath, newQuery, hasQuery := res.Path, res.Query, false
		if rule.To != "-" {
			sub := string(expand(nil, rule.To, res.Path, m, csrc, cm, rule.Flags.NoEscape))
			newPath, newQuery, hasQuery = strings.Cut(sub, "?")
			if hasQuery && rule.Flags.QSA && res.Query != "" {
				if newQuery == "" {
					newQuery = res.Query
				} else {
					newQuery += "&" + res.Query
				}
			}
			if !hasQuery {
				newQuery = res.Query
			}
		}
		if rule.Flags.Redirect != 0 {
			rs.redirect(w, c, newPath, rule.Flags.Redirect, newQuery, true)
			res.Answered = true
			return res
		}
		if newPath != res.Path || newQuery != res.Query {
			res.Path, res.Query, res.Changed = newPath, newQuery, true
		}
		if rule.Flags.Last {
			break
		}
	}
	return res
}

// conditions checks a rule's conditions (all must hold; a run joined by
// Or holds when one of it does) and returns the subject and match of the
// last regexp condition that matched, for %N.
func (rule *Rule) conditions(c Client, path, query string) (string, []int, bool) {
	var src string
	var m []int
	for i := 0; i < len(rule.When); i++ {
		cd := &rule.When[i]
		var ok bool
		if cd.On == OnClient {
			ok = cd.Client.Contains(c.Addr()) != cd.Negate
		} else {
			s := cd.subject(c, path, query)
			idx := cd.Match.FindStringSubmatchIndex(s)
			ok = (idx != nil) != cd.Negate
			if ok && idx != nil {
				src, m = s, idx
			}
		}
		switch {
		case ok && cd.Or:
			// The run holds: skip the rest of it, as mod_rewrite does
			// (its later conditions are not evaluated, so give no %N).
			for i+1 < len(rule.When) && rule.When[i].Or {
				i++
			}
		case !ok && !cd.Or:
			return "", nil, false
		}
	}
	return src, m, true
}

// subject is the request value a regexp condition tests.
func (cd *Condition) subject(c Client, path, query string) string {
	var s string
	switch cd.On {
	case OnHost:
		s = hostOnly(c.R.Host)
	case OnPath:
		s = path
	case OnQuery:
		s = query
	case OnHeader:
		if v := c.R.Header[cd.Header]; len(v) > 0 {
			s = v[0]
		}
	case OnMethod:
		s = c.R.Method
	}
	return s
}

// rest returns the path after the route's prefix for Redirect, which
// matches whole segments only, as httpd's does: with prefix "/old",
// "/old" and "/old/x" match, "/older" does not.
func (rs *Rules) rest(path string) (string, bool) {
	if !strings.HasPrefix(path, rs.escPrefix) {
		return "", false
	}
	rest := path[len(rs.escPrefix):]
	if strings.HasSuffix(rs.escPrefix, "/") || rest == "" || rest[0] == '/' || rest[0] == ';' {
		return rest, true
	}
	return "", false
}

// Remap returns the path to forward for a request whose cleaned escaped
// path is path: the route's prefix replaced by the target path. It
// returns false when path is not under the prefix once escapes are
// counted (the router matched a decoded "/" of "%2F"), or when a prefix
// without a trailing "/" ends inside a segment ("/shop" of "/shopping"):
// forwarding either would hand the backend a path outside the mapping.
func (rs *Rules) Remap(path string) (string, bool) {
	rest, ok := rs.rest(path)
	if !ok {
		return "", false
	}
	return rs.opts.TargetPath + rest, true
}

// redirect answers with status and a Location built from to (a path or an
// absolute URL) and query. A query already in to is kept and the request's
// dropped, unless query comes from a rewrite (rewritten).
func (rs *Rules) redirect(w http.ResponseWriter, c Client, to string, status int, query string, rewritten bool) {
	if status == http.StatusGone || to == "" {
		answer(w, http.StatusGone)
		return
	}
	var b strings.Builder
	if !hasScheme(to) {
		b.WriteString(c.Scheme())
		b.WriteString("://")
		b.WriteString(c.R.Host)
	}
	b.WriteString(to)
	if query != "" && (rewritten || !strings.Contains(to, "?")) {
		b.WriteByte('?')
		b.WriteString(query)
	}
	w.Header()["Location"] = []string{safeURL(b.String())}
	answer(w, status)
}

// answer writes a short plain-text answer with status.
func answer(w http.ResponseWriter, status int) {
	h := w.Header()
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	w.Write([]byte(strconv.Itoa(status) + " " + http.StatusText(status) + "\n")) //nolint:errcheck // the client may be gone
}

// hasScheme reports whether s starts with http:// or https://.
func hasScheme(s string) bool {
	return hasPrefixFold(s, "http://") || hasPrefixFold(s, "https://")
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// hostOnly strips a port from a Host value and lowercases it.
func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.HasSuffix(h, "]") {
		h = h[:i]
	}
	return strings.ToLower(h)
}

// expand appends tmpl to dst with $N replaced by group N of m in src and
// %N by group N of cm in csrc (escaped unless ne); "\$" and "\%" are a
// literal "$" and "%". A group that did not take part is empty.
func expand(dst []byte, tmpl, src string, m []int, csrc string, cm []int, ne bool) []byte {
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '\\' && i+1 < len(tmpl) && (tmpl[i+1] == '$' || tmpl[i+1] == '%'):
			dst = append(dst, tmpl[i+1])
			i++
		case (c == '$' || c == '%') && i+1 < len(tmpl) && '0' <= tmpl[i+1] && tmpl[i+1] <= '9':
			n := int(tmpl[i+1] - '0')
			i++
			if c == '$' {
				dst = appendGroup(dst, src, m, n, true)
			} else {
				dst = appendGroup(dst, csrc, cm, n, ne)
			}
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// appendGroup appends group n of m in s, as it is (raw) or with every
// byte that is not a path byte escaped.
func appendGroup(dst []byte, s string, m []int, n int, raw bool) []byte {
	if 2*n+1 >= len(m) || m[2*n] < 0 {
		return dst
	}
	g := s[m[2*n]:m[2*n+1]]
	if raw {
		return append(dst, g...)
	}
	for i := 0; i < len(g); i++ {
		if c := g[i]; pathByte(c) {
			dst = append(dst, c)
		} else {
			dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return dst
}

// safeURL escapes the bytes a URL may not carry as they are (controls,
// space, non-ASCII, and "\"<>\\^`{|}"), so that no capture can put
// anything but a URL in a Location field.
func safeURL(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if unsafeURLByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	b := make([]byte, 0, len(s)+2*n)
	for i := 0; i < len(s); i++ {
		if c := s[i]; unsafeURLByte(c) {
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

func unsafeURLByte(c byte) bool {
	return c <= ' ' || c >= 0x7f || strings.IndexByte("\"<>\\^`{|}", c) >= 0
}
