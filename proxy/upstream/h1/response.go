package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"strings"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// parseHead parses the response head already whole in br's buffer into
// ex's own Response, when it is of the common kind: HTTP/1.1 or 1.0, a
// final status (not 1xx), CRLF line endings, no obs-fold, and a body framed
// by one Content-Length or none at all (HEAD, 204, 304). It consumes the
// head and reports true only then; for anything else it consumes nothing
// and the caller reads the head with http.ReadResponse, whose rules and
// error messages then apply: chunked and close-delimited bodies, trailers,
// repeated Content-Length fields, Pragma, malformed heads. What it accepts
// it reads exactly as http.ReadResponse would (the same Header, Status,
// ContentLength and Close), with two allocations instead of about twenty:
// one string holding the head, which the header values and the status are
// cut from, and one map (plus its value slices' shared backing array).
//
// It exists for CPU: http.ReadResponse was 8% of the proxy's CPU on
// keep-alive requests.
func (ex *exchange) parseHead(br *bufio.Reader) (*http.Response, bool) {
	buf, _ := br.Peek(br.Buffered())
	end := indexCRLFCRLF(buf)
	if end < 0 {
		return nil, false // not all here yet, or bare LF line endings
	}
	// The status line and the fields, each line ending in CRLF.
	head := string(buf[:end+2])

	status, rest, _ := strings.Cut(head, "\r\n")
	major, minor, code, ok := parseStatusLine(status)
	if !ok || code < 200 {
		return nil, false // 1xx: ReadResponse, in the loop that skips them
	}
	h, ok := httplex.ParseFields(rest)
	if !ok {
		return nil, false // obs-fold, a bare CR or malformed: ReadResponse words it
	}
	if h["Transfer-Encoding"] != nil || h["Trailer"] != nil || h["Pragma"] != nil {
		return nil, false
	}
	cl, hasCL := h["Content-Length"]

	resp := &ex.respv
	*resp = http.Response{
		Status:     status[len("HTTP/1.1 "):], // "200 OK", or "200"
		StatusCode: code,
		ProtoMajor: major,
		ProtoMinor: minor,
		Header:     h,
		Request:    ex.req,
	}
	if minor == 1 {
		resp.Proto = "HTTP/1.1"
	} else {
		resp.Proto = "HTTP/1.0"
	}
	resp.Close = httplex.Closes(h, minor)
	if resp.Close && minor == 1 {
		delete(h, "Connection") // as ReadResponse does
	}

	n := int64(-1)
	if len(cl) > 1 {
		return nil, false // equal duplicates are merged, others refused: ReadResponse does both
	}
	if hasCL {
		if n, ok = httplex.ParseLength(cl[0]); !ok {
			return nil, false
		}
	}
	switch {
	case ex.method == http.MethodHead:
		resp.ContentLength = n
		resp.Body = http.NoBody
	case code == http.StatusNoContent || code == http.StatusNotModified:
		resp.ContentLength = 0
		resp.Body = http.NoBody
	case n < 0:
		return nil, false // read until the backend closes: ReadResponse's
	case n == 0:
		resp.ContentLength = 0
		resp.Body = http.NoBody
	default:
		resp.ContentLength = n
		ex.body.left = n
		resp.Body = &ex.body
	}
	br.Discard(end + 4)
	return resp, true
}

// indexCRLFCRLF returns the index of the CRLF CRLF that ends the head in
// buf, or -1 if there is none or a bare LF comes before it.
func indexCRLFCRLF(buf []byte) int {
	for i := 0; ; {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j
		if i == 0 || buf[i-1] != '\r' {
			return -1 // a bare LF
		}
		if i >= 3 && buf[i-2] == '\n' && buf[i-3] == '\r' {
			return i - 3
		}
		i++
	}
}

// parseStatusLine parses "HTTP/1.x DDD" with an optional " reason". A
// status line http.ReadResponse also accepts but words differently (more
// spaces, other versions) is left to it.
func parseStatusLine(line string) (major, minor, code int, ok bool) {
	if len(line) < 12 || !strings.HasPrefix(line, "HTTP/1.") || line[8] != ' ' ||
		len(line) > 12 && line[12] != ' ' {
		return 0, 0, 0, false
	}
	switch line[7] {
	case '0':
	case '1':
		minor = 1
	default:
		return 0, 0, 0, false
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, 0, false
		}
		code = code*10 + int(c-'0')
	}
	return 1, minor, code, true
}
