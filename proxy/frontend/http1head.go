package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/internal/httplex"
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
	// status is 414 or 431 when the head is over a limit (then bad says
	// which), 0 otherwise.
	status int
	// closeAfter: a framing conflict (Transfer-Encoding with
	// Content-Length, or in an HTTP/1.0 request). net/http's parser
	// frames the body by Transfer-Encoding, or ignores it in HTTP/1.0;
	// RFC 9112 6.1 and 6.3 say to close the connection after such a
	// message, so that no proxy in front that framed it otherwise can
	// have its leftover bytes read as a request.
	closeAfter bool
}

// headLimits are a listener's bounds on a request head, defaults applied.
type headLimits struct {
	requestLine int // bytes of the request line, CRLF not counted: beyond, 414
	fieldSize   int // bytes of one field line, CRLF not counted: beyond, 431
	fields      int // field lines: beyond, 431
	headSize    int // bytes of the whole head, the empty line included: beyond, 431
}

func newHeadLimits(lo proxy.ListenerOptions) headLimits {
	return headLimits{
		requestLine: orDefaultInt(lo.MaxRequestLine, proxy.DefaultMaxRequestLine),
		fieldSize:   orDefaultInt(lo.MaxHeaderFieldSize, proxy.DefaultMaxHeaderFieldSize),
		fields:      orDefaultInt(lo.MaxHeaderFields, proxy.DefaultMaxHeaderFields),
		headSize:    orDefaultInt(lo.MaxHeaderSize, proxy.DefaultMaxHeaderSize),
	}
}

func orDefaultInt(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// The messages of the limits, as the client sees them after the status.
const (
	msgRequestLine = "request line too long"
	msgFieldSize   = "header field too large"
	msgFields      = "too many header fields"
	msgHeadSize    = "request head too large"
)

var (
	crlfcrlf = []byte("\r\n\r\n")
	lflf     = []byte("\n\n")
)

// readHead fills br until it holds a whole request head and classifies
// it, without consuming anything. It returns errNotFast for heads the fast
// path leaves to net/http, and the read error if the client closed or timed
// out first. A head over a limit of lim is reported (status) as soon as the
// bytes read show it, without reading the rest: so a connection never
// buffers more than br's size here, and net/http, which gets the heads
// larger than that, reads at most lim.headSize (its MaxHeaderBytes).
func readHead(br *bufio.Reader, lim *headLimits) (fastHead, error) {
	from := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if i := bytes.Index(buf[from:], crlfcrlf); i >= 0 {
			h, err := classifyHead(buf[:from+i+4], lim)
			h.size = from + i + 4
			return h, err
		}
		if bytes.Contains(buf[from:], lflf) {
			return fastHead{}, errNotFast // bare-LF line endings
		}
		// The limits of a head not yet whole are looked at only once
		// enough has come to be over one (a client sending a byte at a
		// time does not make each read scan the buffer again), and
		// before a hand-off.
		if len(buf) >= br.Size() || len(buf) > min(lim.requestLine, lim.fieldSize, lim.headSize-1) {
			if h := partialLimits(buf, lim); h.status != 0 {
				return h, nil
			}
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

// partialLimits checks the start of a head, not yet whole, against lim.
// Lines end in LF here, with or without CR, so that bare-LF heads are not
// mistaken for one long line.
func partialLimits(buf []byte, lim *headLimits) fastHead {
	if len(buf) >= lim.headSize {
		return fastHead{status: http.StatusRequestHeaderFieldsTooLarge, bad: msgHeadSize}
	}
	line, rest, whole := bytes.Cut(buf, []byte("\n"))
	if len(bytes.TrimSuffix(line, []byte("\r"))) > lim.requestLine {
		return fastHead{status: http.StatusRequestURITooLong, bad: msgRequestLine}
	}
	for n := 1; whole; n++ {
		line, rest, whole = bytes.Cut(rest, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		switch {
		case whole && len(line) == 0:
			return fastHead{} // the end of a head with mixed line endings: net/http's
		case whole && n > lim.fields:
			return fastHead{status: http.StatusRequestHeaderFieldsTooLarge, bad: msgFields}
		case len(line) > lim.fieldSize:
			return fastHead{status: http.StatusRequestHeaderFieldsTooLarge, bad: msgFieldSize}
		}
	}
	return fastHead{}
}

// classifyHead checks the request line and the header names that decide
// the path, and the limits of lim. head ends with CRLF CRLF.
func classifyHead(head []byte, lim *headLimits) (fastHead, error) {
	var h fastHead
	if len(head) > lim.headSize {
		h.status, h.bad = http.StatusRequestHeaderFieldsTooLarge, msgHeadSize
		return h, nil
	}
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	if bytes.IndexByte(line, '\n') >= 0 {
		return h, errNotFast
	}
	if len(line) > lim.requestLine {
		h.status, h.bad = http.StatusRequestURITooLong, msgRequestLine
		return h, nil
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
	var length, te bool
	fields := 0
	for len(rest) > 2 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' || bytes.IndexByte(line, '\n') >= 0 {
			return h, errNotFast // obs-fold or a bare LF
		}
		if fields++; fields > lim.fields {
			h.status, h.bad = http.StatusRequestHeaderFieldsTooLarge, msgFields
			return h, nil
		}
		if len(line) > lim.fieldSize {
			h.status, h.bad = http.StatusRequestHeaderFieldsTooLarge, msgFieldSize
			return h, nil
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return h, errNotFast // net/http's parser words the error
		}
		if !httplex.ValidToken(name) {
			// net/http's parser lets a space before the colon through;
			// its server refuses it, and so does this one.
			h.bad = "invalid header name"
		}
		switch {
		case httplex.EqualFold(name, "host"):
			h.hosts++
			if !validHost(bytes.Trim(value, " \t")) {
				h.badHost = true
			}
		case httplex.EqualFold(name, "content-length"):
			length = true
		case httplex.EqualFold(name, "transfer-encoding"):
			te = true
		case httplex.EqualFold(name, "upgrade"), httplex.EqualFold(name, "expect"), httplex.EqualFold(name, "http2-settings"):
			return h, errNotFast
		case httplex.EqualFold(name, "connection") && containsFold(value, "upgrade"):
			return h, errNotFast
		}
	}
	h.closeAfter = te && (length || !h.http11)
	return h, nil
}

// check applies net/http's server rules on top of its parser, and the
// limits; it returns the status and message of the answer (0, "" if
// none).
func (h fastHead) check() (int, string) {
	switch {
	case h.status != 0:
		return h.status, h.bad
	case h.hosts == 0 && h.http11:
		return http.StatusBadRequest, "missing required Host header"
	case h.hosts > 1:
		return http.StatusBadRequest, "too many Host headers"
	case h.badHost:
		return http.StatusBadRequest, "malformed Host header"
	case h.bad != "":
		return http.StatusBadRequest, h.bad
	}
	return 0, ""
}

// containsFold reports whether b contains the lower-case ASCII s, ignoring
// case.
func containsFold(b []byte, s string) bool {
	for i := 0; i+len(s) <= len(b); i++ {
		if httplex.EqualFold(b[i:i+len(s)], s) {
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
