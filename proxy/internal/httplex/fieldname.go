// Package httplex is the HTTP lexing that webtier's servers (HTTP/1 and
// HTTP/2) and backend clients (HTTP/1.1 and AJP) share, so that each rule
// is written once: tokens, field values and lengths, Connection tokens,
// the hop-by-hop list, ASCII case folding, and field names in canonical
// form.
//
// Canonical puts a field name in the form http.CanonicalHeaderKey gives
// it, without allocating for the names most messages carry. net/textproto
// copies every name that is not canonical already into a new byte slice,
// even when the result is one it interns; on a proxy's hot path that is an
// allocation per "ETag", per "Connection: keep-alive" token and per HTTP/2
// (lower-case) name.
package httplex

import (
	"net/http"
	"strings"
)

// names lists the canonical forms this package interns: common field
// names, and "Close", the Connection token nearly every close carries.
var names = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
	"Access-Control-Allow-Origin", "Age", "Allow", "Authorization", "Cache-Control",
	"Close", "Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Content-Length", "Content-Location", "Content-Md5", "Content-Range", "Content-Type",
	"Cookie", "Date", "Etag", "Expect", "Expires", "Forwarded", "From", "Host",
	"If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
	"Keep-Alive", "Last-Modified", "Link", "Location", "Max-Forwards", "Origin", "P3p",
	"Pragma", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Range", "Referer", "Refresh", "Retry-After", "Server",
	"Set-Cookie", "Strict-Transport-Security", "Te", "Trailer", "Transfer-Encoding",
	"Upgrade", "User-Agent", "Vary", "Via", "Www-Authenticate", "X-Content-Type-Options",
	"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Frame-Options",
	"X-Request-Id", "X-Ua-Compatible", "X-Xss-Protection", "Sec-Fetch-Dest",
	"Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-User", "Sec-Ch-Ua",
	"Sec-Ch-Ua-Mobile", "Sec-Ch-Ua-Platform", "Upgrade-Insecure-Requests", "Dnt",
	"Cf-Ray",
}

// common interns names; built once and only read.
var common = func() map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = n
	}
	return m
}()

// maxLen bounds the names canonicalized on the stack.
const maxLen = 40

// Canonical returns http.CanonicalHeaderKey(s). It allocates only when s is
// not canonical and its canonical form is not a common one.
func Canonical(s string) string {
	if len(s) > maxLen {
		return http.CanonicalHeaderKey(s)
	}
	var buf [maxLen]byte
	b := buf[:len(s)]
	upper, changed := true, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isToken[c] {
			// net/textproto leaves such a name as it is.
			return s
		}
		switch {
		case upper && 'a' <= c && c <= 'z':
			c -= 'a' - 'A'
			changed = true
		case !upper && 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
			changed = true
		}
		b[i] = c
		upper = c == '-'
	}
	if !changed {
		return s
	}
	if n, ok := common[string(b)]; ok { // (a map index: no allocation)
		return n
	}
	return string(b)
}

// ValidToken reports whether s is an RFC 9110 token (a method or a field
// name): not empty, tchar bytes only.
func ValidToken[T ~string | ~[]byte](s T) bool {
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isToken[s[i]] {
			return false
		}
	}
	return true
}

// IsTokenByte reports whether c is a tchar of RFC 9110 5.6.2.
func IsTokenByte(c byte) bool { return isToken[c] }

// isToken marks the tchar bytes of RFC 9110 5.6.2 (net/textproto's
// validHeaderFieldByte).
var isToken = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// Lower returns the lower-case (HTTP/2) form of a canonical name, without
// allocating for the common names.
func Lower(k string) string {
	if l, ok := lower[k]; ok {
		return l
	}
	return strings.ToLower(k)
}

var lower = func() map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = strings.ToLower(n)
	}
	return m
}()
