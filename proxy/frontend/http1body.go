package frontend

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/webtier/webtier/proxy"
)

// headReader is the connection as the worker's bufio.Reader sees it. Its
// first read does not wait (see park). It puts the request-head timeout on
// the socket only when a head needs a second read: most heads arrive in
// one segment, and that saves two deadline updates (timer operations) per
// request. Likewise the body timeout is put on the socket only when a body
// needs a read of its own: a body that came with its head costs nothing.
type headReader struct {
	c       net.Conn
	rc      syscall.RawConn
	raw     *rawReader
	timeout time.Duration
	first   bool // no read yet this turn
	head    bool // reading a request head
	armed   bool // the head deadline is set

	lim          *bodyLimits
	body         bool      // reading a request body
	bodyArmed    bool      // a body deadline is set on the socket
	bodyDeadline time.Time // when the body must have come, as far as it has
}

// bodyLimits are mod_reqtimeout's body=TIMEOUT,MinRate=RATE: the body's
// first bytes must come within timeout, and each byte received then
// pushes the deadline back by 1/rate seconds.
type bodyLimits struct {
	timeout time.Duration
	rate    int64 // bytes per second
}

func newBodyLimits(lo proxy.ListenerOptions) bodyLimits {
	return bodyLimits{
		timeout: orDefault(lo.BodyTimeout, proxy.DefaultBodyTimeout),
		rate:    int64(orDefaultInt(lo.BodyMinRate, proxy.DefaultBodyMinRate)),
	}
}

// extend returns the deadline d pushed back for n bytes received.
func (l *bodyLimits) extend(d time.Time, n int) time.Time {
	return d.Add(time.Duration(int64(n) * int64(time.Second) / l.rate))
}

func (r *headReader) Read(p []byte) (int, error) {
	if r.first {
		r.first = false
		return r.raw.read(r.rc, p)
	}
	if r.body {
		return r.readBody(p)
	}
	if r.head && !r.armed {
		if err := r.c.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
			return 0, err
		}
		r.armed = true
	}
	return r.c.Read(p)
}

// readBody reads body bytes from the socket within the body deadline. The
// deadline on the socket is set once, at the body's first read; the
// extensions the bytes earn are put on the socket only when it expires
// (then the read is tried again), so that a steady body costs no timer
// operation per read.
func (r *headReader) readBody(p []byte) (int, error) {
	if !r.bodyArmed {
		r.bodyDeadline = time.Now().Add(r.lim.timeout)
		if err := r.c.SetReadDeadline(r.bodyDeadline); err != nil {
			return 0, err
		}
		r.bodyArmed = true
	}
	for {
		n, err := r.c.Read(p)
		if n > 0 {
			r.bodyDeadline = r.lim.extend(r.bodyDeadline, n)
		}
		if n == 0 && errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(r.bodyDeadline) {
			if err := r.c.SetReadDeadline(r.bodyDeadline); err != nil {
				return 0, err
			}
			continue
		}
		return n, err
	}
}

// endHead marks the head read. It reports false if the socket failed.
func (r *headReader) endHead() bool {
	r.head = false
	if !r.armed {
		return true
	}
	r.armed = false
	return r.c.SetReadDeadline(time.Time{}) == nil
}

// startBody makes the following reads a request body's.
func (r *headReader) startBody() { r.body = true }

// endBody ends the body's reads and its deadline. It reports false if the
// socket failed.
func (r *headReader) endBody() bool {
	r.body = false
	if !r.bodyArmed {
		return true
	}
	r.bodyArmed = false
	return r.c.SetReadDeadline(time.Time{}) == nil
}

// fastBody is a request body as the handler sees it. Closing it does not
// read the rest (net/http's parser would read all of it, however large);
// after the handler, drain reads what is left up to net/http's limit so
// that the next request can be parsed, and beyond it the connection closes.
type fastBody struct {
	mu      sync.Mutex // a transport may still read while the proxy closes
	r       io.ReadCloser
	eof     bool
	closed  bool
	expired atomic.Bool // the body timeout ran out (the response says 408)
}

func (b *fastBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, http.ErrBodyReadAfterClose
	}
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.expired.Store(true)
		err = errBodyTimeout
	}
	return n, err
}

// errBodyTimeout is the error of a request body read when the client sent
// it too slowly (body_timeout, body_min_rate).
var errBodyTimeout = errors.New("proxy: request body timeout: the client sent it too slowly")

func (b *fastBody) Close() error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

// drain reads the unread rest of the body, up to maxPostHandlerDrain, and
// reports whether the connection can carry another request.
func (b *fastBody) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.eof {
		return true
	}
	n, err := io.CopyN(io.Discard, b.r, maxPostHandlerDrain+1)
	return n <= maxPostHandlerDrain && (err == nil || err == io.EOF)
}

// maxPostHandlerDrain is how much of an unread request body is read and
// thrown away to keep the connection (net/http's maxPostHandlerReadBytes).
const maxPostHandlerDrain = 256 << 10
