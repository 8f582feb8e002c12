package frontend

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"
)

// netHTTPGuard gives net/http's HTTP/1 server (TLS listeners' HTTP/1.1,
// and the connections the fast path hands off) the limits and timeouts the
// fast path has built in and net/http lacks:
//
//   - the head limits: net/http bounds the whole head (MaxHeaderBytes, set
//     to max_header_size, answered 431 by net/http), not the request line,
//     one field or the number of fields; the guard checks those on the
//     parsed request (414, 431) before anything is forwarded;
//   - the body timeout with its minimum rate, by read deadlines through
//     http.ResponseController, pushed back as the body comes (a timer
//     operation per read: these paths are not the common one);
//   - the write timeout, progress-based per handler write (each write and
//     flush gets write_timeout from its start).
//
// HTTP/2 requests pass through: frontend/h2 has its own limits; with engine
// std (allProtos), net/http's HTTP/2 server serves them, and the guard
// applies to them too (stdserver.go). A connection
// hijacked for an upgrade (WebSocket) leaves without deadlines: every
// request gets the guard, an Upgrade header does not turn it off.
type netHTTPGuard struct {
	next         http.Handler
	lim          headLimits
	body         bodyLimits
	writeTimeout time.Duration
	// rejected, when set, is told of each request the guard answers
	// itself (431, 414), for the access log and the metrics.
	rejected  func(r *http.Request, status, bytes int)
	allProtos bool // HTTP/2 too: engine std
}

func (g *netHTTPGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 && !g.allProtos {
		g.next.ServeHTTP(w, r)
		return
	}
	r, release := g.detach(r)
	if release != nil {
		defer release()
	}
	if status, msg := g.check(r); status != 0 {
		if r.ProtoMajor == 1 {
			// (On HTTP/2, net/http would send the whole connection
			// away: the stream alone is answered, as frontend/h2 does.)
			w.Header().Set("Connection", "close")
		}
		body := strconv.Itoa(status) + " " + http.StatusText(status) + ": " + msg
		http.Error(w, body, status)
		if g.rejected != nil {
			lr := r
			if status == http.StatusRequestURITooLong {
				// The refused line (up to max_header_size of the
				// client's bytes) is not logged: the access log shows
				// "-", as for the fast path, which refuses it unread.
				lr = &http.Request{RemoteAddr: r.RemoteAddr, Header: http.Header{}, TLS: r.TLS}
			}
			g.rejected(lr, status, len(body)+1) // http.Error adds a line break
		}
		return
	}
	if len(r.TransferEncoding) > 0 {
		// net/http has dropped a Content-Length sent beside
		// Transfer-Encoding before the guard can see it, so a framing
		// conflict (RFC 9112 6.1, 6.3) cannot be told from a plain
		// chunked upload here: every chunked request ends its
		// connection, so that bytes a proxy in front framed otherwise
		// are never read as a next request. (The fast path closes on
		// the conflict only.)
		w.Header().Set("Connection", "close")
	}
	rc := http.NewResponseController(w)
	gw := &guardWriter{ResponseWriter: w, rc: rc, timeout: g.writeTimeout, noSniff: g.allProtos}
	if r.Body != nil && r.Body != http.NoBody {
		gw.body = &rateBody{r: r.Body, rc: rc, lim: &g.body}
		r.Body = gw.body
	}
	g.next.ServeHTTP(gw, r)
	// net/http writes what is buffered after the handler returns.
	gw.arm()
}

// checkRequest applies the limits to a request net/http parsed. net/http
// keeps no raw head, so the sizes are those of the fields as parsed
// (name, ": ", value), which is what they were less optional spaces.
func (l *headLimits) checkRequest(r *http.Request) (int, string) {
	line := len(r.Method) + 1 + len(r.RequestURI) + 1 + len(r.Proto)
	if line > l.requestLine {
		return http.StatusRequestURITooLong, msgRequestLine
	}
	fields, size := 0, line+2
	if r.Host != "" {
		fields, size = 1, size+len("Host: ")+len(r.Host)+2
	}
	for k, vv := range r.Header {
		for _, v := range vv {
			n := len(k) + 2 + len(v)
			if n > l.fieldSize {
				return http.StatusRequestHeaderFieldsTooLarge, msgFieldSize
			}
			fields++
			size += n + 2
		}
	}
	fields += len(r.TransferEncoding)
	switch {
	case fields > l.fields:
		return http.StatusRequestHeaderFieldsTooLarge, msgFields
	case size+2 > l.headSize:
		return http.StatusRequestHeaderFieldsTooLarge, msgHeadSize
	}
	return 0, ""
}

// guardWriter puts write_timeout on each write to the client.
type guardWriter struct {
	http.ResponseWriter
	rc       *http.ResponseController
	timeout  time.Duration
	body     *rateBody // nil if the request has none
	hijacked bool
	status   int  // the final status sent, 0 until then
	noSniff  bool // engine std: see noSniff
}

// SentStatus is the status sent, which a 408 may have replaced (for the
// access log).
func (w *guardWriter) SentStatus() int { return w.status }

func (w *guardWriter) arm() {
	if !w.hijacked {
		w.rc.SetWriteDeadline(time.Now().Add(w.timeout)) //nolint:errcheck // a writer without deadlines (tests) has none
	}
}

// Hijack hands the connection over (an upgrade). net/http clears its
// deadlines; the guard sets none after (a tunnel has its own life).
func (w *guardWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := w.rc.Hijack()
	w.hijacked = err == nil
	return c, brw, err
}

func (w *guardWriter) WriteHeader(code int) {
	if code >= 200 && w.body != nil && w.body.timedOut() {
		// The backend request failed on the client's slow body: 408,
		// and the connection closes.
		w.Header().Set("Connection", "close")
		code = http.StatusRequestTimeout
	}
	if code >= 200 && w.status == 0 {
		w.status = code
	}
	if w.noSniff {
		noSniff(w.Header())
	}
	w.arm()
	w.ResponseWriter.WriteHeader(code)
}

func (w *guardWriter) Write(p []byte) (int, error) {
	w.arm()
	return w.ResponseWriter.Write(p)
}

// FlushError lets http.ResponseController flush through the guard.
func (w *guardWriter) FlushError() error {
	w.arm()
	return w.rc.Flush()
}

func (w *guardWriter) Flush() { w.FlushError() } //nolint:errcheck // Flusher has no error

// Unwrap gives http.ResponseController the writer underneath (hijacking,
// full duplex, deadlines).
func (w *guardWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// rateBody is a request body read within body_timeout, extended by
// body_min_rate as it comes.
type rateBody struct {
	r        io.ReadCloser
	rc       *http.ResponseController
	lim      *bodyLimits
	deadline time.Time // zero until the first read
	expired  atomic.Bool
	// due is deadline as UnixNano, for the writer's goroutine: net/http
	// cancels the request's context on the timed-out read before the
	// error reaches Read, so the handler may answer (499, client gone)
	// before expired is set.
	due atomic.Int64
}

// timedOut reports whether the body's read deadline has passed.
func (b *rateBody) timedOut() bool {
	if b.expired.Load() {
		return true
	}
	d := b.due.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.deadline.IsZero() {
		b.deadline = time.Now().Add(b.lim.timeout)
		b.due.Store(b.deadline.UnixNano())
		b.rc.SetReadDeadline(b.deadline) //nolint:errcheck // a writer without deadlines (tests) has none
	}
	n, err := b.r.Read(p)
	if n > 0 {
		b.deadline = b.lim.extend(b.deadline, n)
		b.due.Store(b.deadline.UnixNano())
		b.rc.SetReadDeadline(b.deadline) //nolint:errcheck // as above
	}
	var ne net.Error
	switch {
	case err == io.EOF:
		// net/http's background read (client gone?) must not meet it.
		b.due.Store(0)
		b.rc.SetReadDeadline(time.Time{}) //nolint:errcheck // as above
	case err != nil && (errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()):
		b.expired.Store(true)
		err = errBodyTimeout
	}
	return n, err
}

func (b *rateBody) Close() error { return b.r.Close() }
