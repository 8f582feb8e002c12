package httplex

import "strings"

// HasToken reports whether the comma-separated header values vv contain
// the token tok, ignoring ASCII case only (as httpguts'
// HeaderValuesContainsToken: "trailerſ" is not "trailers").
func HasToken(vv []string, tok string) bool {
	for _, v := range vv {
		for v != "" {
			var part string
			part, v, _ = strings.Cut(v, ",")
			if EqualFold(TrimOWS(part), tok) {
				return true
			}
		}
	}
	return false
}

// TrimOWS removes the optional whitespace (spaces and tabs) of RFC 9110
// 5.6.3 around s.
func TrimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// EqualFold reports whether a and b are equal ignoring ASCII case only:
// unlike strings.EqualFold, "ſ" is not "s" and "K" (Kelvin) is not "k",
// as HTTP's case-insensitive tokens and field names want. It takes the
// bytes of a request head as they are, without a conversion.
func EqualFold[T ~string | ~[]byte](a T, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(b); i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// ValidValue reports whether s may be written as a field value: no
// control character but HTAB (so no CR, LF or NUL), as net/http checks.
func ValidValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// HopByHop lists, canonical, the header fields a proxy never forwards:
// RFC 9110 7.6.1, the RFC 2616 list httputil.ReverseProxy keeps, and
// HTTP2-Settings, which belongs to an h2c upgrade (RFC 7540 3.2.1).
// Read only.
var HopByHop = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings"}

// IsHopByHop reports whether k (canonical) is one of HopByHop.
func IsHopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Http2-Settings":
		return true
	}
	return false
}
