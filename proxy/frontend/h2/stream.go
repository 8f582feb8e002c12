package h2

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

var (
	errStreamReset = errors.New("h2: stream reset")
	errBodyLength  = errors.New("h2: request body length does not match Content-Length")
	errHeaderLimit = errors.New("h2: request trailers over the header limits")
	// errWriteTimeout: a response write waited for flow-control window
	// for the write timeout.
	errWriteTimeout = errors.New("h2: response write timed out waiting for flow-control window")
)

// stream is one request and its response.
type stream struct {
	c  *conn
	id uint32

	ctx    context.Context
	cancel context.CancelFunc
	req    *http.Request
	body   *body // nil when the request has no body
	rw     responseWriter

	// Backing storage for the request, in the stream's one allocation:
	// its URL and, for up to len(vals) fields, its header values.
	url  url.URL
	vals [8]string

	// Under c.smu.
	remoteClosed bool  // END_STREAM or RST_STREAM received, or the stream reset here
	remoteEnded  bool  // END_STREAM received
	peerReset    bool  // RST_STREAM received
	sentReset    bool  // RST_STREAM sent (or about to be)
	localDone    bool  // the handler returned
	recvAvail    int32 // bytes the client may still send on this stream
	unacked      int32 // bytes read by the handler, not yet granted back
	received     int64
	declared     int64 // Content-Length, -1 if none

	// endSent: the response's END_STREAM is in the write buffer (set under
	// c.wmu, read without it). From then on the stream is closed to the
	// client once it sent END_STREAM too, before the handler's goroutine
	// gets to handlerDone.
	endSent atomic.Bool

	// Under c.wmu.
	sendWindow int32
	reset      bool // RST_STREAM sent or received: nothing more is written
	// wait is set at the response write's first wait for window (nil for
	// a stream that never waited: one pointer is all it costs).
	wait *windowWait
}

// windowWait is how a response write waits for flow-control window. Under
// c.wmu.
type windowWait struct {
	since time.Time   // when the wait began (zero: not waiting)
	timer *time.Timer // runs stream.windowTimeout
	armed bool        // timer armed
}

// streamEnd is how a stream the client opened was closed: it decides what a
// frame that still arrives on it means (RFC 9113 5.1, "closed").
type streamEnd uint8

const (
	// endUnknown: not remembered (opened before the record), or still
	// open. Frames are ignored, as after our own RST_STREAM: the record is
	// bounded, and RFC 9113 5.1 lets an endpoint limit how long it tells
	// the closed streams apart.
	endUnknown streamEnd = iota
	// endNever: the id was skipped, closed by the client's first use of a
	// higher one (RFC 9113 5.1.1).
	endNever
	// endBoth: both sides sent END_STREAM; the client may send nothing
	// more but WINDOW_UPDATE, PRIORITY or RST_STREAM.
	endBoth
	// endByPeer: the client sent RST_STREAM and may send nothing more.
	endByPeer
	// endByUs: this server sent RST_STREAM (or refused or ignored the
	// stream): frames the client sent before it saw that are ignored, DATA
	// counting against the connection window (RFC 9113 5.1, 6.4).
	endByUs
)

// streamRecord is how many of the streams the client opened last a
// connection remembers the end of: an open stream takes a slot too, so it
// exceeds DefaultMaxConcurrentStreams. 8 bytes a stream, grown as used.
const streamRecord = 512

type streamRec struct {
	id  uint32
	end streamEnd
}

// streamLog remembers the last streamRecord streams the client opened, in
// the order it opened them, which is the order of their ids (RFC 9113
// 5.1.1): a lookup is a binary search. Under c.smu.
type streamLog struct {
	recs  []streamRec // a ring once full
	head  int         // index of the oldest record once full
	floor uint32      // the highest id dropped from the ring (0: none)
}

func (l *streamLog) add(id uint32, end streamEnd) {
	if len(l.recs) < streamRecord {
		l.recs = append(l.recs, streamRec{id: id, end: end})
		return
	}
	l.floor = l.recs[l.head].id
	l.recs[l.head] = streamRec{id: id, end: end}
	l.head = (l.head + 1) % len(l.recs)
}

// find returns id's record, or nil; covered reports whether id is within
// the ids the record spans, so that a missing id was never opened.
func (l *streamLog) find(id uint32) (rec *streamRec, covered bool) {
	if id <= l.floor {
		return nil, false
	}
	n := len(l.recs)
	at := func(i int) *streamRec { return &l.recs[(l.head+i)%n] }
	i := sort.Search(n, func(i int) bool { return at(i).id >= id })
	if i < n && at(i).id == id {
		return at(i), true
	}
	return nil, true
}

// opened records id as the client's newest stream. Until the stream is
// admitted and ends otherwise it counts as reset here (refused, ignored
// after a GOAWAY, or answered without reading its body). Called with smu
// held.
func (c *conn) opened(id uint32) {
	c.maxStreamID = id
	c.closed.add(id, endByUs)
}

// closedEnd says how the stream id (at most maxStreamID, not open) was
// closed. A client's RST_STREAM is answered once (RFC 9113 5.1: STREAM_CLOSED
// for a frame after it); the stream then counts as reset here, so that
// frames still in flight after our answer are ignored. Called with smu held.
func (c *conn) closedEnd(id uint32) streamEnd {
	rec, covered := c.closed.find(id)
	if rec == nil {
		if covered {
			return endNever
		}
		return endUnknown
	}
	end := rec.end
	if end == endByPeer {
		rec.end = endByUs
	}
	return end
}

// end is how st was closed, or endUnknown while it is open (or
// half-closed). A reset decides over END_STREAMs: frames may follow our
// RST_STREAM, even one sent after both END_STREAMs. Called with smu held.
func (st *stream) end() streamEnd {
	switch {
	case st.peerReset:
		return endByPeer
	case st.sentReset:
		return endByUs
	case st.remoteEnded && st.endSent.Load():
		return endBoth
	}
	return endUnknown
}

// selfDependent reports a priority that makes stream id depend on itself
// (RFC 9113 5.3.1: a stream error of type PROTOCOL_ERROR).
func selfDependent(id uint32, p http2.PriorityParam) bool {
	return p.StreamDep == id
}

// processHeaders opens a stream (or takes a request's trailers).
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return fmt.Errorf("h2: HEADERS on even stream %d: %w", id, http2.ConnectionError(http2.ErrCodeProtocol))
	}
	if id <= c.maxStreamID {
		return c.processHeadersOld(f)
	}
	c.smu.Lock()
	c.opened(id)
	if c.goingAway || c.peerGoAway {
		c.smu.Unlock()
		return nil // after our GOAWAY: ignored, the client retries it elsewhere
	}
	if len(c.streams) >= c.maxStreams || c.handlers >= c.maxStreams {
		c.refused++
		calm := c.refused > maxRefused
		c.smu.Unlock()
		if calm {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		c.writeReset(id, http2.ErrCodeRefusedStream)
		return nil
	}
	c.smu.Unlock()

	if f.HasPriority() && selfDependent(id, f.Priority) {
		c.writeReset(id, http2.ErrCodeProtocol) // RFC 9113 5.3.1
		return nil
	}
	if f.Truncated || c.tooManyFields(f.RegularFields()) {
		// Over MaxHeaderBytes (the Framer kept none past it) or
		// MaxHeaderFields: answered without a handler (RFC 9113 10.5.1).
		c.writeSimpleResponse(id, http.StatusRequestHeaderFieldsTooLarge, !f.StreamEnded())
		return nil
	}
	st := &stream{c: c, id: id, declared: -1, recvAvail: streamWindow}
	req, code := c.newRequest(st, f)
	if req == nil {
		c.writeReset(id, code)
		return nil
	}
	st.req = req
	st.rw = responseWriter{st: st, header: make(http.Header), length: -1, head: req.Method == http.MethodHead}
	st.sendWindow = c.peerInitWindow // the read loop alone changes it

	c.smu.Lock()
	st.remoteClosed = f.StreamEnded()
	st.remoteEnded = st.remoteClosed
	c.streams[id] = st
	c.handlers++
	c.running.Add(1)
	c.smu.Unlock()
	runHandler(st)
	if c.srv.draining.Load() {
		c.goAway(http2.ErrCodeNo) // Server.Drain: this stream is the last
	}
	return nil
}

// tooManyFields reports a header list over maxFields. Cookie crumbs (RFC
// 9113 8.2.3) count as one field, the Cookie field they are joined into.
func (c *conn) tooManyFields(fields []hpack.HeaderField) bool {
	if len(fields) <= c.maxFields {
		return false
	}
	n, cookie := 0, false
	for _, hf := range fields {
		if hf.Name == "cookie" {
			if cookie {
				continue
			}
			cookie = true
		}
		n++
	}
	return n > c.maxFields
}

// processHeadersOld answers a HEADERS frame on a stream the client opened
// before: a request's trailers, or a frame on a stream that can take no
// more (RFC 9113 5.1). The Framer has decoded the block either way, so the
// HPACK state stays in step.
func (c *conn) processHeadersOld(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	c.smu.Lock()
	st := c.streams[id]
	var end streamEnd
	if st == nil {
		end = c.closedEnd(id)
	} else {
		// Both END_STREAMs sent: closed, though its handler has not
		// returned yet.
		end = st.end()
	}
	halfClosed := st != nil && (st.remoteClosed || st.body == nil)
	c.smu.Unlock()
	if st != nil && end != endBoth {
		switch {
		case halfClosed:
			// RFC 9113 5.1, half-closed (remote): a stream error of type
			// STREAM_CLOSED. When the stream was being reset here
			// meanwhile, abort sends nothing more.
			st.abort(errStreamReset, true, http2.ErrCodeStreamClosed)
			return nil
		case f.HasPriority() && selfDependent(id, f.Priority):
			st.abort(errStreamReset, true, http2.ErrCodeProtocol) // RFC 9113 5.3.1
			return nil
		}
		return c.processTrailers(st, f)
	}
	switch end {
	case endNever:
		// RFC 9113 5.1.1: a new stream's id must exceed every id the
		// client used before.
		return fmt.Errorf("h2: HEADERS on stream %d below the client's last %d: %w", id, c.maxStreamID, http2.ConnectionError(http2.ErrCodeProtocol))
	case endBoth:
		// RFC 9113 5.1, closed: after both END_STREAMs nothing but
		// PRIORITY, WINDOW_UPDATE or RST_STREAM may arrive.
		return fmt.Errorf("h2: HEADERS on closed stream %d: %w", id, http2.ConnectionError(http2.ErrCodeStreamClosed))
	case endByPeer:
		// RFC 9113 5.1, closed: a frame after the client's RST_STREAM is
		// a stream error of type STREAM_CLOSED.
		c.writeReset(id, http2.ErrCodeStreamClosed)
	}
	// Reset here (or not remembered): the client may have sent the frame,
	// trailers say, before it saw our RST_STREAM; ignored (RFC 9113 5.1).
	return nil
}

// processTrailers ends a request body with its trailers.
func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		return fmt.Errorf("h2: trailers without END_STREAM on stream %d: %w", st.id, http2.ConnectionError(http2.ErrCodeProtocol))
	}
	if len(f.PseudoFields()) > 0 {
		st.abort(errStreamReset, true, http2.ErrCodeProtocol)
		return nil
	}
	if f.Truncated || c.tooManyFields(f.RegularFields()) {
		// Trailers over the header limits: the request cannot be
		// answered 431 any more (its handler runs); the stream is
		// abandoned.
		st.abort(errHeaderLimit, true, http2.ErrCodeCancel)
		return nil
	}
	c.smu.Lock()
	if st.remoteClosed {
		// Reset here since processHeadersOld looked (a handler's panic,
		// or its end with the body unread): ignored (RFC 9113 5.1).
		c.smu.Unlock()
		return nil
	}
	st.remoteClosed = true
	st.remoteEnded = true
	short := st.declared >= 0 && st.received != st.declared
	c.smu.Unlock()
	if short {
		st.abort(errBodyLength, true, http2.ErrCodeProtocol)
		return nil
	}
	var tr http.Header
	for _, hf := range f.RegularFields() {
		k := httplex.Canonical(hf.Name)
		if !httpguts.ValidTrailerHeader(k) {
			continue
		}
		if tr == nil {
			tr = make(http.Header)
		}
		tr[k] = append(tr[k], hf.Value)
	}
	st.body.closeWithError(io.EOF, tr)
	c.maybeForget(st)
	return nil
}

// newRequest builds the handler's request, validated as RFC 9113 8.3 and
// net/http's server require. A nil request comes with the RST_STREAM code.
func (c *conn) newRequest(st *stream, f *http2.MetaHeadersFrame) (*http.Request, http2.ErrCode) {
	var method, path, scheme, authority string
	for _, hf := range f.PseudoFields() {
		switch hf.Name {
		case ":method":
			method = hf.Value
		case ":path":
			path = hf.Value
		case ":scheme":
			scheme = hf.Value
		case ":authority":
			authority = hf.Value
		default: // :status in a request, or :protocol we did not enable
			return nil, http2.ErrCodeProtocol
		}
	}
	isConnect := method == http.MethodConnect
	if isConnect {
		if path != "" || scheme != "" || authority == "" {
			return nil, http2.ErrCodeProtocol
		}
	} else if method == "" || path == "" || scheme == "" {
		return nil, http2.ErrCodeProtocol
	}
	if !httpguts.ValidHeaderFieldName(method) { // a method is a token
		return nil, http2.ErrCodeProtocol
	}

	fields := f.RegularFields()
	header := make(http.Header, len(fields))
	vals := st.vals[:] // one backing array for the values
	if len(fields) > len(vals) {
		vals = make([]string, len(fields))
	}
	var cookies []string
	for i, hf := range fields {
		switch hf.Name {
		case "connection", "proxy-connection", "keep-alive", "transfer-encoding", "upgrade":
			return nil, http2.ErrCodeProtocol // RFC 9113 8.2.2
		case "te":
			if hf.Value != "trailers" {
				return nil, http2.ErrCodeProtocol
			}
		case "cookie":
			cookies = append(cookies, hf.Value)
			continue
		}
		k := httplex.Canonical(hf.Name)
		if vv := header[k]; vv != nil {
			header[k] = append(vv, hf.Value)
			continue
		}
		vals[i] = hf.Value
		header[k] = vals[i : i+1 : i+1]
	}
	if len(cookies) > 0 {
		// RFC 9113 8.2.3: split cookie crumbs are joined for HTTP/1.1.
		header["Cookie"] = []string{strings.Join(cookies, "; ")}
	}
	if authority == "" {
		authority = header.Get("Host")
	}
	delete(header, "Host")
	if authority != "" && !httpguts.ValidHostHeader(authority) {
		return nil, http2.ErrCodeProtocol
	}

	var u *url.URL
	requestURI := path
	switch {
	case isConnect:
		u = &url.URL{Host: authority}
		requestURI = authority
	case path == "*":
		if method != http.MethodOptions {
			return nil, http2.ErrCodeProtocol
		}
		u = &url.URL{Path: "*"}
	default:
		u = &st.url
		if !parsePlainPath(path, u) {
			pu, err := url.ParseRequestURI(path)
			if err != nil {
				return nil, http2.ErrCodeProtocol
			}
			*u = *pu
		}
	}

	bodyOpen := !f.StreamEnded()
	var contentLength int64
	if vv := header["Content-Length"]; len(vv) > 0 {
		n, err := strconv.ParseUint(vv[0], 10, 63)
		if err != nil {
			return nil, http2.ErrCodeProtocol
		}
		for _, v := range vv[1:] {
			if v != vv[0] {
				return nil, http2.ErrCodeProtocol
			}
		}
		contentLength = int64(n)
		if !bodyOpen && contentLength != 0 {
			return nil, http2.ErrCodeProtocol
		}
		st.declared = contentLength
	} else if bodyOpen {
		contentLength = -1
	}

	st.ctx, st.cancel = context.WithCancel(c.ctx)
	req := &http.Request{
		Method:        method,
		URL:           u,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        header,
		ContentLength: contentLength,
		Host:          authority,
		RemoteAddr:    c.remoteAddr,
		RequestURI:    requestURI,
		TLS:           c.tlsState,
		Body:          http.NoBody,
	}
	if bodyOpen {
		st.body = newBody(st, header["Expect"])
		req.Body = st.body
		if vv := header["Trailer"]; len(vv) > 0 {
			req.Trailer = make(http.Header)
			for _, v := range vv {
				for _, k := range strings.Split(v, ",") {
					k = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(k))
					if k != "" && httpguts.ValidTrailerHeader(k) {
						req.Trailer[k] = nil
					}
				}
			}
			st.body.trailer = req.Trailer
		}
	}
	return req.WithContext(st.ctx), 0
}

// abort ends st early: its context is canceled and its body reader and
// writer fail with err. With send, an RST_STREAM with code (or CANCEL) goes
// to the client.
func (st *stream) abort(err error, send bool, code ...http2.ErrCode) {
	c := st.c
	if send {
		// Marked first: a handler ending meanwhile must not take the
		// stream for ended normally (see stream.end).
		c.smu.Lock()
		st.sentReset = true
		c.smu.Unlock()
	}
	// The stream is marked reset (and the RST_STREAM queued) before the
	// handler is woken: a handler that sees its body fail or its context
	// end must not get a response out ahead of the reset.
	c.lockW()
	already := st.reset
	st.reset = true
	if send && !already && c.werr == nil {
		rc := http2.ErrCodeCancel
		if len(code) > 0 {
			rc = code[0]
		}
		c.wbuf = appendRSTStream(c.wbuf, st.id, rc)
		c.needFlush = true
	}
	c.wcond.Broadcast()
	c.unlockW()
	if st.cancel != nil {
		st.cancel()
	}
	if st.body != nil {
		st.body.closeWithError(err, nil)
	}
	c.smu.Lock()
	st.remoteClosed = true
	c.smu.Unlock()
	c.forget(st)
}

// maybeForget drops st from the open streams once both sides ended.
func (c *conn) maybeForget(st *stream) {
	c.smu.Lock()
	done := st.remoteClosed && st.localDone
	c.smu.Unlock()
	if done {
		c.forget(st)
	}
}

func (c *conn) forget(st *stream) {
	c.smu.Lock()
	if c.streams[st.id] == st {
		delete(c.streams, st.id)
		if rec, _ := c.closed.find(st.id); rec != nil {
			rec.end = st.end()
			if rec.end == endUnknown {
				rec.end = endByUs // the connection is closing
			}
		}
		if len(c.streams) == 0 {
			c.lastIdle = time.Now()
		}
	}
	// Body bytes nobody will read give their connection window back.
	if st.body != nil {
		c.connUnacked += st.body.drop()
	}
	c.smu.Unlock()
}

// handlerDone is called when st's handler returned.
func (c *conn) handlerDone(st *stream) {
	c.smu.Lock()
	st.localDone = true
	c.handlers--
	c.running.Add(-1)
	remoteOpen := !st.remoteClosed
	if remoteOpen {
		st.sentReset = true // below, unless it was reset already
	}
	left := c.handlers
	closeNow := (c.goingAway || c.peerGoAway) && left == 0
	c.smu.Unlock()
	if remoteOpen {
		// The response is complete: the rest of the request body is not
		// needed (RFC 9113 8.1).
		c.lockW()
		if !st.reset && c.werr == nil {
			st.reset = true
			c.wbuf = appendRSTStream(c.wbuf, st.id, http2.ErrCodeNo)
			c.needFlush = true
		}
		c.unlockW()
		c.smu.Lock()
		st.remoteClosed = true
		c.smu.Unlock()
	}
	if st.wait != nil {
		st.wait.timer.Stop() // set by this goroutine, which writes no more
	}
	c.forget(st)
	c.grant(nil, 0)
	st.cancel()
	if closeNow {
		c.lockW()
		c.flushLocked()
		c.wmu.Unlock()
		c.tc.Close()
	}
}

// writeReset sends an RST_STREAM for a stream that never started.
func (c *conn) writeReset(id uint32, code http2.ErrCode) {
	c.lockW()
	if c.werr == nil {
		c.wbuf = appendRSTStream(c.wbuf, id, code)
		c.needFlush = true
	}
	c.unlockW()
}

// writeSimpleResponse answers a stream that never started with an empty
// response of status code; with reset, the request body the client is
// still sending is declined (RST_STREAM NO_ERROR, RFC 9113 8.1).
func (c *conn) writeSimpleResponse(id uint32, code int, reset bool) {
	c.lockW()
	if c.werr == nil {
		c.appendHeaders(id, code, nil, true, false, "")
		if reset {
			c.wbuf = appendRSTStream(c.wbuf, id, http2.ErrCodeNo)
		}
		c.needFlush = true
	}
	c.unlockW()
}

// workQueue hands streams to idle handler goroutines: a goroutine whose
// stack grew serving one request serves the next with it (net/http starts a
// new goroutine, and grows its stack, per request).
var workQueue = make(chan *stream)

// workerIdle is how long a handler goroutine waits for the next stream.
const workerIdle = 10 * time.Second

func runHandler(st *stream) {
	select {
	case workQueue <- st:
	default:
		go worker(st)
	}
}

// worker serves st and then the streams handed to it, until none came
// for workerIdle. Its timer is armed once and, when it fires, re-armed for
// what is left of workerIdle since the last stream ended, instead of being
// reset after every stream (a reset takes the timer heap's lock).
func worker(st *stream) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for st != nil {
		serveStream(st)
		st = nextStream(t, time.Now())
	}
}

// nextStream waits for a stream to serve; nil once none came for
// workerIdle since idleSince.
func nextStream(t *time.Timer, idleSince time.Time) *stream {
	for {
		select {
		case st := <-workQueue:
			return st
		case <-t.C:
			rest := workerIdle - time.Since(idleSince)
			if rest <= 0 {
				return nil
			}
			t.Reset(rest)
		}
	}
}

func serveStream(st *stream) {
	c := st.c
	defer c.handlerDone(st)
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				c.logf("h2: panic serving %s: %v", c.remoteAddr, v)
			}
			st.abort(errStreamReset, true, http2.ErrCodeInternal)
		}
	}()
	c.handler.ServeHTTP(&st.rw, st.req)
	st.rw.finish()
}

// parsePlainPath sets u as url.ParseRequestURI would for the common path:
// an absolute path of characters that need no escaping, with an optional
// non-empty query of visible ASCII. It reports false for anything else,
// which the caller leaves to url.ParseRequestURI.
func parsePlainPath(path string, u *url.URL) bool {
	if len(path) == 0 || path[0] != '/' {
		return false
	}
	q := len(path)
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '?' {
			q = i
			break
		}
		if !plainPathByte(c) {
			return false
		}
	}
	var query string
	if q < len(path) {
		query = path[q+1:]
		if query == "" {
			return false // "/p?" sets ForceQuery
		}
		for i := 0; i < len(query); i++ {
			if c := query[i]; c <= ' ' || c >= 0x7f {
				return false
			}
		}
	}
	*u = url.URL{Path: path[:q], RawQuery: query}
	return true
}

// plainPathByte reports a path byte that url.URL keeps as is: unreserved
// characters and the delimiters its path escaping leaves alone.
func plainPathByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '_', '.', '~', '$', '&', '+', ',', '/', ':', ';', '=', '@':
		return true
	}
	return false
}
