package proxy

import (
	"context"
	"net/http"
	"net/url"

	"github.com/webtier/webtier/proxy/rules/rewrite"
)

// rewrite applies rt's rewrite rules (proxy/rules/rewrite) to r, whose
// cleaned URL is u and whose Host is host, the way route returns: the
// request to forward and its route, or a nil route when the rules (or an
// error here) answered. The order is httpd's: redirects and rewrites on
// the client's path, then the remapping of the route the (rewritten) path
// is routed to.
//
// A rewritten path is cleaned again (a substitution may paste "/../")
// and stays on the route: remapped when it is still under the route's
// prefix, forwarded as it is otherwise (the rewrite chose the backend's
// path, as a RewriteRule with [P] does).
func (f *front) rewrite(w http.ResponseWriter, r *http.Request, u *url.URL, host string, rt *route) (*http.Request, *route) {
	// The request and its new URL in one allocation.
	ru := new(rewrittenRequest)
	r2 := &ru.r
	*r2 = *r
	r2.Host = host
	rs := rt.rewrite
	res := rs.Request(w, rewrite.Client{R: r2, Trusted: f.trusted, AddrOf: f.clientAddrOf}, u.EscapedPath())
	if res.Answered {
		return r, nil
	}
	if rs.AnswersAll() {
		// A redirect route's prefix that ends inside a segment.
		http.Error(w, "404 page not found: no route for this host and path", http.StatusNotFound)
		return r, nil
	}
	if res.Changed {
		clean, err := cleanRawPath(res.Path)
		var path string
		if err == nil {
			path, err = url.PathUnescape(clean)
		}
		if err != nil {
			http.Error(w, "400 Bad Request: the rewritten path: "+err.Error(), http.StatusBadRequest)
			return r, nil
		}
		ru.u = *u
		ru.u.Path, ru.u.RawPath, ru.u.RawQuery = path, clean, res.Query
		u = &ru.u
	}
	if rs.Remaps() {
		p, ok := rs.Remap(u.EscapedPath())
		if !ok && res.Changed {
			r2.URL = u // the rewrite's own backend path
			return r2, rt
		}
		if !ok {
			// The router matched a decoded "/" of "%2F", or a prefix
			// without "/" that ends inside a segment: the backend
			// would get a path outside the mapping.
			http.Error(w, "404 page not found: no route for this host and path", http.StatusNotFound)
			return r, nil
		}
		path, err := url.PathUnescape(p)
		if err != nil {
			http.Error(w, "400 Bad Request: "+errPathEscape.Error(), http.StatusBadRequest)
			return r, nil
		}
		ru.u = *u
		ru.u.Path, ru.u.RawPath = path, p
		u = &ru.u
	}
	r2.URL = u
	return r2, rt
}

// reverse rewrites the backend's response header h for the client
// (ProxyPassReverse) by rt's rules; r is the request as forwarded.
func (f *front) reverse(h http.Header, res *http.Response, r *http.Request, rt *route) {
	addr := ""
	if res.Request != nil && res.Request.URL != nil {
		addr = res.Request.URL.Host // the address the pool sent it to
	}
	rt.rewrite.Response(h, addr, rewrite.Client{R: r, Trusted: f.trusted, AddrOf: f.clientAddrOf})
}

// rewrittenRequest is a request to forward with the URL the rules made.
type rewrittenRequest struct {
	r http.Request
	u url.URL
}

// reverseKey is the context key under which forward hands an upgrade
// request's route and inbound request to reverseUpgrade.
type reverseKey struct{}

type reverseValue struct {
	rt *route
	in *http.Request
}

// withReverse marks an upgrade request for reverseUpgrade: the
// ReverseProxy that serves it is per pool, not per route.
func withReverse(r *http.Request, rt *route) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), reverseKey{}, &reverseValue{rt, r}))
}

// reverseUpgrade is the ReverseProxy's ModifyResponse: the backend's
// answer to an upgrade request (a 101, or a redirect to a login page)
// gets ProxyPassReverse as forward gives every other response.
func (f *front) reverseUpgrade(res *http.Response) error {
	if res.Request == nil {
		return nil
	}
	if v, ok := res.Request.Context().Value(reverseKey{}).(*reverseValue); ok {
		f.reverse(res.Header, res, v.in, v.rt)
	}
	return nil
}
