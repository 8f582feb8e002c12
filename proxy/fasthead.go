package proxy

import (
	"bufio"
	"bytes"
	"errors"

	"github.com/webtier/webtier/proxy/fieldname"
)

// errNotFast says a request is outside what the fast path serves; its
// connection goes to net/http.
var errNotFast = errors.New("proxy: request handed to net/http")

// fastHead is what the fast path learns from a raw request head before
// net/http's parser reads it: http.ReadRequest drops the Host header
// without saying how many there were, and the checks net/http's server
// adds on top of the parser need that.
type fastHead struct {
	http11  bool
	hosts   int    // Host header fields
	badHost bool   // a Host value net/http would reject
	bad     string // another reason net/http's server answers 400
	size    int    // bytes, up to and including the empty line
}

var (
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
)

// readHead fills br until it holds a whole request head and classifies
// it, without consuming anything. It returns errNotFast for heads the fast
// path leaves to net/http, and the read error if the client closed or timed
// out first.
func readHead(br *bufio.Reader) (fastHead, error) {
	from := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf[from:], crlfcrlf); i >= 0 {
			h, err := classifyHead(buf[:from+i+4])
			h.size = from + i + 4
			return h, err
		}
		if bytes.Contains(buf, lflf) {
			return fastHead{}, errNotFast // bare-LF line endings
		}
		if len(buf) >= br.Size() {
			return fastHead{}, errNotFast // a head too large for the fast path
		}
		from = max(0, len(buf)-3)
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return fastHead{}, err
		}
	}
}

// classifyHead checks the request line and the header names that decide
// the path. head ends with CRLF CRLF.
func classifyHead(head []byte) (fastHead, error) {
	var h fastHead
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if bytes.IndexByte(line, '\n') >= 0 {
		return h, errNotFast
	}
	switch {
	case bytes.HasSuffix(line, []byte(" HTTP/1.1")):
		h.http11 = true
	case bytes.HasSuffix(line, []byte(" HTTP/1.0")):
	case bytes.Equal(line, []byte("PRI * HTTP/2.0")):
		h.bad = "HTTP/2 without TLS (h2c) is not served; use HTTPS"
		return h, nil
	default:
		return h, errNotFast // HTTP/0.9, HTTP/3, garbage: net/http answers
	}
	if bytes.HasPrefix(line, []byte("CONNECT ")) {
		return h, errNotFast
	}
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' || bytes.IndexByte(line, '\n') >= 0 {
			return h, errNotFast // obs-fold or a bare LF
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, errNotFast // net/http's parser words the error
		}
		if !validToken(name) {
			// net/http's parser lets a space before the colon through;
			// its server refuses it, and so does this one.
			h.bad = "invalid header name"
		}
		switch {
		case equalFold(name, "host"):
			h.hosts++
			if !validHost(bytes.Trim(value, " \t")) {
				h.badHost = true
			}
		case equalFold(name, "upgrade"), equalFold(name, "expect"), equalFold(name, "http2-settings"):
			return h, errNotFast
		case equalFold(name, "connection") && containsFold(value, "upgrade"):
			return h, errNotFast
		}
	}
	return h, nil
}

// check applies net/http's server rules on top of its parser; it returns
// the 400 message, or "".
func (h fastHead) check() string {
	switch {
	case h.hosts == 0 && h.http11:
		return "missing required Host header"
	case h.hosts > 1:
		return "too many Host headers"
	case h.badHost:
		return "malformed Host header"
	}
	return h.bad
}

// equalFold reports whether b equals the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// containsFold reports whether b contains the lower-case ASCII s, ignoring
// case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if equalFold(b[i:i+len(s)], s) {
			return true
		}
	}
	return false
}

// validHost reports whether v has only the bytes net/http's server allows
// in a Host header (golang.org/x/net/http/httpguts.ValidHostHeader).
func validHost(v []byte) bool {
	for _, c := range v {
		if !hostByte[c] {
			return false
		}
	}
	return true
}

// validToken reports whether b is an RFC 9110 token (a header name).
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !fieldname.IsTokenByte(c) {
			return false
		}
	}
	return true
}

var hostByte = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!$%&'()*+,-.:;=[]_~" {
		t[c] = true
	}
	return t
}()
