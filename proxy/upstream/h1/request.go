package h1

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// init checks req and decides how it is framed. Everything written later
// comes from what init validated, so an invalid request fails here,
// before a connection is taken.
func (ex *exchange) init() error {
	req := ex.req
	if req.URL == nil {
		return fmt.Errorf("%w: nil Request.URL", ErrInvalidRequest)
	}
	ex.ctx = req.Context()
	ex.trace = httptrace.ContextClientTrace(ex.ctx)

	ex.method = req.Method
	if ex.method == "" {
		ex.method = http.MethodGet
	} else if !httplex.ValidToken(ex.method) {
		return fmt.Errorf("%w: invalid method %q", ErrInvalidRequest, req.Method)
	}
	ex.host = req.Host
	if ex.host == "" {
		ex.host = req.URL.Host
	}
	if !validHost(ex.host) {
		return fmt.Errorf("%w: invalid Host %q", ErrInvalidRequest, ex.host)
	}
	// The path is escaped by EscapedPath; the rest is written as it is.
	if !validTarget(req.URL.Opaque) || !validTarget(req.URL.RawQuery) {
		return fmt.Errorf("%w: invalid request target %q", ErrInvalidRequest, req.URL.RequestURI())
	}
	for k, vv := range req.Header {
		if skipHeader(k, vv) {
			continue
		}
		if err := validField(k, vv); err != nil {
			return err
		}
	}

	switch {
	case req.Body == nil || req.Body == http.NoBody:
		if req.ContentLength > 0 {
			return fmt.Errorf("%w: ContentLength %d with no Body", ErrInvalidRequest, req.ContentLength)
		}
		switch ex.method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// Like net/http: say "no body" where one is expected.
			ex.sendCL0 = true
		}
	case req.ContentLength > 0:
		ex.reqBody, ex.bodyLen = req.Body, req.ContentLength
	default:
		// For client requests ContentLength 0 with a Body means unknown
		// (net/http.Request's doc), like -1: chunked, never dropped.
		ex.reqBody, ex.bodyLen = req.Body, -1
		for k := range req.Trailer {
			if !httplex.ValidToken(k) {
				return fmt.Errorf("%w: invalid trailer name %q", ErrInvalidRequest, k)
			}
		}
	}

	conn := req.Header["Connection"]
	keepAlive := !req.Close && ex.t.o.MaxIdle >= 0
	saysClose := len(conn) > 0 && httplex.HasToken(conn, "close")
	ex.sendClose = !keepAlive && !saysClose
	ex.noReuse = !keepAlive || saysClose
	ex.replayable = replayable(ex.method, req.Header)
	return nil
}

// replayable reports whether a request may be sent twice: net/http's rule
// (an idempotent method, or an idempotency key). The body is checked
// separately: only one nobody read from can be sent again.
func replayable(method string, h http.Header) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := h["Idempotency-Key"]
	_, b := h["X-Idempotency-Key"]
	return a || b
}

// skipHeader reports whether a header of req.Header is not written as it
// is: framing headers RoundTrip writes itself, and an empty User-Agent
// (which httputil.ReverseProxy sets to keep net/http's default out, and
// net/http does not send).
func skipHeader(k string, vv []string) bool {
	switch len(k) {
	case 4:
		return httplex.EqualFold(k, "Host")
	case 7:
		return httplex.EqualFold(k, "Trailer")
	case 10:
		return httplex.EqualFold(k, "User-Agent") && (len(vv) == 0 || vv[0] == "")
	case 14:
		return httplex.EqualFold(k, "Content-Length")
	case 17:
		return httplex.EqualFold(k, "Transfer-Encoding")
	}
	return false
}

// validField checks a header or trailer field before it is written.
func validField(k string, vv []string) error {
	if !httplex.ValidToken(k) {
		return fmt.Errorf("%w: invalid header name %q", ErrInvalidRequest, k)
	}
	for _, v := range vv {
		if !httplex.ValidValue(v) {
			return fmt.Errorf("%w: invalid value for header %q", ErrInvalidRequest, k)
		}
	}
	return nil
}

// writeHead writes the request head into bw; it flushes only if the head
// is larger than bw. The error is bw's: a failed write to the connection.
func (ex *exchange) writeHead(bw *bufio.Writer) error {
	req := ex.req
	bw.WriteString(ex.method)
	bw.WriteByte(' ')
	writeTarget(bw, req.URL)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(ex.host)
	bw.WriteString("\r\n")
	for k, vv := range req.Header {
		if skipHeader(k, vv) {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	switch {
	case ex.bodyLen > 0:
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), ex.bodyLen, 10))
		bw.WriteString("\r\n")
	case ex.bodyLen < 0:
		bw.WriteString("Transfer-Encoding: chunked\r\n")
		if len(req.Trailer) > 0 {
			bw.WriteString("Trailer: ")
			sep := ""
			for k := range req.Trailer {
				bw.WriteString(sep)
				bw.WriteString(k)
				sep = ", "
			}
			bw.WriteString("\r\n")
		}
	case ex.sendCL0:
		bw.WriteString("Content-Length: 0\r\n")
	}
	if ex.sendClose {
		bw.WriteString("Connection: close\r\n")
	}
	_, err := bw.WriteString("\r\n")
	return err
}

// writeTarget writes u.RequestURI() without building the string.
func writeTarget(bw *bufio.Writer, u *url.URL) {
	if u.Opaque != "" {
		bw.WriteString(u.RequestURI())
		return
	}
	if p := u.EscapedPath(); p != "" {
		bw.WriteString(p)
	} else {
		bw.WriteByte('/')
	}
	if u.ForceQuery || u.RawQuery != "" {
		bw.WriteByte('?')
		bw.WriteString(u.RawQuery)
	}
}

// States of a bodyWriter. Whoever moves it out of writerIdle decides who
// owns the request body: the writer (it reads, sends and closes it) or
// RoundTrip (nothing was read, so the request may be sent again).
const (
	writerIdle int32 = iota
	writerOwns
	writerAborted
)

// bodyWriter writes the request body of one attempt on a goroutine of its
// own, so that the response can be read while it is written: a backend may
// answer before it has read the body (413, 401, a redirect), and one that
// does not read it would block a synchronous writer for good.
type bodyWriter struct {
	ex    *exchange
	pc    *persistConn
	state atomic.Int32
	done  chan struct{} // closed when the writer has finished with pc
	err   error         // set before done is closed; nil: the whole request was written

	srcErr error // reading the request body failed; guarded by pc.dmu
}

// startWriter starts writing the request body after the head that is in
// pc.bw.
func (ex *exchange) startWriter() {
	w := &bodyWriter{ex: ex, pc: ex.pc, done: make(chan struct{})}
	ex.w = w
	go w.run()
}

func (w *bodyWriter) run() {
	defer close(w.done)
	if !w.state.CompareAndSwap(writerIdle, writerOwns) {
		w.err = errWriterAborted
		return
	}
	w.err = w.write()
	w.ex.closeReqBody()
}

// writeGrace is how long the end of a response waits for its request
// body writer to finish (net/http waits as long). The writer's last write
// has usually just returned and it only has to be scheduled; a writer
// still busy after that means the backend is not reading the body, and
// the connection is closed.
const writeGrace = 50 * time.Millisecond

// wroteAll reports whether the writer wrote the whole request, waiting
// up to writeGrace for it to finish. A writer that has not started (the
// backend answered without the body) did not.
func (w *bodyWriter) wroteAll() bool {
	select {
	case <-w.done:
		return w.err == nil
	default:
	}
	if w.state.Load() == writerIdle {
		return false
	}
	timer := time.NewTimer(writeGrace)
	defer timer.Stop()
	select {
	case <-w.done:
		return w.err == nil
	case <-timer.C:
		return false
	}
}

func (w *bodyWriter) write() error {
	if n := w.ex.bodyLen; n > 0 {
		return w.writeLength(n)
	}
	return w.writeChunked()
}

// maxEmptyReads bounds reads that return neither data nor an error.
const maxEmptyReads = 100

// writeLength sends exactly n bytes of the body, read straight into the
// write buffer. It flushes when the buffer is full or a read returned
// less than asked (the source has nothing more for now), so a streaming
// upload is not held back.
func (w *bodyWriter) writeLength(n int64) error {
	bw, src := w.pc.bw, w.ex.reqBody
	for empty := 0; n > 0; {
		if bw.Available() == 0 {
			if err := w.flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		buf = buf[:min(int64(cap(buf)), n)]
		k, err := src.Read(buf)
		if k > 0 {
			bw.Write(buf[:k]) // copies onto itself: buf is bw's free space
			n -= int64(k)
			empty = 0
		} else if err == nil {
			if empty++; empty == maxEmptyReads {
				return w.source(fmt.Errorf("h1: reading the request body: %w", io.ErrNoProgress))
			}
		}
		switch {
		case n == 0:
		case err == io.EOF:
			return w.source(fmt.Errorf("h1: request body ended %d bytes short of its Content-Length %d: %w",
				n, w.ex.bodyLen, io.ErrUnexpectedEOF))
		case err != nil:
			return w.source(fmt.Errorf("h1: reading the request body: %w", err))
		case k < len(buf):
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	return w.flush()
}

// chunkRoom is the space kept in front of a chunk's data for its size
// line (up to 8 hex digits and CRLF).
const chunkRoom = 10

// writeChunked sends the body in chunked encoding, one chunk per read,
// each read straight into the write buffer behind room for its size line,
// then the last chunk and req.Trailer. Each chunk is flushed, as net/http
// does, so a streaming upload is not held back.
func (w *bodyWriter) writeChunked() error {
	bw, src := w.pc.bw, w.ex.reqBody
	for empty := 0; ; {
		if bw.Available() < chunkRoom+2+512 {
			if err := w.flush(); err != nil {
				return err
			}
		}
		buf := bw.AvailableBuffer()
		k, err := src.Read(buf[chunkRoom : cap(buf)-2])
		if k > 0 {
			var line [chunkRoom]byte
			h := append(strconv.AppendInt(line[:0], int64(k), 16), '\r', '\n')
			start := chunkRoom - len(h)
			copy(buf[start:chunkRoom], h)
			bw.Write(buf[start : chunkRoom+k]) // moves the chunk to the buffer's free space
			bw.WriteString("\r\n")
			empty = 0
		} else if err == nil {
			if empty++; empty == maxEmptyReads {
				return w.source(fmt.Errorf("h1: reading the request body: %w", io.ErrNoProgress))
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return w.source(fmt.Errorf("h1: reading the request body: %w", err))
		}
		if k > 0 {
			if err := w.flush(); err != nil {
				return err
			}
		}
	}
	bw.WriteString("0\r\n")
	// Trailer values are read only now: a server fills them in when the
	// body it received reaches EOF.
	for k, vv := range w.ex.req.Trailer {
		if err := validField(k, vv); err != nil {
			return w.source(err)
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			bw.WriteString(v)
			bw.WriteString("\r\n")
		}
	}
	bw.WriteString("\r\n")
	return w.flush()
}

// flush sends what is buffered; a written part of the body restarts the
// response head clock.
func (w *bodyWriter) flush() error {
	if err := w.pc.bw.Flush(); err != nil {
		return fmt.Errorf("h1: writing the request body: %w", err)
	}
	w.pc.ExtendHeaderWait(w.ex.rht)
	return nil
}

// source ends the write for a request body error, which also ends the
// exchange: the backend waits for bytes that will not come.
func (w *bodyWriter) source(err error) error {
	err = &requestBodyError{err}
	w.pc.failWrite(w, err)
	return err
}

// validHost reports whether s may be written as the Host header: not
// empty, visible ASCII only.
func validHost(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// validTarget reports whether s may be written into the request line:
// no space, control character or DEL. Bytes above 0x7f pass, as they do
// in net/http (raw UTF-8 in a query).
func validTarget(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
