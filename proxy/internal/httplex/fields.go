package httplex

import (
	"net/http"
	"strings"
)

// ParseFields parses the field lines of an HTTP/1 head (each line ending
// in CRLF, without the empty line that ends the head) into a new Header,
// as net/textproto's ReadMIMEHeader reads them: names canonicalized,
// values without leading and trailing spaces and tabs, repeated names in
// order. It reports false for anything ReadMIMEHeader refuses or reads in
// a way this does not (obs-fold continuation lines, a bare CR or LF, a
// control character in a value, a name that is not a token), so that the
// caller can hand the head to net/http, which words the error. It
// allocates the map and one array for all the value slices; names and
// values are cut from lines, so a caller that made lines with one
// conversion from bytes has its whole head in three allocations.
func ParseFields(lines string) (http.Header, bool) {
	n := strings.Count(lines, "\n")
	vals := make([]string, n)
	h := make(http.Header, n)
	for lines != "" {
		var line string
		line, lines, _ = strings.Cut(lines, "\r\n")
		name, value, ok := strings.Cut(line, ":")
		if !ok || !ValidToken(name) || !ValidValue(value) {
			return nil, false
		}
		value = TrimOWS(value)
		if !isCanonical(name) {
			name = Canonical(name)
		}
		if vv, ok := h[name]; ok {
			h[name] = append(vv, value)
			continue
		}
		vals[0] = value
		h[name], vals = vals[:1:1], vals[1:]
	}
	return h, true
}

// isCanonical reports whether the token name is already in the form
// http.CanonicalHeaderKey gives it: upper case first and after each '-',
// lower case elsewhere.
func isCanonical(name string) bool {
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// Closes is net/http's shouldClose for a message of HTTP/1.minor with
// header h: HTTP/1.0 closes unless it says keep-alive, HTTP/1.1 only if it
// says close.
func Closes(h http.Header, minor int) bool {
	conn := h["Connection"]
	hasClose := HasToken(conn, "close")
	if minor == 0 {
		return hasClose || !HasToken(conn, "keep-alive")
	}
	return hasClose
}

// ParseLength parses a Content-Length value of a kind net/http accepts:
// digits only, not empty, at most 18 of them (ParseUint(s, 10, 63)
// refuses only longer ones). Anything else it leaves to net/http.
func ParseLength(s string) (int64, bool) {
	if s == "" || len(s) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
