package frontend

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/internal/httpdate"
)

// fastWriter is the http.ResponseWriter of the fast path. It frames the
// response as net/http's server does for HTTP/1.x: the handler's
// Content-Length when it set one, otherwise a small body is buffered and
// measured, and a longer or flushed one is chunked (HTTP/1.1) or ends with
// the connection (HTTP/1.0). It also adds Date, answers Connection: close
// when the connection ends, and sends trailers. It does not sniff a
// Content-Type: a proxy passes the backend's headers as they are, except
// that, as net/http's, it leaves out a field whose name is not a token and
// writes CR, LF (and NUL) in a value as spaces (http1fields.go).
type fastWriter struct {
	bw      *bufio.Writer
	req     *http.Request
	closing *atomic.Bool // the server is shutting down
	body    *fastBody    // the request body, nil if none

	header http.Header
	status int // 0 until WriteHeader

	headSent   bool // the status line and headers are in bw
	finishing  bool // the handler returned
	noBody     bool // HEAD, 1xx, 204, 304
	chunked    bool
	closeAfter bool  // the connection ends after this response
	length     int64 // declared Content-Length, -1 if none
	written    int64
	pending    []byte   // body held back to measure it (no length declared)
	trailers   []string // announced in the Trailer header
	discard    bool     // the handler's body is not sent (a 408 replaced its answer)

	log *zap.Logger // reports dropped fields at debug level; nil: not reported

	raw *rawWriter // the socket under bw, for ReadFrom's sendfile; nil: none
}

// fastPendingMax is how much of a body without Content-Length is held to
// give it one (net/http's bufferBeforeChunkingSize).
const fastPendingMax = 2 << 10

func (w *fastWriter) reset(bw *bufio.Writer, req *http.Request, closing *atomic.Bool) {
	h := w.header
	if h == nil {
		h = make(http.Header)
	} else {
		clear(h)
	}
	pending := w.pending[:0]
	*w = fastWriter{bw: bw, req: req, closing: closing, header: h, length: -1, pending: pending}
	w.closeAfter = req.Close
}

func (w *fastWriter) Header() http.Header { return w.header }

// SentStatus is the status sent, which a 408 may have replaced (for the
// access log).
func (w *fastWriter) SentStatus() int { return w.status }

// EnableFullDuplex is a no-op: this writer never stops the request body at
// the first response write (AJP routes rely on that).
func (w *fastWriter) EnableFullDuplex() error { return nil }

func (w *fastWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic("proxy: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An informational response (103 Early Hints) goes out now; the
		// headers stay for the final one, as in net/http.
		if w.req.ProtoAtLeast(1, 1) {
			w.writeStatusLine(code)
			w.writeFields(w.header)
			w.bw.WriteString("\r\n")
			w.bw.Flush()
		}
		return
	}
	if w.body != nil && w.body.expired.Load() {
		w.answerBodyTimeout()
		return
	}
	w.status = code
	if cl := w.header["Content-Length"]; len(cl) == 1 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	if w.length < 0 {
		delete(w.header, "Content-Length")
	}
	w.noBody = w.req.Method == http.MethodHead || code < 200 || code == http.StatusNoContent || code == http.StatusNotModified
	if v := w.header.Get("Connection"); v != "" && strings.EqualFold(strings.TrimSpace(v), "close") {
		w.closeAfter = true
	}
	for _, v := range w.header["Trailer"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				w.trailers = append(w.trailers, http.CanonicalHeaderKey(name))
			}
		}
	}
}

// answerBodyTimeout replaces the handler's answer (a 502 when the backend
// request failed on the body) with 408: the client sent its body too
// slowly. The connection closes after it.
func (w *fastWriter) answerBodyTimeout() {
	const msg = "408 Request Timeout: the request body did not come in time\n"
	clear(w.header)
	w.header["Content-Type"] = []string{"text/plain; charset=utf-8"}
	w.header["Content-Length"] = []string{strconv.Itoa(len(msg))}
	w.status = http.StatusRequestTimeout
	w.length = int64(len(msg))
	w.closeAfter = true
	w.sendHead()
	w.writeBody([]byte(msg))
	w.discard = true
}

func (w *fastWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(p), nil
	}
	if w.noBody {
		if w.req.Method == http.MethodHead {
			return len(p), nil
		}
		return 0, http.ErrBodyNotAllowed
	}
	if w.length >= 0 {
		if w.written+int64(len(p)) > w.length {
			n := int(w.length - w.written)
			w.sendHead()
			m, _ := w.bw.Write(p[:n])
			w.written += int64(m)
			return m, http.ErrContentLength
		}
		w.sendHead()
		n, err := w.bw.Write(p)
		w.written += int64(n)
		return n, err
	}
	if !w.headSent && len(w.trailers) == 0 && len(w.pending)+len(p) <= fastPendingMax {
		w.pending = append(w.pending, p...)
		return len(p), nil
	}
	w.sendHead()
	return w.writeBody(p)
}

// writeBody writes p in the framing chosen by sendHead.
func (w *fastWriter) writeBody(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if w.chunked {
		w.bw.WriteString(strconv.FormatInt(int64(len(p)), 16))
		w.bw.WriteString("\r\n")
		n, err := w.bw.Write(p)
		w.bw.WriteString("\r\n")
		w.written += int64(n)
		return n, err
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	return n, err
}

// FlushError sends what is buffered to the client; ReverseProxy calls it
// for streamed responses.
func (w *fastWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.sendHead()
	return w.bw.Flush()
}

// Flush implements http.Flusher.
func (w *fastWriter) Flush() { w.FlushError() } //nolint:errcheck // Flusher has no error

// sendHead writes the status line and headers once, choosing the body's
// framing: the declared length, the held-back body's length, chunked, or
// until the connection closes.
func (w *fastWriter) sendHead() {
	if w.headSent {
		return
	}
	w.headSent = true
	h := w.header
	switch {
	case w.noBody || w.length >= 0:
	case len(w.trailers) == 0 && w.finishing:
		// The handler returned: the held-back body is all of it.
		w.length = int64(len(w.pending))
		h["Content-Length"] = []string{strconv.Itoa(len(w.pending))}
	case w.req.ProtoAtLeast(1, 1):
		w.chunked = true
	default:
		w.closeAfter = true // HTTP/1.0: the body ends with the connection
	}
	if w.closing.Load() {
		w.closeAfter = true
	}
	delete(h, "Transfer-Encoding")
	delete(h, "Connection")
	delete(h, "Keep-Alive")
	w.writeStatusLine(w.status)
	if _, ok := h["Date"]; !ok {
		w.bw.WriteString("Date: ")
		w.bw.Write(httpdate.Bytes())
		w.bw.WriteString("\r\n")
	}
	w.writeFields(h)
	switch {
	case w.chunked:
		w.bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	switch {
	case w.closeAfter:
		w.bw.WriteString("Connection: close\r\n")
	case !w.req.ProtoAtLeast(1, 1):
		w.bw.WriteString("Connection: keep-alive\r\n")
	}
	w.bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		p := w.pending
		w.pending = w.pending[:0]
		w.writeBody(p)
	}
}

func (w *fastWriter) writeStatusLine(code int) {
	w.bw.WriteString("HTTP/1.1 ")
	var b [3]byte
	w.bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	w.bw.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		w.bw.WriteString(text)
	} else {
		w.bw.WriteString("status code ")
		w.bw.Write(strconv.AppendInt(b[:0], int64(code), 10))
	}
	w.bw.WriteString("\r\n")
}

// writeFields writes h. A field whose name is not a token is left out, as
// net/http's server and the HTTP/2 writer do (see validFieldName), and CR,
// LF and NUL in values become spaces, so that nothing a handler or a
// backend put in h can start a header of its own.
func (w *fastWriter) writeFields(h http.Header) {
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) {
			continue
		}
		w.writeField(k, vv)
	}
}

// writeField writes the lines of one field, or none if its name is not a
// token.
func (w *fastWriter) writeField(k string, vv []string) {
	if !validFieldName(k) {
		w.dropField(k, len(vv))
		return
	}
	for _, v := range vv {
		w.bw.WriteString(k)
		w.bw.WriteString(": ")
		writeFieldValue(w.bw, v)
		w.bw.WriteString("\r\n")
	}
}

// finish completes the response after the handler returned and reports
// whether the connection can carry another request.
func (w *fastWriter) finish() bool {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	w.finishing = true
	w.sendHead()
	switch {
	case w.chunked:
		w.bw.WriteString("0\r\n")
		w.writeTrailers()
		w.bw.WriteString("\r\n")
	case !w.noBody && w.length >= 0 && w.written < w.length:
		// The handler wrote less than it declared (a backend that broke
		// off): the client must see the connection end, not wait.
		w.closeAfter = true
	}
	if err := w.bw.Flush(); err != nil {
		return false
	}
	return !w.closeAfter
}

func (w *fastWriter) writeTrailers() {
	for _, k := range w.trailers {
		if vv := w.header[k]; len(vv) > 0 {
			w.writeField(k, vv)
		}
	}
	for k, vv := range w.header {
		name, ok := strings.CutPrefix(k, http.TrailerPrefix)
		if !ok {
			continue
		}
		w.writeField(name, vv)
	}
}

// The access log (package proxy) asks the server's writers which status
// went out.
var (
	_ interface{ SentStatus() int } = (*fastWriter)(nil)
	_ interface{ SentStatus() int } = (*guardWriter)(nil)
)
