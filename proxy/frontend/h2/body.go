package h2

import (
	"io"
	"net/http"
	"sync"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// body is a request body: the read loop writes DATA into it, the handler
// reads it. What it holds is bounded by the stream window granted to the
// client; what the handler reads is granted back.
type body struct {
	st   *stream
	mu   sync.Mutex
	cond sync.Cond
	buf  []byte
	r    int   // read offset in buf
	err  error // io.EOF at the end, or why the stream ended
	// trailer is the request's Trailer map, filled in from trailerIn by
	// Read, on the handler's goroutine, as it returns io.EOF: the handler
	// may look at the declared keys before that.
	trailer   http.Header
	trailerIn http.Header // trailers received, not yet in trailer
	closed    bool        // the handler closed the body: data is dropped
	// sendContinue: the client waits for "100 Continue" before the body.
	sendContinue bool
}

func newBody(st *stream, expect []string) *body {
	b := &body{st: st}
	b.cond.L = &b.mu
	for _, v := range expect {
		if httplex.EqualFold(v, "100-continue") {
			b.sendContinue = true
		}
	}
	return b
}

func (b *body) Read(p []byte) (int, error) {
	if b.sendContinue {
		b.sendContinue = false
		b.st.c.lockW()
		if !b.st.reset && b.st.c.werr == nil {
			b.st.c.appendHeaders(b.st.id, http.StatusContinue, nil, false, false, "")
			b.st.c.needFlush = true
		}
		b.st.c.unlockW()
	}
	b.mu.Lock()
	for b.r == len(b.buf) && b.err == nil {
		b.cond.Wait()
	}
	if b.r == len(b.buf) {
		err := b.err
		if err == io.EOF && b.trailerIn != nil {
			// As net/http: only the declared trailers are kept.
			for k, vv := range b.trailerIn {
				if _, ok := b.trailer[k]; ok {
					b.trailer[k] = vv
				}
			}
			b.trailerIn = nil
		}
		b.mu.Unlock()
		return 0, err
	}
	n := copy(p, b.buf[b.r:])
	b.r += n
	switch {
	case b.r == len(b.buf):
		b.buf, b.r = b.buf[:0], 0
	case b.r >= 32<<10 && b.r > len(b.buf)/2:
		m := copy(b.buf, b.buf[b.r:])
		b.buf, b.r = b.buf[:m], 0
	}
	b.mu.Unlock()
	b.st.c.grant(b.st, int32(n))
	return n, nil
}

// Close stops the body: what arrives from now on is dropped (and granted
// back).
func (b *body) Close() error {
	b.mu.Lock()
	b.closed = true
	if b.err == nil {
		b.err = http.ErrBodyReadAfterClose
	}
	n := len(b.buf) - b.r
	b.buf, b.r = nil, 0
	b.mu.Unlock()
	if n > 0 {
		b.st.c.smu.Lock()
		b.st.c.connUnacked += int32(n)
		b.st.c.smu.Unlock()
		b.st.c.grant(nil, 0)
	}
	return nil
}

// write appends data from a DATA frame.
func (b *body) write(data []byte) {
	b.mu.Lock()
	if b.closed || b.err != nil {
		b.mu.Unlock()
		b.st.c.smu.Lock()
		b.st.c.connUnacked += int32(len(data))
		b.st.c.smu.Unlock()
		b.st.c.grant(nil, 0)
		return
	}
	b.buf = append(b.buf, data...)
	b.mu.Unlock()
	b.cond.Signal()
}

// closeWithError ends the body with err (io.EOF: complete, with trailer
// values tr); an earlier end stands.
func (b *body) closeWithError(err error, tr http.Header) {
	b.mu.Lock()
	if b.err == nil {
		if b.trailer != nil && err == io.EOF {
			b.trailerIn = tr // Read copies it on the handler's goroutine
		}
		b.err = err
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}

// drop empties the body and returns how many unread bytes it held, which
// the connection window gets back. Called with c.smu held.
func (b *body) drop() int32 {
	b.mu.Lock()
	n := len(b.buf) - b.r
	b.buf, b.r = nil, 0
	if b.err == nil {
		b.err = io.ErrUnexpectedEOF
	}
	b.mu.Unlock()
	b.cond.Broadcast()
	return int32(n)
}

var _ io.ReadCloser = (*body)(nil)
