package frontend

import (
	"bufio"
	"net/http"
	"net/url"
	"strings"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// parseRequest reads the request head that fills the first size bytes of
// br (readHead found it whole) into req, when it is of the common kind:
// "METHOD /origin-form HTTP/1.x", fields ParseFields takes, and no body
// (no Content-Length, or 0). It consumes the head and reports true only
// then; for anything else it consumes nothing and the caller reads the
// head with http.ReadRequest, whose rules and error messages then apply:
// request bodies, Transfer-Encoding, absolute-form and "*" targets,
// CONNECT, repeated Host or Content-Length fields, Trailer, Pragma,
// malformed heads. What it accepts it reads exactly as http.ReadRequest
// would (FuzzParseRequest compares the two), with the same URL parser,
// and with one string for the head and one map instead of about a dozen
// allocations; req is the worker's, copied by WithContext before the
// handler sees it.
//
// It exists for CPU: http.ReadRequest was 4 to 6% of the proxy's CPU on
// keep-alive requests.
func parseRequest(br *bufio.Reader, size int, req *http.Request) bool {
	buf, err := br.Peek(size)
	if err != nil || size < 4 {
		return false
	}
	head := string(buf[:size-2]) // the request line and the fields, each ending in CRLF
	line, fields, _ := strings.Cut(head, "\r\n")
	method, rest, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || !httplex.ValidToken(method) || method == http.MethodConnect ||
		len(target) == 0 || target[0] != '/' {
		return false
	}
	var minor int
	switch proto {
	case "HTTP/1.1":
		minor = 1
	case "HTTP/1.0":
	default:
		return false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	h, ok := httplex.ParseFields(fields)
	if !ok || h["Transfer-Encoding"] != nil || h["Trailer"] != nil || h["Pragma"] != nil {
		return false
	}
	host := h["Host"]
	if len(host) > 1 {
		return false
	}
	if cl, ok := h["Content-Length"]; ok {
		if n, ok := httplex.ParseLength(cl[0]); !ok || n != 0 || len(cl) > 1 {
			return false // a body, or a length http.ReadRequest words
		}
	}
	*req = http.Request{
		Method:     method,
		URL:        u,
		Proto:      proto,
		ProtoMajor: 1,
		ProtoMinor: minor,
		Header:     h,
		Body:       http.NoBody,
		Close:      httplex.Closes(h, minor),
		Host:       u.Host,
		RequestURI: target,
	}
	if req.Host == "" && len(host) == 1 {
		req.Host = host[0]
	}
	delete(h, "Host") // as ReadRequest does: the value is in req.Host
	br.Discard(size)
	return true
}
