package proxy

import (
	"net/http"
	"net/netip"
	"strings"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// This file decides a request's client address, once, at the edge, as
// httpd's mod_remoteip does: the connection's peer (which is already the
// client from a PROXY protocol header: see frontend's proxy_protocol),
// or, when the peer is one of the listener's trusted_proxies (the ALB),
// the right-most X-Forwarded-For address that is not itself a trusted
// proxy. Every place that names the client uses it: the outbound
// request's RemoteAddr (the AJP client's remote_addr, remote_host and
// AJP_REMOTE_PORT; balance: hash), the access log and the request logs.
// forward decides it for the outbound request; the access log line asks
// client again rather than keep it in the exchange, which would grow
// every observed request by 16 bytes to save a second walk of
// X-Forwarded-For on the requests that have one from a trusted proxy.
// X-Forwarded-For to HTTP backends is still the chain with the peer
// appended (setForwarded).

// client returns the request's client address, and the same as "ip:port"
// for the outbound RemoteAddr: r.RemoteAddr itself when the client is the
// peer, else the client's address with the peer's port (the client's own
// port is unknown; mod_remoteip keeps the connection's too).
func (f *front) client(r *http.Request) (netip.Addr, string) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		// Not ip:port (a request built elsewhere): the address, if any.
		a, _ := netip.ParseAddr(peerHost(r.RemoteAddr))
		return a.Unmap(), r.RemoteAddr
	}
	peer := ap.Addr().Unmap()
	if len(f.trusted) == 0 || !f.trustsAddr(peer) {
		return peer, r.RemoteAddr
	}
	client := peer
	xff := r.Header["X-Forwarded-For"]
walk:
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for v != "" {
			var part string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				v, part = v[:j], v[j+1:]
			} else {
				v, part = "", v
			}
			a, err := netip.ParseAddr(strings.TrimSpace(part))
			if err != nil {
				break walk // a value that is no address ends the chain
			}
			client = a.Unmap()
			if !f.trustsAddr(client) {
				break walk
			}
		}
	}
	if client == peer {
		return peer, r.RemoteAddr
	}
	return client, netip.AddrPortFrom(client, ap.Port()).String()
}

// clientRemote is client's "ip:port" alone, at no cost (no parsing, no
// allocation) on a listener without trusted proxies or for a request
// without X-Forwarded-For.
func (f *front) clientRemote(r *http.Request) string {
	if len(f.trusted) == 0 || len(r.Header["X-Forwarded-For"]) == 0 {
		return r.RemoteAddr
	}
	_, remote := f.client(r)
	return remote
}

// clientAddr is client's address alone: the access log's client.
func (f *front) clientAddr(r *http.Request) netip.Addr {
	a, _ := f.client(r)
	return a
}

func (f *front) trustsAddr(ip netip.Addr) bool {
	for _, p := range f.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedValue is the RFC 7239 Forwarded value of the X-Forwarded-For
// chain xff that setForwarded wrote: one element per address (for=), the
// last one, this proxy's hop, with proto= and host=. An address that is
// no IP (a trusted proxy's "unknown") is sent quoted as it was.
func forwardedValue(xff, proto, host string) string {
	var b strings.Builder
	b.Grow(len(xff) + len(proto) + len(host) + 32)
	for part := range strings.SplitSeq(xff, ",") {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("for=")
		part = strings.TrimSpace(part)
		if a, err := netip.ParseAddr(part); err == nil && a.Is6() && !a.Is4In6() {
			b.WriteString(`"[` + a.String() + `]"`)
		} else if err == nil {
			b.WriteString(a.Unmap().String())
		} else {
			writeForwardedValue(&b, part)
		}
	}
	b.WriteString(";proto=")
	writeForwardedValue(&b, proto)
	b.WriteString(";host=")
	writeForwardedValue(&b, host)
	return b.String()
}

// writeForwardedValue writes v as a token when it is one, else as a
// quoted-string (RFC 7230's, which RFC 7239 uses).
func writeForwardedValue(b *strings.Builder, v string) {
	token := v != ""
	for i := 0; i < len(v) && token; i++ {
		token = httplex.IsTokenByte(v[i])
	}
	if token {
		b.WriteString(v)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
}
