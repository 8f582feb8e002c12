package ajp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// exchange is one request/response cycle on one connection.
type exchange struct {
	t       *Transport
	req     *http.Request
	rb      reqBody
	pkt     []byte // Forward Request, plus the first body packet if any
	fwdSize int    // size of the Forward Request packet alone

	intr      *interrupt.Interrupt // nil but for RoundTripInterruptible
	pc        *persistConn
	stop      func() bool // stops the context watch; false if it fired
	first     bool        // first request on pc
	gotPacket bool        // a packet of the response has arrived
	status    int

	rht          time.Duration // the response header timeout: the upstream's, or the route's
	routeTimeout bool          // rht is the route's timeout
}

// run sends the request, retrying once on a new connection when a pooled
// one turns out to be dead (see RoundTrip), and returns the response.
func (ex *exchange) run() (*http.Response, error) {
	ctx := ex.req.Context()
	retried, packed := false, false
	bodyAt := -1 // where the first body packet's data starts in ex.pkt
	for {
		pc, reused, err := ex.t.getConn(ctx)
		if err != nil {
			// Nothing was sent. Nothing was read from the body either,
			// unless a first try on a pooled connection packed its first
			// packet and failed before writing a byte: those bytes go
			// back to the caller with the error, so that it can send the
			// request to another address with the whole body (a Tomcat
			// restarting closes its pooled connections, then refuses
			// CPING on the new one).
			if e := (*Error)(nil); bodyAt >= 0 && errors.As(err, &e) {
				e.Unsent = slices.Clone(ex.pkt[bodyAt:])
			}
			ex.rb.close()
			return nil, err
		}
		if !packed && ex.rb.length > 0 {
			packed = true
			bodyAt = len(ex.pkt) + 6 // after the packet header and the data length
			// With a known length, the first body packet follows the
			// Forward Request unasked. It is read only now that there is
			// a connection that answered CPING, so a failed connect leaves
			// the body untouched. It is sized for the default packet size,
			// which every Tomcat accepts (packetSize cannot be below 8192).
			ex.pkt, err = ex.rb.appendPacket(ex.pkt, DefaultPacketSize-bodyOverhead)
			if err != nil {
				pc.close()
				ex.rb.close()
				e := newError(KindRequestBody, err, "reading the request body")
				ex.t.report(e.Kind)
				return nil, e
			}
		}
		resp, e, retry := ex.try(pc, reused)
		if e == nil {
			return resp, nil
		}
		if retry && errors.Is(e, errStale) {
			continue // nothing was sent: the next pooled connection, or a new one
		}
		if retry && !retried && e.Kind != KindCanceled {
			retried = true
			continue
		}
		ex.rb.close()
		ex.t.report(e.Kind)
		return nil, e
	}
}

// try runs the exchange on pc up to the response headers. On error pc is
// closed and retry says whether the request may go again on another
// connection.
func (ex *exchange) try(pc *persistConn, reused bool) (resp *http.Response, err *Error, retry bool) {
	ex.pc = pc
	pc.SetOwner(ex)
	pc.uses++
	ex.first = pc.uses == 1
	ex.gotPacket = false
	ex.stop = backendconn.Watch(ex.req.Context(), pc.interruptFn)
	if ex.intr != nil {
		ex.intr.Attach(pc)
	}

	// The response header clock starts before the write: sendAwait waits
	// for the answer under the read deadline.
	rht := ex.rht
	if !pc.SetReadDeadline(time.Now().Add(rht)) {
		return nil, ex.fail(net.ErrClosed, false), false
	}
	if n, werr := pc.sendAwait(ex.pkt); werr != nil {
		// Nothing written on a reused connection: always safe to resend.
		return nil, ex.fail(werr, false), reused && n == 0 && !ex.rb.readMore
	}
	for {
		p, rerr := pc.fr.ReadPacket()
		if rerr != nil {
			// A pooled connection the backend closed while idle: EOF or
			// reset before any answer. (net/http's errServerClosedIdle.)
			retry := reused && !ex.gotPacket && !ex.rb.readMore && replayable(ex.req) &&
				(errors.Is(rerr, io.EOF) || errors.Is(rerr, syscall.ECONNRESET))
			return nil, ex.fail(rerr, false), retry
		}
		ex.gotPacket = true
		switch p := p.(type) {
		case *GetBodyChunkPacket:
			if err := ex.sendBody(p.Length); err != nil {
				return nil, err, false
			}
			if !pc.SetReadDeadline(time.Now().Add(rht)) {
				return nil, ex.fail(net.ErrClosed, false), false
			}
		case *SendHeadersPacket:
			resp, err := ex.response(p)
			if err == nil && ex.rejectionKind() != "" {
				resp, err = ex.readAhead(resp)
			}
			return resp, err, false
		default:
			return nil, ex.fail(fmt.Errorf("%w: %v before SEND_HEADERS", ErrProtocol, p.Type()), false), false
		}
	}
}

// replayable reports whether a request may be sent twice: net/http's rule
// (idempotent method, or an idempotency key). The body is not a concern:
// only its first packet can have been read, and that is kept.
func replayable(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := req.Header["Idempotency-Key"]
	_, b := req.Header["X-Idempotency-Key"]
	return a || b
}

// response builds the http.Response for SEND_HEADERS.
func (ex *exchange) response(p *SendHeadersPacket) (*http.Response, *Error) {
	if p.Status < 200 {
		return nil, ex.fail(fmt.Errorf("%w: status %d over AJP", ErrProtocol, p.Status), false)
	}
	if !ex.pc.SetReadDeadline(time.Time{}) {
		return nil, ex.fail(net.ErrClosed, false)
	}
	ex.status = p.Status
	noBody := ex.req.Method == http.MethodHead || p.Status == http.StatusNoContent ||
		p.Status == http.StatusNotModified
	resp := &http.Response{
		Status:        StatusLine(p.Status, p.Reason),
		StatusCode:    p.Status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        p.Header,
		ContentLength: -1,
		Request:       ex.req,
		Body:          &body{ex: ex, noBody: noBody},
	}
	if v := p.Header["Content-Length"]; len(v) > 0 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n >= 0 {
			resp.ContentLength = n
		} else {
			delete(p.Header, "Content-Length")
		}
	}
	if p.Status == http.StatusNoContent || p.Status == http.StatusNotModified {
		resp.ContentLength = 0
	}
	return resp, nil
}

// sendBody answers GET_BODY_CHUNK with up to n bytes of the request body,
// or with the empty packet once the body has ended.
func (ex *exchange) sendBody(n int) *Error {
	pc := ex.pc
	if limit := pc.fr.maxSize - bodyOverhead; n <= 0 || n > limit {
		n = limit
	}
	ex.rb.readMore = true
	b, err := ex.rb.appendPacket(pc.wbuf[:0], n)
	if err != nil {
		ex.abort()
		return newError(KindRequestBody, err, "reading the request body")
	}
	pc.wbuf = b
	// A body packet written means Tomcat is reading: restart the clock.
	if !ex.gotHeaders() && !pc.SetReadDeadline(time.Now().Add(ex.rht)) {
		return ex.fail(net.ErrClosed, false)
	}
	if _, err := pc.conn.Write(b); err != nil {
		return ex.fail(err, ex.gotHeaders())
	}
	return nil
}

func (ex *exchange) gotHeaders() bool { return ex.status != 0 }

// fail closes the connection and turns err into an *Error. It leaves the
// request body open, for a retry; whoever gives up closes it. It does not
// report: the caller reports the final error once.
func (ex *exchange) fail(err error, inBody bool) *Error {
	ex.closeConn()
	return ex.classify(err, inBody)
}

// closeConn drops the connection: not giving it back.
func (ex *exchange) closeConn() {
	ex.stopWatch()
	ex.pc.close()
}

// stopWatch ends the context watch and detaches the Interrupt; it reports
// false if either fired (pc is then broken).
func (ex *exchange) stopWatch() bool {
	ok := ex.stop()
	if ex.intr != nil && !ex.intr.Detach() {
		ok = false
	}
	return ok
}

// ended returns the error of a request whose context ended or whose
// Interrupt fired, and nil for one that goes on.
func (ex *exchange) ended() *Error {
	ctx := ex.req.Context()
	if ctx.Err() != nil {
		return canceledError(ctx)
	}
	if ex.intr != nil {
		if cause := ex.intr.Cause(); cause != nil {
			return newError(KindCanceled, cause, "request interrupted")
		}
	}
	return nil
}

// abort ends the exchange for good: connection and request body.
func (ex *exchange) abort() {
	ex.closeConn()
	ex.rb.close()
}

func (ex *exchange) classify(err error, inBody bool) *Error {
	if e := ex.ended(); e != nil {
		return e
	}
	var se *sizeError
	if errors.As(err, &se) {
		return newError(KindPacketSize, err,
			"Tomcat sent a %d-byte packet but ajp.packet_size is %d: set ajp.packet_size to the "+
				"packetSize of Tomcat's AJP Connector", se.size, se.max)
	}
	if errors.Is(err, ErrProtocol) || errors.Is(err, ErrBadMagic) {
		return newError(KindProtocol, err, "malformed response from Tomcat")
	}
	var ne net.Error
	if !inBody && errors.As(err, &ne) && ne.Timeout() {
		if ex.routeTimeout {
			return newError(KindTimeout, err, "no response headers from Tomcat within %v (the route's timeout)", ex.rht)
		}
		return newError(KindTimeout, err, "no response headers from Tomcat within %v (the upstream's response_header_timeout)", ex.rht)
	}
	if !inBody && !ex.gotPacket && ex.fwdSize > DefaultPacketSize && isConnGone(err) {
		return newError(KindPacketSize, err,
			"Tomcat closed the connection after a %d-byte Forward Request: its packetSize is probably "+
				"smaller than ajp.packet_size (%d); set both to the same value", ex.fwdSize, ex.t.o.PacketSize)
	}
	if inBody {
		return newError(KindReset, err, "Tomcat closed or reset the connection in the middle of the response body")
	}
	return newError(KindReset, err, "Tomcat closed or reset the connection before sending response headers")
}

// finish ends the exchange at END_RESPONSE.
func (ex *exchange) finish(reuse bool) {
	stopped := ex.stopWatch()
	ex.rb.close()
	fit := ex.pc.Release() // not interrupted meanwhile
	if reuse && stopped && fit {
		ex.t.putIdle(ex.pc)
	} else {
		ex.pc.close()
	}
}

// maxReadAhead bounds what readAhead buffers. Tomcat's own error page is
// about 700 bytes; a longer body is the application's.
const maxReadAhead = 16 << 10

// rejectionKind reports whether the response whose headers just arrived
// may be Tomcat refusing the request rather than the application
// answering, and as what: KindSecret for a 403 to the first request of a
// connection (Tomcat checks the secret on every request, so a 403 on a
// connection that already served one is not about the secret), and
// KindPacketSize for a 400 or 500 after a Forward Request larger than any
// Tomcat accepts. "" otherwise: the response streams as it comes.
func (ex *exchange) rejectionKind() string {
	switch {
	case ex.status == http.StatusForbidden && ex.first:
		return KindSecret
	case (ex.status == http.StatusBadRequest || ex.status == http.StatusInternalServerError) &&
		ex.fwdSize > DefaultPacketSize:
		return KindPacketSize
	}
	return ""
}

// readAhead reads the body of a response that may be a refusal (see
// rejectionKind), up to maxReadAhead bytes, looking for its END_RESPONSE:
// Tomcat signals a refusal only by the status and reuse=0, and nothing in
// the response says why. A refusal becomes an *Error instead of the
// response, so that the client gets a 502 rather than Tomcat's error page.
// Anything else (reuse=1, or a body over the bound) is the application's
// answer: resp is returned with the bytes read so far ahead of the rest
// of the stream. A failure before END_RESPONSE is returned as the error,
// since nothing has reached the client yet.
func (ex *exchange) readAhead(resp *http.Response) (*http.Response, *Error) {
	kind := ex.rejectionKind()
	b := resp.Body.(*body)
	var buf []byte
	for len(buf) <= maxReadAhead {
		p, err := ex.pc.fr.ReadPacket()
		if err != nil {
			if kind == KindPacketSize && isConnGone(err) && ex.ended() == nil {
				ex.closeConn()
				return nil, ex.packetSizeRefused(err)
			}
			return nil, ex.fail(err, true)
		}
		switch p := p.(type) {
		case *BodyChunkPacket:
			if !b.noBody {
				buf = append(buf, p.Data...)
			}
		case *GetBodyChunkPacket:
			if e := ex.sendBody(p.Length); e != nil {
				return nil, e
			}
		case *EndResponsePacket:
			ex.finish(p.Reuse)
			if !p.Reuse {
				if kind == KindSecret {
					return nil, ex.secretRefused()
				}
				return nil, ex.packetSizeRefused(nil)
			}
			b.cur, b.err = buf, io.EOF
			return resp, nil
		default:
			return nil, ex.fail(fmt.Errorf("%w: %v in a response body", ErrProtocol, p.Type()), true)
		}
	}
	b.cur = buf
	return resp, nil
}

func (ex *exchange) secretRefused() *Error {
	state := "wrong"
	if ex.t.o.Secret == "" {
		state = "missing (ajp.secret is empty)"
	}
	return newError(KindSecret, nil,
		"Tomcat refused the request with 403 and closed the connection: the AJP secret is probably %s; "+
			"set ajp.secret to the secret of Tomcat's AJP Connector (or Tomcat refused a request attribute: "+
			"see its allowedRequestAttributesPattern and its log)", state)
}

// packetSizeRefused: err is the read error if Tomcat closed the
// connection before END_RESPONSE, nil if it sent one with reuse=0.
func (ex *exchange) packetSizeRefused(err error) *Error {
	return newError(KindPacketSize, err,
		"Tomcat answered %d and closed the connection after a %d-byte Forward Request: its packetSize "+
			"is probably smaller than ajp.packet_size (%d); set both to the same value",
		ex.status, ex.fwdSize, ex.t.o.PacketSize)
}

// reqBody feeds the request body to the backend one packet at a time.
type reqBody struct {
	r         io.ReadCloser
	length    int64 // as announced: 0 none, -1 unknown, >0 Content-Length
	remaining int64 // bytes not yet sent when length > 0
	eof       bool  // the body has ended
	readMore  bool  // read beyond the first packet: the request cannot be replayed
	closeOnce sync.Once
}

func (rb *reqBody) init(req *http.Request) {
	rb.r = req.Body
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		rb.eof = true
	case req.ContentLength > 0:
		rb.length, rb.remaining = req.ContentLength, req.ContentLength
	default:
		// For outgoing requests ContentLength 0 with a non-nil Body means
		// "unknown" (net/http.Request doc). Tomcat then reads until the
		// empty packet; no content-length header is sent.
		rb.length, rb.remaining = -1, -1
	}
}

func (rb *reqBody) close() {
	rb.closeOnce.Do(func() {
		if rb.r != nil {
			rb.r.Close()
		}
	})
}

// appendPacket appends a body packet with up to n bytes, read straight
// into dst, or the empty packet if the body has ended.
func (rb *reqBody) appendPacket(dst []byte, n int) ([]byte, error) {
	if rb.eof || rb.remaining == 0 {
		return AppendBodyPacket(dst, nil), nil
	}
	if rb.remaining > 0 && int64(n) > rb.remaining {
		n = int(rb.remaining)
	}
	b, off := startPacket(dst)
	b = appendU16(b, 0) // data length, filled in below
	ds := len(b)
	b = slices.Grow(b, n)[:ds+n]
	var got int
	var err error
	if rb.remaining > 0 {
		got, err = io.ReadFull(rb.r, b[ds:])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return dst, fmt.Errorf("request body ended %d bytes before its Content-Length", rb.remaining-int64(got))
		}
		if err != nil {
			return dst, err
		}
		rb.remaining -= int64(got)
	} else {
		for i := 0; got == 0 && err == nil; i++ {
			if i == 100 {
				return dst, io.ErrNoProgress
			}
			got, err = rb.r.Read(b[ds:])
		}
		if err == io.EOF {
			rb.eof, err = true, nil
		}
		if err != nil {
			return dst, err
		}
		if got == 0 {
			return AppendBodyPacket(dst, nil), nil
		}
	}
	b = b[:ds+got]
	binary.BigEndian.PutUint16(b[ds-2:], uint16(got))
	return endPacket(b, off), nil
}

// body is the response body: it reads SEND_BODY_CHUNK packets as the
// caller reads, answers GET_BODY_CHUNK on the way, and ends at
// END_RESPONSE, which returns the connection to the pool if allowed.
type body struct {
	ex     *exchange
	noBody bool // HEAD, 204, 304: chunks, if any, are dropped

	mu     sync.Mutex // serializes Read and the end of Close
	closed atomic.Bool
	cur    []byte // unread part of the current chunk (aliases the read buffer)
	err    error  // sticky; io.EOF after END_RESPONSE
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	for len(b.cur) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		if len(p) == 0 {
			return 0, nil
		}
		b.next()
	}
	n := copy(p, b.cur)
	b.cur = b.cur[n:]
	return n, nil
}

// next reads one packet; it sets b.cur or b.err.
func (b *body) next() {
	ex := b.ex
	p, err := ex.pc.fr.ReadPacket()
	if err != nil {
		b.fail(err)
		return
	}
	switch p := p.(type) {
	case *BodyChunkPacket:
		if !b.noBody {
			b.cur = p.Data // empty: a flush; nothing to do
		}
	case *GetBodyChunkPacket:
		if e := ex.sendBody(p.Length); e != nil {
			b.setErr(e)
		}
	case *EndResponsePacket:
		ex.finish(p.Reuse)
		b.err = io.EOF
	default:
		b.fail(fmt.Errorf("%w: %v in a response body", ErrProtocol, p.Type()))
	}
}

func (b *body) fail(err error) {
	if b.closed.Load() { // Close interrupted the read
		b.ex.abort()
		b.err = errBodyClosed
		return
	}
	b.setErr(b.ex.fail(err, true))
}

// setErr ends the exchange with e (the connection is already closed).
func (b *body) setErr(e *Error) {
	b.ex.rb.close()
	b.err = e
	b.ex.t.report(e.Kind)
}

// Close ends the response early. The connection is kept only if what is
// left of the response, up to END_RESPONSE, is already buffered; a large
// remainder is never read just to save the connection.
func (b *body) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if !b.mu.TryLock() {
		b.ex.pc.InterruptFor(b.ex) // a Read is blocked: wake it
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if b.err == nil && !b.drainBuffered() {
		b.ex.abort()
	}
	if b.err == nil {
		b.err = errBodyClosed
	}
	return nil
}

// drainBuffered consumes the rest of the response if it is entirely in the
// read buffer, without touching the socket, and reports whether it reached
// END_RESPONSE.
func (b *body) drainBuffered() bool {
	pc := b.ex.pc
	for {
		nb := pc.br.Buffered()
		if nb < headerLen {
			return false
		}
		h, _ := pc.br.Peek(headerLen)
		if nb < headerLen+int(binary.BigEndian.Uint16(h[2:])) {
			return false
		}
		p, err := pc.fr.ReadPacket()
		if err != nil {
			return false
		}
		switch p := p.(type) {
		case *BodyChunkPacket:
		case *EndResponsePacket:
			b.ex.finish(p.Reuse)
			return true
		default:
			return false
		}
	}
}
