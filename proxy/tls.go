package proxy

import (
	"net"
	"net/http"
	"strconv"
)

// frontTLS is what a listener's TLS settings do to its responses:
// redirect_https on a plain listener, tls.hsts on a TLS one. A listener
// with neither has none (front.tls is nil), so its requests pay one nil
// check.
type frontTLS struct {
	redirect bool   // plain listener: 308 to https
	hsts     string // Strict-Transport-Security value; "": none
}

// newFrontTLS returns lo's frontTLS, or nil when it has nothing to do.
func newFrontTLS(lo ListenerOptions) *frontTLS {
	t := &frontTLS{redirect: lo.RedirectHTTPS && lo.TLS == nil}
	if lo.TLS != nil && lo.TLS.HSTS > 0 {
		t.hsts = "max-age=" + strconv.FormatInt(int64(lo.TLS.HSTS.Seconds()), 10)
	}
	if !t.redirect && t.hsts == "" {
		return nil
	}
	return t
}

// answer sets the HSTS header of a response over TLS, or answers a plain
// request with a permanent redirect to https (308, so that a POST stays a
// POST) and reports true. The redirect keeps the host without its port
// (https's default port is the one in front) and the path and query as
// the client wrote them. The health path never gets here.
func (t *frontTLS) answer(w http.ResponseWriter, r *http.Request) bool {
	if r.TLS != nil {
		if t.hsts != "" {
			w.Header().Set("Strict-Transport-Security", t.hsts)
		}
		return false
	}
	if !t.redirect {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
		if ip := net.ParseIP(h); ip != nil && ip.To4() == nil {
			host = "[" + h + "]"
		}
	}
	if host == "" {
		http.Error(w, "400 Bad Request: Host header required to redirect to https", http.StatusBadRequest)
		return true
	}
	w.Header().Set("Location", "https://"+host+r.URL.RequestURI())
	w.WriteHeader(http.StatusPermanentRedirect)
	return true
}
