package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// exchange is one request and its response. Its first field group is set
// by init and read-only afterwards (the body writer reads it too); the
// rest belongs to the attempt in progress. The response body is a field,
// so that a request allocates one object for both.
type exchange struct {
	t     *Transport
	req   *http.Request
	ctx   context.Context
	intr  *interrupt.Interrupt // nil but for RoundTripInterruptible
	trace *httptrace.ClientTrace

	rht          time.Duration // the response header timeout: the upstream's, or the route's
	routeTimeout bool          // rht is the route's timeout

	method     string
	host       string
	reqBody    io.ReadCloser // nil when no body is sent
	bodyLen    int64         // > 0: Content-Length; -1: chunked; 0: no body
	sendCL0    bool          // write "Content-Length: 0"
	sendClose  bool          // write "Connection: close"
	noReuse    bool          // the connection is closed after this exchange
	replayable bool          // may be sent twice, body permitting (see replayable)

	bodyClosed atomic.Bool // reqBody was closed

	pc    *persistConn
	start time.Time   // when pc was obtained
	stop  func() bool // stops the context watch of pc; nil once called
	w     *bodyWriter // the attempt's body writer; nil without a body
	resp  *http.Response
	respv http.Response // what resp points to when parseHead read the head
	body  body
}

// run sends the request, on a new connection a second time if the first
// was a pooled one found dead (see RoundTrip), and returns the response.
func (ex *exchange) run() (*http.Response, error) {
	fresh := false
	for {
		pc, reused, err := ex.t.getConn(ex, fresh)
		if err != nil {
			ex.closeReqBody()
			return nil, err
		}
		if ex.ended() {
			// The request left while the connection was got (a connect
			// race lost in GotConn, a client gone). Nothing was sent on
			// it: it is fit for the next request.
			ex.t.putIdle(pc)
			ex.closeReqBody()
			return nil, ex.endedError()
		}
		resp, err, retry := ex.try(pc, reused && !fresh)
		if err == nil {
			return resp, nil
		}
		if retry && errors.Is(err, errStale) {
			continue // nothing was sent: the next pooled connection, or a new one
		}
		if retry && !ex.ended() {
			fresh = true
			continue
		}
		if ex.abortWriter() {
			ex.closeReqBody()
		}
		return nil, err
	}
}

// try runs the exchange on pc up to the response head. On error pc is
// closed, and retry reports whether the request may go again on a new
// connection: only if pc was a pooled one (reused) and the backend can
// have nothing to act on. There is no reason a new connection should have
// been closed under the request, so a failure on one is never retried.
func (ex *exchange) try(pc *persistConn, reused bool) (resp *http.Response, err error, retry bool) {
	ex.pc, ex.w, ex.resp = pc, nil, nil
	ex.stop = backendconn.Watch(ex.ctx, pc.interruptFn)
	if ex.intr != nil {
		ex.intr.Attach(pc)
	}
	err = ex.writeHead(pc.bw)
	awaiting := false
	if err == nil {
		if ex.reqBody == nil {
			// The head clock starts before the write so that the write
			// can wait for the response in the same step (flushAwait).
			if pc.AwaitHeaders(ex.start.Add(ex.rht)) {
				awaiting = true
				err = pc.flushAwait()
			} else {
				err = pc.bw.Flush() // interrupted: fails at once
			}
		} else {
			ex.startWriter()
		}
	}
	if err != nil {
		// Writing the head failed: the backend has at most part of it,
		// and no byte of the body was read. (A head larger than the
		// buffer can fail here after a first part went out.)
		ex.abandon()
		return nil, ex.classify(err, inWrite), reused
	}
	return ex.readResponse(reused, awaiting)
}

// readResponse reads the response head, skipping 1xx responses but 101.
// awaiting reports that try already started the head's clock.
func (ex *exchange) readResponse(reused, awaiting bool) (*http.Response, error, bool) {
	pc := ex.pc
	pc.limit = maxHeaderBytes
	if !awaiting && !pc.AwaitHeaders(ex.start.Add(ex.rht)) {
		return nil, ex.fail(errInterrupted, inHead), false
	}
	if _, err := pc.br.Peek(1); err != nil {
		// Not a byte of a response. On a pooled connection, EOF or a
		// reset here is the backend having closed it while it was idle
		// (net/http's errServerClosedIdle): the request may not have
		// reached it, or it dropped it unanswered.
		gone := reused && ex.replayable && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET))
		untouched := ex.abandon()
		return nil, ex.classify(err, inHead), gone && untouched
	}
	resp, fast := ex.parseHead(pc.br)
	for n := 0; !fast; n++ {
		r, err := http.ReadResponse(pc.br, ex.req)
		if err != nil {
			return nil, ex.fail(err, inHead), false
		}
		if r.StatusCode < 100 {
			return nil, ex.fail(fmt.Errorf("malformed status %d", r.StatusCode), inHead), false
		}
		if r.StatusCode >= 200 || r.StatusCode == http.StatusSwitchingProtocols {
			resp = r
			break
		}
		if n == max1xx {
			return nil, ex.fail(errTooMany1xx, inHead), false
		}
		// Informational: httputil.ReverseProxy passes it on (103 Early
		// Hints) through this hook, as net/http's Transport calls it. Not
		// 100 Continue: the body is sent without waiting for it, and the
		// front server answers a client's Expect itself when the body is
		// first read; passing the backend's on would send the client a
		// second one, which it would take for the final response.
		if r.StatusCode == http.StatusContinue {
			if ex.trace != nil && ex.trace.Got100Continue != nil {
				ex.trace.Got100Continue()
			}
		} else if ex.trace != nil && ex.trace.Got1xxResponse != nil {
			if err := ex.trace.Got1xxResponse(r.StatusCode, textproto.MIMEHeader(r.Header)); err != nil {
				return nil, ex.fail(err, inHead), false
			}
		}
	}
	pc.limit = -1
	if !pc.GotHeaders(ex) {
		return nil, ex.fail(errInterrupted, inHead), false
	}
	ex.resp = resp
	if resp.StatusCode == http.StatusSwitchingProtocols {
		return ex.switchProtocols(resp)
	}
	if resp.Body == http.NoBody {
		// HEAD, 204, 304, Content-Length: 0: the exchange is over.
		ex.finish(true)
		return resp, nil, false
	}
	ex.body.ex = ex
	if !fast {
		ex.body.rc = resp.Body
		resp.Body = &ex.body
	}
	return resp, nil, false
}

// switchProtocols hands the connection over to a 101 response's body:
// reads come from the connection's read buffer (which may hold the first
// bytes of the new protocol already), writes go to the connection. It is
// never pooled again.
func (ex *exchange) switchProtocols(resp *http.Response) (*http.Response, error, bool) {
	if w := ex.w; w != nil {
		if ex.abortWriter() {
			ex.closeReqBody() // never sent; the backend switched without it
		} else {
			// The writer must be done with the connection before the
			// caller writes to it. An upgrade request rarely has a body.
			<-w.done
			if w.err != nil {
				return nil, ex.fail(w.err, inHead), false
			}
		}
	}
	if !ex.stopWatch() {
		ex.pc.close()
		return nil, ex.endedError(), false
	}
	resp.Body = &switchedConn{pc: ex.pc}
	return resp, nil, false
}

// stopWatch stops the context watch; false if it fired (pc is then
// broken) or was stopped before.
func (ex *exchange) stopWatch() bool {
	stop := ex.stop
	if stop == nil {
		return false
	}
	ex.stop = nil
	ok := stop()
	if ex.intr != nil && !ex.intr.Detach() {
		ok = false
	}
	return ok
}

// abortWriter keeps the attempt's body writer from starting if it has not
// started yet. It reports whether the request body is untouched (no
// writer, or one that never read), in which case the caller owns it.
func (ex *exchange) abortWriter() bool {
	w := ex.w
	if w == nil {
		return true
	}
	return w.state.CompareAndSwap(writerIdle, writerAborted) || w.state.Load() == writerAborted
}

// closeReqBody closes the request body once.
func (ex *exchange) closeReqBody() {
	if ex.reqBody != nil && ex.bodyClosed.CompareAndSwap(false, true) {
		ex.reqBody.Close()
	}
}

// abandon drops the connection of a failed attempt: not giving it back.
// It reports whether the request body is untouched.
func (ex *exchange) abandon() bool {
	ex.stopWatch()
	ex.pc.close()
	return ex.abortWriter()
}

// Phases of an exchange, for classify.
type phase int

const (
	inWrite phase = iota // writing the request head
	inHead               // waiting for and reading the response head
	inBody               // reading the response body
)

// fail abandons the attempt and turns err into the error to return.
func (ex *exchange) fail(err error, ph phase) error {
	ex.abandon()
	return ex.classify(err, ph)
}

// classify names what went wrong. A request whose context ended reports
// the context's cause; a request body that failed reports that; a read
// deadline while waiting for the head is the response header timeout.
// Everything else wraps the connection's error as it is, so that
// errors.Is finds what the kernel said (syscall.ETIMEDOUT, ECONNRESET).
func (ex *exchange) classify(err error, ph phase) error {
	if ex.ended() {
		return ex.endedError()
	}
	if w := ex.w; w != nil {
		if serr := ex.pc.sourceError(w); serr != nil {
			return serr
		}
	}
	switch {
	case ph == inWrite:
		return fmt.Errorf("h1: writing the request: %w", err)
	case ph == inBody:
		return fmt.Errorf("h1: reading the response body: %w", err)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &timeoutError{d: ex.rht, route: ex.routeTimeout, err: err}
	case err == errInterrupted, err == errTooMany1xx, errors.Is(err, errHeadersTooLarge):
		return err
	}
	return fmt.Errorf("h1: reading the response head: %w", err)
}

// reusable reports whether the connection may carry another request once
// the response has ended, the request body permitting.
func (ex *exchange) reusable() bool {
	return !ex.noReuse && !ex.resp.Close
}

// finish ends the exchange once the response is over; eof says it was
// read to its end. The connection goes back to the pool if it may carry
// another request and the whole request was written, else it is closed.
// A backend may answer before it has read the body (413, 401): the
// connection is reused only if the body was then written in full, which
// leaves it where HTTP/1.1 says (a server that answers early reads and
// discards the rest, or closes); see bodyWriter.wroteAll.
func (ex *exchange) finish(eof bool) {
	pc := ex.pc
	stopped := ex.stopWatch()
	fit := pc.Release() && eof && stopped && ex.reusable()
	switch {
	case !fit:
		pc.close()
	case ex.w == nil || ex.w.wroteAll():
		ex.t.putIdle(pc)
	default:
		pc.close() // which stops a writer the backend does not read from
	}
	if ex.abortWriter() {
		ex.closeReqBody()
	}
}

// body is the response body. At EOF it gives the connection back to the
// pool before it returns EOF, so the next request finds it there.
type body struct {
	ex *exchange
	rc io.ReadCloser // http.ReadResponse's body; never closed (its Close reads to EOF)
	// left is what remains of a Content-Length body read straight from
	// the connection's buffer; used when rc is nil (parseHead read the head).
	left int64

	mu     sync.Mutex // serializes Read and the end of Close
	closed atomic.Bool
	err    error // sticky; io.EOF once the response ended
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed.Load() {
		return 0, errBodyClosed
	}
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	if b.rc != nil {
		n, err = b.rc.Read(p)
	} else {
		n, err = b.readFixed(p)
	}
	switch {
	case err == nil:
	case err == io.EOF:
		b.err = io.EOF
		b.ex.finish(true)
	case b.closed.Load(): // Close interrupted the read
		b.err = errBodyClosed
		b.ex.finish(false)
		err = b.err
	default:
		b.err = b.ex.fail(err, inBody)
		err = b.err
	}
	return n, err
}

// readFixed reads a Content-Length body, returning io.EOF with its last
// bytes so that the connection goes back to the pool without another call.
func (b *body) readFixed(p []byte) (int, error) {
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ex.pc.br.Read(p)
	b.left -= int64(n)
	if b.left == 0 {
		return n, io.EOF
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // as net/http's body: the backend closed early
	}
	return n, err
}

// Close ends the response early. The connection is kept only if the rest
// of the response is already in the read buffer; a remainder still on
// the wire is never waited for just to save the connection.
func (b *body) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	if !b.mu.TryLock() {
		b.ex.pc.InterruptFor(b.ex) // a Read is blocked: wake it
		b.mu.Lock()
	}
	defer b.mu.Unlock()
	if b.err == nil {
		b.err = errBodyClosed
		b.ex.finish(b.ex.reusable() && b.drainBuffered())
	}
	return nil
}

// drainBuffered reads the rest of the response if it is all in the read
// buffer, without waiting on the socket (a read deadline in the past makes
// any read that would reach it fail at once), and reports whether it
// reached the end.
func (b *body) drainBuffered() bool {
	pc := b.ex.pc
	if b.rc == nil {
		if int64(pc.br.Buffered()) < b.left {
			return false
		}
		pc.br.Discard(int(b.left))
		b.left = 0
		return true
	}
	if !pc.SetReadDeadline(aLongTimeAgo) {
		return false
	}
	_, err := io.Copy(io.Discard, b.rc)
	return pc.SetReadDeadline(time.Time{}) && err == nil
}

// switchedConn is the body of a 101 response: the connection itself, now
// speaking the protocol switched to.
type switchedConn struct {
	pc *persistConn
}

func (c *switchedConn) Read(p []byte) (int, error)  { return c.pc.br.Read(p) }
func (c *switchedConn) Write(p []byte) (int, error) { return c.pc.conn.Write(p) }
func (c *switchedConn) Close() error {
	c.pc.close()
	return nil
}
