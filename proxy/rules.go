package proxy

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/rules/access"
	"github.com/webtier/webtier/proxy/rules/errpage"
	"github.com/webtier/webtier/proxy/rules/headers"
)

// This file hangs issue 21's header rules, error pages, limits and access
// control (proxy/rules/headers, errpage, access) on the routes: each
// route gets one *ruleSet, nil when neither it nor any listener has such
// rules, so that a route without them costs one nil check in serve and
// two in forward.

// RouteRules are a route's header rules, error pages, limits and access
// control. Nil: none.
type RouteRules struct {
	RequestHeaders  *headers.Rules // run after the listener's
	ResponseHeaders *headers.Rules // run after the listener's
	// SecurityHeaders, when not nil, overrides the listener's.
	SecurityHeaders *bool
	// ErrorPages by status; a route's page wins over the listener's.
	ErrorPages map[int]errpage.Page
	// ErrorPagesBackend replaces a backend's 5xx body with the page of
	// its status, when there is one.
	ErrorPagesBackend bool
	// Access holds the limits and access rules; nil: none.
	Access *access.Options
}

// ListenerRules are a listener's defaults for the RouteRules of every
// route it serves. Nil: none.
type ListenerRules struct {
	// ServerHeader, when not nil, replaces the backend's Server field
	// ("" removes it). Nil: webtier adds none and passes the backend's.
	ServerHeader    *string
	RequestHeaders  *headers.Rules
	ResponseHeaders *headers.Rules
	SecurityHeaders bool
	ErrorPages      map[int]errpage.Page
}

// ruleSet is a route's rules compiled for each listener.
type ruleSet struct {
	access  *access.Options // nil: none
	limiter *access.Limiter // nil: no rate limit
	fronts  []frontRules    // by front index
}

// frontRules are a route's rules as one listener serves them.
type frontRules struct {
	req, resp *headers.Program // nil: none
	pages     *errpage.Pages   // nil: none
}

// compileRules builds the routes' rule sets.
func (h *Handler) compileRules(opts Options) error {
	any := false
	for _, lo := range opts.Listeners {
		any = any || lo.Rules != nil
	}
	for _, ro := range opts.Routes {
		any = any || ro.Rules != nil
	}
	if !any {
		return nil
	}
	sets := make([]*ruleSet, len(opts.Routes))
	for i, ro := range opts.Routes {
		rr := ro.Rules
		if rr == nil {
			rr = &RouteRules{}
		}
		rs := &ruleSet{access: rr.Access}
		if a := rr.Access; a != nil && a.RateLimit != nil {
			rs.limiter = access.NewLimiter(*a.RateLimit)
		}
		used := rr.Access != nil
		for _, lo := range opts.Listeners {
			lr := lo.Rules
			if lr == nil {
				lr = &ListenerRules{}
			}
			sec := lr.SecurityHeaders
			if rr.SecurityHeaders != nil {
				sec = *rr.SecurityHeaders
			}
			req, err := headers.Compile(headers.Request, headers.Options{}, lr.RequestHeaders, rr.RequestHeaders)
			if err != nil {
				return fmt.Errorf("route %s%s: request_headers: %w", ro.Host, ro.PathPrefix, err)
			}
			resp, err := headers.Compile(headers.Response, headers.Options{Server: lr.ServerHeader, Security: sec},
				lr.ResponseHeaders, rr.ResponseHeaders)
			if err != nil {
				return fmt.Errorf("route %s%s: response_headers: %w", ro.Host, ro.PathPrefix, err)
			}
			fr := frontRules{req: req, resp: resp, pages: errpage.New(rr.ErrorPagesBackend, lr.ErrorPages, rr.ErrorPages)}
			used = used || fr != frontRules{}
			rs.fronts = append(rs.fronts, fr)
		}
		if used {
			sets[i] = rs
		}
	}
	h.router.each(func(rt *route) { rt.rules = sets[rt.index] })
	for _, f := range h.fronts {
		if lr := opts.Listeners[f.index].Rules; lr != nil {
			f.noRoutePages = errpage.New(false, lr.ErrorPages)
		}
	}
	return nil
}

// each calls fn for every route of r.
func (r *router) each(fn func(*route)) {
	for _, rs := range r.exact {
		for i := range rs {
			fn(&rs[i])
		}
	}
	for _, w := range r.wildcard {
		for i := range w.routes {
			fn(&w.routes[i])
		}
	}
	for i := range r.any {
		fn(&r.any[i])
	}
}

// proto is the scheme the client used, as setForwarded writes it in
// X-Forwarded-Proto.
func (f *front) proto(r *http.Request) string {
	if v := r.Header["X-Forwarded-Proto"]; len(v) > 0 && f.trusts(peerHost(r.RemoteAddr)) {
		return v[0]
	}
	if r.TLS != nil {
		return "https"
	}
	return "http"
}

// applyRules runs a route's access rules and limits before forwarding, in
// this order: allow/deny (403), rate limit (429), basic auth (401), body
// size by Content-Length (413). It returns the request to forward (r, or
// a copy with a limited body, a header timeout or without Authorization)
// or nil when it has answered. The rate limit comes before the password
// check, so that it bounds guessing (and the bcrypt work it costs).
func (f *front) applyRules(w http.ResponseWriter, r *http.Request, rt *route, x *exchange) *http.Request {
	a := rt.rules.access
	if a == nil {
		return r
	}
	var client netip.Addr
	if a.HasAddressRules() {
		// observe.go's clientAddr: the same trust rules as setForwarded
		// and the access log (to become the edge work's per-request value).
		client = f.clientAddr(r)
	}
	if !a.Allowed(client) {
		f.ruleAnswer(w, r, rt, x, http.StatusForbidden, "403 Forbidden\n")
		return nil
	}
	if rt.rules.limiter != nil {
		if ok, wait := rt.rules.limiter.Allow(client, time.Now()); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			f.ruleAnswer(w, r, rt, x, http.StatusTooManyRequests, "429 Too Many Requests\n")
			return nil
		}
	}
	if ba := a.BasicAuth; ba != nil {
		if !ba.Check(r.Header) {
			w.Header().Set("WWW-Authenticate", ba.Challenge())
			f.ruleAnswer(w, r, rt, x, http.StatusUnauthorized, "401 Unauthorized\n")
			return nil
		}
	}
	if a.MaxBodySize > 0 && r.ContentLength > a.MaxBodySize {
		w.Header().Set("Connection", "close")
		f.ruleAnswer(w, r, rt, x, http.StatusRequestEntityTooLarge, "413 Request Entity Too Large\n")
		return nil
	}
	stripAuth := a.BasicAuth != nil && !a.BasicAuth.ForwardAuth
	// A body of known length is within the limit (checked above), and the
	// server holds it to that length.
	limitBody := a.MaxBodySize > 0 && r.Body != nil && r.Body != http.NoBody && r.ContentLength < 0
	timeout := a.Timeout > 0
	if timeout {
		if up := requestedUpgrade(r.Header); up != "" && rt.allowsUpgrade(up) {
			timeout = false // the tunnel outlives the response head
		}
	}
	if !stripAuth && !limitBody && !timeout {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	if stripAuth {
		r2.Header = r.Header.Clone()
		delete(r2.Header, "Authorization")
	}
	if limitBody {
		// A body over the limit fails the backend request with
		// *http.MaxBytesError: the backend connection is closed and the
		// client gets 413 (requestBodyError) when nothing was sent yet.
		r2.Body = http.MaxBytesReader(w, r.Body, a.MaxBodySize)
	}
	if timeout {
		// The route's timeout takes the place of the upstream's
		// response_header_timeout in the backend client.
		r2 = r2.WithContext(backendconn.WithHeaderTimeout(r.Context(), a.Timeout))
	}
	return r2
}

// ruleAnswer answers r itself with status: from the route's error page
// for it when there is one, else with the short text body.
func (f *front) ruleAnswer(w http.ResponseWriter, r *http.Request, rt *route, x *exchange, status int, body string) {
	fr := &rt.rules.fronts[f.index]
	id := ""
	if x != nil {
		id = x.reqID
	} else if f.reqID.Header != "" {
		id = f.requestID(r, new([requestIDLen]byte))
	}
	var v headers.Vars
	fr.resp.Apply(w.Header(), f.vars(&v, fr.resp.Needs(), r, id))
	if fr.pages.Write(w, status, id) {
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write([]byte(body)) //nolint:errcheck // the client went away
}

// vars fills v with the header rules' variables for r that need asks
// for, and returns it.
func (f *front) vars(v *headers.Vars, need headers.Need, r *http.Request, id string) *headers.Vars {
	v.RequestID, v.Host = id, r.Host
	if need&headers.NeedScheme != 0 {
		v.Scheme = f.proto(r)
	}
	if need&headers.NeedClientIP != 0 {
		if a := f.clientAddr(r); a.IsValid() {
			v.ClientIP = a.String()
		}
	}
	return v
}

// requestRules applies the route's request header rules to out, whose
// header forward has built (hop-by-hop fields removed, X-Forwarded-* and
// the request id written): rules run last, and may not name those fields
// (headers.Check), so that neither a client nor a rule can smuggle them.
func (f *front) requestRules(r, out *http.Request, rt *route) {
	p := rt.rules.fronts[f.index].req
	if p == nil {
		return
	}
	var v headers.Vars
	p.Apply(out.Header, f.vars(&v, p.Needs(), r, f.requestIDOf(out)))
}

// responseRules runs when the backend's response head has arrived, before
// it is passed on: it answers a 5xx with the route's page when
// error_pages_backend says so (and reports true), and otherwise applies
// the response header rules to res.
func (f *front) responseRules(w http.ResponseWriter, r, out *http.Request, rt *route, res *http.Response) bool {
	fr := &rt.rules.fronts[f.index]
	if fr.pages != nil && fr.pages.Backend && res.StatusCode >= 500 && fr.pages.Has(res.StatusCode) {
		res.Body.Close()
		id := f.requestIDOf(out)
		var v headers.Vars
		fr.resp.Apply(w.Header(), f.vars(&v, fr.resp.Needs(), r, id))
		fr.pages.Write(w, res.StatusCode, id)
		return true
	}
	if fr.resp != nil {
		var v headers.Vars
		fr.resp.Apply(res.Header, f.vars(&v, fr.resp.Needs(), r, f.requestIDOf(out)))
	}
	return false
}

// errorPage applies the route's response header rules to webtier's own
// error answer for a request of rt (as httpd's "Header always"), answers
// it from the route's page when there is one, and reports whether it did.
func (f *front) errorPage(w http.ResponseWriter, r *http.Request, rt *route, status int) bool {
	fr := &rt.rules.fronts[f.index]
	id := f.requestIDOf(r)
	var v headers.Vars
	fr.resp.Apply(w.Header(), f.vars(&v, fr.resp.Needs(), r, id))
	return fr.pages.Write(w, status, id)
}

// noRoute answers a request no route matches: 404, from the listener's
// page when it has one.
func (f *front) noRoute(w http.ResponseWriter, r *http.Request) {
	if f.noRoutePages != nil {
		id := ""
		if f.reqID.Header != "" {
			id = f.requestID(r, new([requestIDLen]byte))
		}
		if f.noRoutePages.Write(w, http.StatusNotFound, id) {
			return
		}
	}
	http.Error(w, "404 page not found: no route for this host and path", http.StatusNotFound)
}
