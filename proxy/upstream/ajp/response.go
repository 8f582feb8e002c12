package ajp

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// strReader reads AJP integers and strings from a payload converted to a
// string once, so that the header names and values it returns are
// substrings of one allocation instead of one allocation each. (They keep
// the whole payload, at most one packet, alive while any of them is.)
type strReader struct {
	s   string
	off int
}

func (r *strReader) u8() (byte, bool) {
	if r.off >= len(r.s) {
		return 0, false
	}
	b := r.s[r.off]
	r.off++
	return b, true
}

func (r *strReader) u16() (int, bool) {
	if r.off+2 > len(r.s) {
		return 0, false
	}
	v := int(r.s[r.off])<<8 | int(r.s[r.off+1])
	r.off += 2
	return v, true
}

// peek16 returns the next two bytes as an integer without consuming them.
func (r *strReader) peek16() (int, bool) {
	if r.off+2 > len(r.s) {
		return 0, false
	}
	return int(r.s[r.off])<<8 | int(r.s[r.off+1]), true
}

// str reads an AJP string: length (2), bytes, a terminating 0x00 not
// counted in the length. Length 0xFFFF is the null string, returned as "".
func (r *strReader) str() (string, bool) {
	n, ok := r.u16()
	if !ok {
		return "", false
	}
	if n == 0xFFFF {
		return "", true
	}
	end := r.off + n
	if end+1 > len(r.s) || r.s[end] != 0 {
		return "", false
	}
	v := r.s[r.off:end]
	r.off = end + 1
	return v, true
}

// parseSendHeaders decodes a SEND_HEADERS payload:
//
//	type (1) status (2) reason (string) num_headers (2)
//	then per header: name (0xA0xx code, or string) value (string)
//
// Header names that are not valid HTTP tokens and values holding CR, LF or
// NUL are dropped rather than passed on (Tomcat itself replaces control
// characters in values; this guards against other containers).
func parseSendHeaders(p []byte) (*SendHeadersPacket, error) {
	r := strReader{s: string(p[1:])}
	bad := func(what string) error {
		return fmt.Errorf("%w: SEND_HEADERS: bad %s at byte %d", ErrProtocol, what, r.off+1)
	}
	status, ok := r.u16()
	if !ok {
		return nil, bad("status")
	}
	if status < 100 || status > 999 {
		return nil, fmt.Errorf("%w: SEND_HEADERS: status %d", ErrProtocol, status)
	}
	reason, ok := r.str()
	if !ok {
		return nil, bad("reason")
	}
	n, ok := r.u16()
	if !ok {
		return nil, bad("header count")
	}
	// Each header takes at least 5 bytes (code 2 + empty value 3); a count
	// the payload cannot hold is rejected before sizing anything by it.
	if n > (len(r.s)-r.off)/5 {
		return nil, bad("header count")
	}
	h := make(http.Header, n)
	// One backing array for all values, sliced per key with a capped
	// capacity so that a second value for a key reallocates instead of
	// overwriting a neighbour (the net/textproto trick).
	vals := make([]string, n)
	for i := range n {
		var name string
		code, ok := r.peek16()
		if !ok {
			return nil, bad("header name")
		}
		if code>>8 == 0xA0 {
			r.off += 2
			idx := code & 0xFF
			if idx == 0 || idx >= len(responseHeaderNames) {
				return nil, fmt.Errorf("%w: SEND_HEADERS: unknown header code 0x%04X", ErrProtocol, code)
			}
			name = responseHeaderNames[idx]
		} else if name, ok = r.str(); !ok {
			return nil, bad("header name")
		}
		value, ok := r.str()
		if !ok {
			return nil, bad("header value")
		}
		if !httplex.ValidToken(name) || !validHeaderValue(value) {
			continue
		}
		name = httplex.Canonical(name)
		if old, exists := h[name]; exists {
			h[name] = append(old, value)
			continue
		}
		vals[i] = value
		h[name] = vals[i : i+1 : i+1]
	}
	if r.off != len(r.s) {
		return nil, fmt.Errorf("%w: SEND_HEADERS: %d trailing bytes", ErrProtocol, len(r.s)-r.off)
	}
	return &SendHeadersPacket{Status: status, Reason: reason, Header: h}, nil
}

// StatusLine returns the status for an http.Response ("403 Forbidden").
// Tomcat sends the numeric code as the AJP reason phrase (so httpd relays
// "HTTP/1.1 403 403"); a reason that is empty or just the code is replaced
// by the standard text. A real reason from another container is kept.
func StatusLine(code int, reason string) string {
	if reason == "" || reason == strconv.Itoa(code) {
		if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
			return statusLines[code]
		}
		if t := http.StatusText(code); t != "" {
			return strconv.Itoa(code) + " " + t
		}
		return strconv.Itoa(code)
	}
	return strconv.Itoa(code) + " " + reason
}

// statusLines caches "NNN Text" for the codes net/http knows.
var statusLines = func() []string {
	s := make([]string, 600)
	for c := range s {
		if t := http.StatusText(c); t != "" {
			s[c] = strconv.Itoa(c) + " " + t
		}
	}
	return s
}()

// validHeaderValue rejects the bytes that would split or truncate a header
// line. Other control characters are left to net/http's writer.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\r', '\n', 0:
			return false
		}
	}
	return true
}
