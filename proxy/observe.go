package proxy

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/webtier/webtier/proxy/accesslog"
	"github.com/webtier/webtier/proxy/upstream"
)

// exchange is one observed request: what the access log and the request
// metrics need of it. It is the ResponseWriter the handler writes to (to
// see the status and count the bytes), and the one allocation observing
// costs: it holds the timing context the pool fills and the request id's
// bytes. It is not pooled: a connect the request abandoned may still read
// the context after the request ended, and the log line may still use
// the id. Served only when the listener logs or measures requests; others
// never see it.
type exchange struct {
	w      http.ResponseWriter
	start  time.Time
	status int
	bytes  int64

	rt    *route // nil until routed
	reqID string

	proxied         bool // forward sent it to a pool and filled the upstream fields
	upstreamAddr    netip.AddrPort
	upstreamConnect time.Duration
	upstreamHeader  time.Duration
	upstreamTotal   time.Duration

	tctx  upstream.TimingContext // the outbound request's context, when proxied
	idBuf [requestIDLen]byte     // a request id made here (see requestID)
}

func (x *exchange) Header() http.Header { return x.w.Header() }

func (x *exchange) WriteHeader(code int) {
	x.w.WriteHeader(code)
	if x.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		x.status = code
		if sw, ok := x.w.(statusWriter); ok {
			// The server's writer may have answered otherwise (408 for
			// a body that came too slowly).
			if s := sw.SentStatus(); s != 0 {
				x.status = s
			}
		}
	}
}

// statusWriter is a server's ResponseWriter that can answer another
// status than the handler's: fastWriter and guardWriter.
type statusWriter interface {
	SentStatus() int
}

func (x *exchange) Write(p []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	n, err := x.w.Write(p)
	x.bytes += int64(n)
	return n, err
}

// ReadFrom passes a file body on to the server's writer, so that it goes
// out with sendfile (proxy/static), counting its bytes.
func (x *exchange) ReadFrom(r io.Reader) (int64, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := x.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		buf := bufPool.Get()
		n, err = io.CopyBuffer(struct{ io.Writer }{x.w}, struct{ io.Reader }{r}, buf)
		bufPool.Put(buf)
	}
	x.bytes += n
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer (flush,
// full duplex, deadlines).
func (x *exchange) Unwrap() http.ResponseWriter { return x.w }

// Hijack is the upgrade (WebSocket) path: the backend's 101 goes out on the
// hijacked connection, never through WriteHeader.
func (x *exchange) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(x.w).Hijack()
	if err == nil {
		x.status = http.StatusSwitchingProtocols
	}
	return c, brw, err
}

// serveObserved serves r through an exchange and then logs and counts it,
// also when the handler panics (a response cut off mid-body).
func (f *front) serveObserved(w http.ResponseWriter, r *http.Request) {
	x := &exchange{w: w, start: time.Now(),
		upstreamConnect: -1, upstreamHeader: -1, upstreamTotal: -1}
	if f.reqID.Header != "" {
		x.reqID = f.requestID(r, &x.idBuf)
	}
	m := f.metrics
	if m != nil {
		m.inflight.Inc()
	}
	defer func() {
		f.observed(x, r)
		if m != nil {
			m.inflight.Dec()
		}
	}()
	f.serve(x, r, x)
}

// rejected logs and counts a request the server answered itself, before
// routing: r is the request, or one with only RemoteAddr when its head
// could not be parsed (logged with "-" as its request line).
func (f *front) rejected(r *http.Request, status, bytes int) {
	if !f.observe {
		return
	}
	x := &exchange{start: time.Now(), status: status, bytes: int64(bytes),
		upstreamConnect: -1, upstreamHeader: -1, upstreamTotal: -1}
	f.observed(x, r)
}

// observed logs and counts a finished request.
func (f *front) observed(x *exchange, r *http.Request) {
	status := x.status
	if status == 0 {
		status = http.StatusOK // what the server sends for a handler that wrote nothing
	}
	d := time.Since(x.start)
	bytes := x.bytes
	if r.Method == http.MethodHead {
		bytes = 0
	}
	if m := f.metrics; m != nil {
		rm := &m.unrouted
		if x.rt != nil {
			rm = &m.routes[x.rt.index]
		}
		rm.class[statusClass(status)].Inc()
		rm.duration.Observe(d.Seconds())
		if bytes > 0 {
			rm.bytes.Add(float64(bytes))
		}
		if x.proxied && x.upstreamHeader >= 0 {
			m.upstreamHeader[x.rt.pool].Observe(x.upstreamHeader.Seconds())
		}
	}
	if f.accessLog == nil {
		return
	}
	e := accesslog.Entry{
		Format:          f.logFormat,
		Start:           x.start,
		Client:          f.clientAddr(r),
		Method:          r.Method,
		URI:             r.RequestURI,
		Proto:           r.Proto,
		Host:            r.Host,
		Status:          status,
		Bytes:           bytes,
		RequestID:       x.reqID,
		Listener:        f.name,
		UpstreamAddr:    x.upstreamAddr,
		UpstreamConnect: x.upstreamConnect,
		UpstreamHeader:  x.upstreamHeader,
		UpstreamTotal:   x.upstreamTotal,
		Duration:        d,
	}
	if e.URI == "" && r.URL != nil {
		e.URI = r.URL.RequestURI()
	}
	if v, ok := r.Header["Referer"]; ok && len(v) > 0 {
		e.Referer, e.HasRef = v[0], true
	}
	if v, ok := r.Header["User-Agent"]; ok && len(v) > 0 {
		e.UserAgent, e.HasUA = v[0], true
	}
	if x.rt != nil {
		e.Route = x.rt.label
		if x.rt.pool >= 0 { // not a static route
			e.Upstream = f.h.pools[x.rt.pool].Name()
		}
	}
	if cs := r.TLS; cs != nil {
		e.TLSVersion = tlsVersionName(cs.Version)
		e.ALPN = cs.NegotiatedProtocol
	}
	f.accessLog.Log(&e)
}

// peerHost is the host part of a RemoteAddr.
func peerHost(remoteAddr string) string {
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		return h
	}
	return remoteAddr
}

// tlsVersionName names a TLS version as httpd's SSL_PROTOCOL does.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS13:
		return "TLSv1.3"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS10:
		return "TLSv1"
	}
	return "unknown"
}
