package h2

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2"
)

var (
	errStreamReset = errors.New("h2: stream reset")
	errBodyLength  = errors.New("h2: request body length does not match Content-Length")
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

	// Under c.smu.
	remoteClosed bool  // END_STREAM or RST_STREAM received
	localDone    bool  // the handler returned
	recvAvail    int32 // bytes the client may still send on this stream
	unacked      int32 // bytes read by the handler, not yet granted back
	received     int64
	declared     int64 // Content-Length, -1 if none

	// Under c.wmu.
	sendWindow int32
	reset      bool // RST_STREAM sent or received: nothing more is written
}

// processHeaders opens a stream (or takes a request's trailers).
func (c *conn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if id <= c.maxStreamID {
		c.smu.Lock()
		st := c.streams[id]
		c.smu.Unlock()
		if st == nil || st.body == nil {
			// A stream we reset or ended may still get the client's
			// trailers (RFC 9113 5.1: ignored; the Framer has kept the
			// HPACK state).
			return nil
		}
		return c.processTrailers(st, f)
	}
	c.smu.Lock()
	c.maxStreamID = id
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

	if f.Truncated {
		c.writeSimpleResponse(id, http.StatusRequestHeaderFieldsTooLarge)
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
	c.streams[id] = st
	c.handlers++
	c.smu.Unlock()
	runHandler(st)
	return nil
}

// processTrailers ends a request body with its trailers.
func (c *conn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if len(f.PseudoFields()) > 0 {
		st.abort(errStreamReset, true, http2.ErrCodeProtocol)
		return nil
	}
	c.smu.Lock()
	if st.remoteClosed {
		c.smu.Unlock()
		return http2.ConnectionError(http2.ErrCodeStreamClosed)
	}
	st.remoteClosed = true
	short := st.declared >= 0 && st.received != st.declared
	c.smu.Unlock()
	if short {
		st.abort(errBodyLength, true, http2.ErrCodeProtocol)
		return nil
	}
	var tr http.Header
	for _, hf := range f.RegularFields() {
		k := canonicalKey(hf.Name)
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
	vals := make([]string, len(fields)) // one backing array for the values
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
		k := canonicalKey(hf.Name)
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
		var err error
		if u, err = url.ParseRequestURI(path); err != nil {
			return nil, http2.ErrCodeProtocol
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
	remoteOpen := !st.remoteClosed
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
// response of status code.
func (c *conn) writeSimpleResponse(id uint32, code int) {
	c.lockW()
	if c.werr == nil {
		c.appendHeaders(id, code, nil, true, false)
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

func worker(st *stream) {
	t := time.NewTimer(workerIdle)
	defer t.Stop()
	for {
		serveStream(st)
		t.Reset(workerIdle)
		select {
		case st = <-workQueue:
		case <-t.C:
			return
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
