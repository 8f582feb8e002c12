package rewrite

import (
	"net"
	"net/http"
	"strings"
)

// Response rewrites the backend's response header h as ProxyPassReverse
// does: Location, Content-Location and URI, and the url of Refresh, when
// they name the backend, and the Domain and Path of Set-Cookie. addr is
// the address ("ip:port") the request was sent to, which a backend that
// knows no name for itself puts in its URLs. c is the client's request
// (its Host, and its scheme). It does nothing when reverse is off, and
// reads only the header's map otherwise.
func (rs *Rules) Response(h http.Header, addr string, c Client) {
	if !rs.reverse {
		return
	}
	var base string // the client's scheme://host, made when first needed
	for _, k := range [...]string{"Location", "Content-Location", "Uri"} {
		vv := h[k]
		if len(vv) == 0 {
			continue
		}
		for i, v := range vv {
			if nv, ok := rs.url(v, addr, c, &base); ok {
				vv[i] = nv
			}
		}
	}
	if vv := h["Refresh"]; len(vv) > 0 {
		for i, v := range vv {
			if nv, ok := rs.refresh(v, addr, c, &base); ok {
				vv[i] = nv
			}
		}
	}
	if rs.cookies {
		for i, v := range h["Set-Cookie"] {
			if nv, ok := rs.cookie(v); ok {
				h["Set-Cookie"][i] = nv
			}
		}
	}
}

// url rewrites one URL value; false when it does not name the backend.
func (rs *Rules) url(v, addr string, c Client, base *string) (string, bool) {
	var rest string
	switch {
	case strings.HasPrefix(v, "/") && !strings.HasPrefix(v, "//"):
		// A path only (Tomcat's relative redirects): only a remapped
		// route has anything to change.
		if !rs.remap {
			return "", false
		}
		p, ok := rs.reversePath(v)
		return p, ok
	case hasPrefixFold(v, "http://"):
		rest = v[len("http://"):]
	case hasPrefixFold(v, "https://"):
		rest = v[len("https://"):]
	default:
		return "", false
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if !rs.isBackend(rest[:end], addr) {
		return "", false
	}
	p := rest[end:]
	if rs.remap {
		var ok bool
		if p, ok = rs.reversePath(p); !ok {
			return "", false
		}
	}
	if *base == "" {
		*base = c.Scheme() + "://" + c.R.Host
	}
	return *base + p, true
}

// reversePath maps a backend path (with query or fragment) under the
// target path to the route's prefix; false when it is not under it. The
// target path without its trailing "/" maps to the prefix without it
// (Tomcat redirects "/shop-app" to "/shop-app/").
func (rs *Rules) reversePath(p string) (string, bool) {
	to, from := rs.opts.Prefix, rs.opts.TargetPath
	if strings.HasPrefix(p, from) {
		return to + p[len(from):], true
	}
	if strings.HasSuffix(from, "/") && strings.HasPrefix(p, from[:len(from)-1]) {
		r := p[len(from)-1:]
		if r == "" || r[0] == '?' || r[0] == '#' || r[0] == ';' {
			t := to[:len(to)-1]
			if t == "" {
				t = "/"
			}
			return t + r, true
		}
	}
	return "", false
}

// isBackend reports whether authority (host[:port] from a URL) is one the
// backend names itself by.
func (rs *Rules) isBackend(authority, addr string) bool {
	if authority == "" {
		return false
	}
	if strings.EqualFold(authority, addr) {
		return true
	}
	for _, b := range rs.backends {
		if strings.EqualFold(authority, b) {
			return true
		}
	}
	// Without a port: the same as a backend's default port.
	if strings.HasSuffix(authority, "]") || strings.IndexByte(authority, ':') < 0 {
		for _, b := range rs.backends {
			if h, port, err := net.SplitHostPort(b); err == nil && (port == "80" || port == "443") &&
				strings.EqualFold(strings.Trim(authority, "[]"), h) {
				return true
			}
		}
		if h, port, err := net.SplitHostPort(addr); err == nil && (port == "80" || port == "443") &&
			strings.EqualFold(strings.Trim(authority, "[]"), h) {
			return true
		}
	}
	return false
}

// refresh rewrites the url= part of a Refresh value ("5; url=http://...").
func (rs *Rules) refresh(v, addr string, c Client, base *string) (string, bool) {
	i := indexFold(v, "url=")
	if i < 0 {
		return "", false
	}
	start := i + len("url=")
	u := v[start:]
	quote := ""
	if u != "" && (u[0] == '\'' || u[0] == '"') {
		quote = u[:1]
		u = u[1:]
		start++
	}
	end := len(u)
	if quote != "" {
		if j := strings.Index(u, quote); j >= 0 {
			end = j
		}
	}
	nu, ok := rs.url(strings.TrimSpace(u[:end]), addr, c, base)
	if !ok {
		return "", false
	}
	return v[:start] + nu + u[end:], true
}

// cookie rewrites the Domain and Path attributes of one Set-Cookie value.
func (rs *Rules) cookie(v string) (string, bool) {
	changed := false
	parts := strings.Split(v, ";")
	for i := 1; i < len(parts); i++ {
		name, val, ok := strings.Cut(parts[i], "=")
		if !ok {
			continue
		}
		lead := name[:len(name)-len(strings.TrimLeft(name, " \t"))]
		name = strings.TrimSpace(name)
		val = strings.TrimSpace(val)
		var nv string
		var hit bool
		switch {
		case strings.EqualFold(name, "Domain"):
			nv, hit = rs.cookieDomain(val)
		case strings.EqualFold(name, "Path"):
			nv, hit = rs.cookiePath(val)
		}
		if hit {
			parts[i] = lead + name + "=" + nv
			changed = true
		}
	}
	if !changed {
		return "", false
	}
	return strings.Join(parts, ";"), true
}

func (rs *Rules) cookieDomain(d string) (string, bool) {
	bare := strings.TrimPrefix(d, ".")
	for _, p := range rs.opts.Reverse.CookieDomain {
		if strings.EqualFold(bare, strings.TrimPrefix(p.From, ".")) {
			return p.To, true
		}
	}
	return "", false
}

func (rs *Rules) cookiePath(p string) (string, bool) {
	for _, m := range rs.opts.Reverse.CookiePath {
		if strings.HasPrefix(p, m.From) {
			return m.To + p[len(m.From):], true
		}
	}
	if rs.remap {
		return rs.reversePath(p)
	}
	return "", false
}

// indexFold is strings.Index without case for an ASCII lower-case sub.
func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}
