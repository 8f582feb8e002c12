package h2

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/webtier/webtier/proxy/internal/httpdate"
	"github.com/webtier/webtier/proxy/internal/httplex"
)

// pendingMax is how much of a body is held before the response headers go
// out: a small response leaves in one write with its headers and its end.
const pendingMax = 4 << 10

var pendingPool = sync.Pool{New: func() any { b := make([]byte, 0, pendingMax); return &b }}

var errBodyNotAllowed = http.ErrBodyNotAllowed

// responseWriter is the handler's http.ResponseWriter. Like the HTTP/1 fast
// path's writer it sends the header map as it is at the first write, flush
// or the handler's return, adds Date, and sniffs no Content-Type.
type responseWriter struct {
	st     *stream
	header http.Header
	status int

	head     bool // HEAD request: the body is not sent
	headSent bool
	length   int64 // declared Content-Length, -1 if none
	written  int64
	pending  *[]byte // body held back until pendingMax or the end
	trailers []string
}

func (w *responseWriter) Header() http.Header { return w.header }

// EnableFullDuplex is a no-op: HTTP/2 reads and writes a stream at once.
func (w *responseWriter) EnableFullDuplex() error { return nil }

func (w *responseWriter) WriteHeader(code int) {
	if w.status != 0 {
		return
	}
	if code < 100 || code > 999 {
		panic("h2: invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code < 200 {
		if code == http.StatusSwitchingProtocols {
			return // no such thing in HTTP/2
		}
		w.writeInformational(code)
		return
	}
	w.status = code
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(cl[0], 10, 64); err == nil && n >= 0 {
			w.length = n
		}
	}
	for _, v := range w.header["Trailer"] {
		for _, k := range strings.Split(v, ",") {
			if k = http.CanonicalHeaderKey(strings.TrimSpace(k)); k != "" {
				w.trailers = append(w.trailers, k)
			}
		}
	}
}

func (w *responseWriter) writeInformational(code int) {
	c := w.st.c
	c.lockW()
	if !w.st.reset && c.werr == nil {
		c.appendHeaders(w.st.id, code, w.header, false, false, "")
		c.needFlush = true
	}
	c.unlockW()
}

func bodyAllowed(code int) bool {
	return code != http.StatusNoContent && code != http.StatusNotModified && code >= 200
}

func (w *responseWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if !bodyAllowed(w.status) {
		return 0, errBodyNotAllowed
	}
	if w.length >= 0 && w.written+int64(len(p)) > w.length {
		return 0, http.ErrContentLength
	}
	w.written += int64(len(p))
	if w.head {
		return len(p), nil
	}
	if !w.headSent {
		if w.pending == nil {
			w.pending = pendingPool.Get().(*[]byte)
		}
		if len(*w.pending)+len(p) <= pendingMax {
			*w.pending = append(*w.pending, p...)
			return len(p), nil
		}
	}
	if err := w.send(p, false, true); err != nil {
		return 0, err
	}
	return len(p), nil
}

// FlushError sends what the handler wrote so far.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.send(nil, false, true)
}

// Flush implements http.Flusher.
func (w *responseWriter) Flush() { w.FlushError() } //nolint:errcheck // Flusher has no error

// finish ends the response when the handler returns: the headers if not
// sent, what is held back, and the end of the stream (with trailers), in one
// turn at the write buffer.
func (w *responseWriter) finish() {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	if w.length >= 0 && w.written < w.length && !w.head && bodyAllowed(w.status) {
		// The handler wrote less than it declared: the client must not
		// take the body for complete.
		w.release()
		w.st.abort(errStreamReset, true, http2.ErrCodeInternal)
		return
	}
	w.send(nil, true, true) //nolint:errcheck // the stream is over either way
	w.release()
}

func (w *responseWriter) release() {
	if w.pending != nil {
		*w.pending = (*w.pending)[:0]
		pendingPool.Put(w.pending)
		w.pending = nil
	}
}

// send writes the headers (once), the held-back body, p and, with end, the
// end of the stream, within the flow-control windows. With flush the
// buffer is written when this goroutine is the last at it.
func (w *responseWriter) send(p []byte, end, flush bool) error {
	st, c := w.st, w.st.c
	c.lockW()
	if end {
		defer c.unlockWBatch()
	} else {
		defer c.unlockW()
	}
	if st.reset {
		return errStreamReset
	}
	if c.werr != nil {
		return c.werr
	}
	var held []byte
	if w.pending != nil {
		held = *w.pending
	}
	var tr http.Header
	if end {
		tr = w.trailerValues()
	}
	if !w.headSent {
		w.headSent = true
		var clen string
		if w.length < 0 && end && len(tr) == 0 && bodyAllowed(w.status) && !w.head {
			// The handler returned: what it wrote is all of the body.
			// Sent without a slice in the handler's map.
			clen = strconv.Itoa(len(held))
		}
		noData := end && len(held) == 0 && len(tr) == 0
		// Declared trailers go in the trailers only, even when the
		// handler set them before the headers left (a small body is held
		// back until the handler returns).
		c.appendHeaders(st.id, w.status, w.header, noData, false, clen, w.trailers...)
		if noData {
			st.endSent.Store(true)
			c.needFlush = c.needFlush || flush
			return nil
		}
	}
	if len(held) > 0 {
		if err := c.appendData(st, held, end && len(p) == 0 && len(tr) == 0); err != nil {
			return err
		}
		*w.pending = held[:0]
	}
	if len(p) > 0 || (end && len(held) == 0 && len(tr) == 0) {
		if err := c.appendData(st, p, end && len(tr) == 0); err != nil {
			return err
		}
	}
	if len(tr) > 0 {
		c.appendHeaders(st.id, 0, tr, true, true, "")
	}
	if end {
		st.endSent.Store(true)
	}
	c.needFlush = c.needFlush || flush
	return nil
}

// trailerValues collects the trailers: announced keys and TrailerPrefix
// ones.
func (w *responseWriter) trailerValues() http.Header {
	var tr http.Header
	for _, k := range w.trailers {
		if vv := w.header[k]; len(vv) > 0 {
			if tr == nil {
				tr = make(http.Header)
			}
			tr[k] = vv
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && len(vv) > 0 {
			if tr == nil {
				tr = make(http.Header)
			}
			tr[http.CanonicalHeaderKey(name)] = vv
		}
	}
	return tr
}

// appendData appends p to the write buffer as DATA frames within the
// windows, waiting (and writing what is buffered) while they are closed,
// for at most writeTimeout without progress (see waitWindow). Called with
// wmu held.
func (c *conn) appendData(st *stream, p []byte, end bool) error {
	for {
		if st.reset {
			return errStreamReset
		}
		if c.werr != nil {
			return c.werr
		}
		n := min(len(p), c.peerMaxFrame, int(c.sendWindow), int(st.sendWindow))
		if n <= 0 && len(p) > 0 {
			c.waitWindow(st)
			continue
		}
		if st.wait != nil {
			st.wait.since = time.Time{} // progress: windowTimeout stands down
		}
		last := end && n == len(p)
		var flags http2.Flags
		if last {
			flags = http2.FlagDataEndStream
		}
		c.wbuf = appendFrameHeader(c.wbuf, n, http2.FrameData, flags, st.id)
		c.wbuf = append(c.wbuf, p[:n]...)
		c.sendWindow -= int32(n)
		st.sendWindow -= int32(n)
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
		if len(c.wbuf) >= flushAt {
			c.flushLocked()
		}
	}
}

// waitWindow waits for st's windows to grow (or the stream or connection
// to end), writing what is buffered first. The first wait of a stream
// creates its timer and later ones re-arm it; a stream that never waits
// has none. Progress is not reported to the timer: windowTimeout looks at
// wait.since when it fires. Called with wmu held.
func (c *conn) waitWindow(st *stream) {
	w := st.wait
	if w == nil {
		w = &windowWait{since: time.Now(), armed: true}
		st.wait = w
		w.timer = time.AfterFunc(c.writeTimeout, st.windowTimeout) // runs once we wait, unlocking wmu
	} else if w.since.IsZero() {
		w.since = time.Now()
		if !w.armed {
			w.timer.Reset(c.writeTimeout)
			w.armed = true
		}
	}
	if c.sendWindow <= 0 && c.connBlockedAt.IsZero() {
		c.connBlockedAt = w.since
	}
	c.flushLocked()
	c.wcond.Wait()
}

// windowTimeout runs when a response write of st may have waited for window
// for writeTimeout. The stream is reset with CANCEL: the client broke no
// rule (FLOW_CONTROL_ERROR is for a peer that did), the server abandons the
// stream, and the handler's write fails, so that the proxy closes its
// backend connection. When the connection window has been closed all that
// time, new streams would only wait again: the connection is sent away
// (GOAWAY ENHANCE_YOUR_CALM) and closed.
func (st *stream) windowTimeout() {
	c := st.c
	c.lockW()
	w := st.wait // set before the timer was created
	if st.reset || c.werr != nil || w.since.IsZero() {
		w.armed = false
		c.unlockW()
		return
	}
	now := time.Now()
	if left := c.writeTimeout - now.Sub(w.since); left > 0 {
		w.timer.Reset(left)
		c.unlockW()
		return
	}
	w.armed = false
	starved := c.sendWindow <= 0 && !c.connBlockedAt.IsZero() && now.Sub(c.connBlockedAt) >= c.writeTimeout
	c.unlockW()
	if !starved {
		st.abort(errWriteTimeout, true, http2.ErrCodeCancel)
		return
	}
	c.logf("h2: %s: connection flow-control window closed for %v, closing", c.remoteAddr, c.writeTimeout)
	c.smu.Lock() // maxStreamID changes under smu
	last := c.maxStreamID
	c.smu.Unlock()
	c.lockW()
	if c.werr == nil {
		c.wbuf = appendGoAway(c.wbuf, last, http2.ErrCodeEnhanceYourCalm)
		c.needFlush = true
	}
	c.unlockW()
	c.close(errWriteTimeout)
}

// appendHeaders HPACK-encodes a response (status, h, clen as its
// content-length when not empty, Date) or trailers and appends it as
// HEADERS and CONTINUATION frames, leaving out the keys in omit. Called with wmu held: the encoder's table must change in the order
// the frames are sent.
func (c *conn) appendHeaders(id uint32, status int, h http.Header, end, trailers bool, clen string, omit ...string) {
	c.hbuf.Reset()
	if !trailers {
		c.henc.WriteField(hpack.HeaderField{Name: ":status", Value: statusText(status)}) //nolint:errcheck // bytes.Buffer
	}
	for k, vv := range h {
		if strings.HasPrefix(k, http.TrailerPrefix) || slices.Contains(omit, k) ||
			clen != "" && k == "Content-Length" { // clen replaces it
			continue
		}
		name := httplex.Lower(k)
		switch name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			continue // connection-specific: not in HTTP/2
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue
		}
		for _, v := range vv {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue // as net/http: a value that cannot be sent is left out
			}
			if name == "te" && v != "trailers" {
				continue
			}
			c.henc.WriteField(hpack.HeaderField{Name: name, Value: v}) //nolint:errcheck // bytes.Buffer
		}
	}
	if clen != "" {
		c.henc.WriteField(hpack.HeaderField{Name: "content-length", Value: clen}) //nolint:errcheck // bytes.Buffer
	}
	if !trailers && status >= 200 {
		if _, ok := h["Date"]; !ok {
			c.henc.WriteField(hpack.HeaderField{Name: "date", Value: httpdate.String()}) //nolint:errcheck // bytes.Buffer
		}
	}
	block := c.hbuf.Bytes()
	typ := http2.FrameHeaders
	for first := true; first || len(block) > 0; first = false {
		n := min(len(block), c.peerMaxFrame)
		var flags http2.Flags
		if n == len(block) {
			flags |= http2.FlagHeadersEndHeaders // same bit as CONTINUATION's
		}
		if first && end {
			flags |= http2.FlagHeadersEndStream
		}
		c.wbuf = appendFrameHeader(c.wbuf, n, typ, flags, id)
		c.wbuf = append(c.wbuf, block[:n]...)
		block = block[n:]
		typ = http2.FrameContinuation
	}
}

func (c *conn) appendSettings() {
	settings := []http2.Setting{
		{ID: http2.SettingMaxConcurrentStreams, Val: uint32(c.maxStreams)},
		{ID: http2.SettingInitialWindowSize, Val: streamWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: c.srv.maxHeaderBytes()},
	}
	c.wbuf = appendFrameHeader(c.wbuf, 6*len(settings), http2.FrameSettings, 0, 0)
	for _, s := range settings {
		c.wbuf = append(c.wbuf, byte(s.ID>>8), byte(s.ID), byte(s.Val>>24), byte(s.Val>>16), byte(s.Val>>8), byte(s.Val))
	}
}

func appendFrameHeader(b []byte, length int, typ http2.FrameType, flags http2.Flags, stream uint32) []byte {
	return append(b, byte(length>>16), byte(length>>8), byte(length), byte(typ), byte(flags),
		byte(stream>>24)&0x7f, byte(stream>>16), byte(stream>>8), byte(stream))
}

func appendUint32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

func appendWindowUpdate(b []byte, stream, inc uint32) []byte {
	b = appendFrameHeader(b, 4, http2.FrameWindowUpdate, 0, stream)
	return appendUint32(b, inc&0x7fffffff)
}

func appendRSTStream(b []byte, stream uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 4, http2.FrameRSTStream, 0, stream)
	return appendUint32(b, uint32(code))
}

func appendPing(b []byte, data [8]byte) []byte {
	b = appendFrameHeader(b, 8, http2.FramePing, http2.FlagPingAck, 0)
	return append(b, data[:]...)
}

func appendGoAway(b []byte, last uint32, code http2.ErrCode) []byte {
	b = appendFrameHeader(b, 8, http2.FrameGoAway, 0, 0)
	b = appendUint32(b, last&0x7fffffff)
	return appendUint32(b, uint32(code))
}

// statusTexts holds ":status" values, so that none is formatted per
// response.
var statusTexts = func() (t [1000]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusText(code int) string { return statusTexts[code] }
