package ajp

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/httplex"
	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// Defaults for Options.
const (
	DefaultConnectTimeout        = 2 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	DefaultIdleTimeout           = 15 * time.Second // below Tomcat's stock 20 s keep-alive
	DefaultCPingIdle             = 10 * time.Second
	DefaultCPingTimeout          = 2 * time.Second
)

// Options configure a Transport. The zero value of every field but Dial
// selects the default given in its comment; so does a negative duration,
// except for CPingIdle.
type Options struct {
	// Secret is sent as the secret attribute on every request. It must
	// equal the secret of Tomcat's AJP Connector (secretRequired="true" is
	// Tomcat's default). Empty: no secret is sent. The transport never logs
	// it or puts it in an error.
	Secret string

	// RequestIDAttribute, when set, sends the value of the request header
	// RequestIDHeader (canonical form) as a request attribute of this
	// name (request.getAttribute in the servlet). Tomcat answers 403 to
	// an attribute its connector's allowedRequestAttributesPattern does
	// not match.
	RequestIDAttribute string
	RequestIDHeader    string

	// PacketSize is the AJP packet size in bytes, header included. It must
	// equal packetSize on Tomcat's AJP Connector. Default 8192 (Tomcat's
	// default); values are clamped to [8192, 65536], Tomcat's range.
	PacketSize int

	// ConnectTimeout bounds Dial. Default 2s.
	ConnectTimeout time.Duration

	// ResponseHeaderTimeout is how long to wait for the next packet from
	// Tomcat while no response headers have arrived. The clock restarts
	// after each request body packet sent, so a slow upload does not count.
	// Default 60s.
	ResponseHeaderTimeout time.Duration

	// RouteTimeouts says that some requests carry a route's timeout in
	// their context (backendconn.WithHeaderTimeout), which takes the
	// place of ResponseHeaderTimeout for them. Without it no request's
	// context is looked at.
	RouteTimeouts bool

	// IdleTimeout is how long a pooled connection may stay idle before it
	// is closed. Default 15s.
	IdleTimeout time.Duration

	// MaxIdle, when positive, caps the idle connections kept (the oldest
	// makes room). Zero (the default): no cap of the transport's own,
	// every connection a request leaves idle is kept until IdleTimeout,
	// within IdleLimit. Negative: no pooling (every connection is closed
	// after its request).
	MaxIdle int

	// IdleLimit, if set, bounds the idle connections of every transport
	// sharing it; when it is reached the connection idle the longest, in
	// any of them, is closed to make room. Nil: no shared limit.
	IdleLimit *idlepool.Limit

	// CPingIdle: a pooled connection idle longer than this is checked with
	// CPING/CPONG before it is reused; one that fails is closed and the
	// next one (or a new one) is used. Default 10s; negative: never.
	CPingIdle time.Duration

	// DisableCPingNew turns off the CPING sent on every new connection
	// before its first request. The check costs one round trip per new
	// connection and turns a Tomcat whose AJP connector failed to start
	// (port bound, never answers) into a KindCPing error after
	// CPingTimeout instead of a ResponseHeaderTimeout.
	DisableCPingNew bool

	// CPingTimeout bounds each CPING/CPONG exchange. Default 2s.
	CPingTimeout time.Duration

	// Dial opens a connection to the backend. Required: the upstream pool
	// dials its fixed address. Dial's context carries ConnectTimeout.
	Dial func(ctx context.Context) (net.Conn, error)

	// OnError, if set, is called once per failed exchange with the error's
	// Kind (never KindCanceled), for metrics. It must be fast and must not
	// block.
	OnError func(kind string)

	// OnUnsolicited, if set, is called when a connection is found holding
	// bytes after END_RESPONSE: at the end of a response, or on a pooled
	// connection about to be reused. The connection is closed instead, so
	// those bytes are never read as the answer to another request; this
	// reports them, for the log. head is up to 64 of the first of them,
	// valid only during the call. It must not block.
	OnUnsolicited func(head []byte)
}

// Transport is an http.RoundTripper that speaks AJP13 to one backend
// address through a pool of connections. Each connection carries one
// request at a time; it is reused only after an END_RESPONSE with reuse=1.
// Transport values must not be copied; use NewTransport.
type Transport struct {
	o Options // defaults applied

	idle *idlepool.Pool[*persistConn]

	bufs sync.Pool // *[]byte, request packet buffers
}

var _ http.RoundTripper = (*Transport)(nil)

// NewTransport returns a Transport using o. It panics if o.Dial is nil.
func NewTransport(o Options) *Transport {
	if o.Dial == nil {
		panic("ajp: Options.Dial is required")
	}
	o.PacketSize = clampPacketSize(o.PacketSize)
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.ResponseHeaderTimeout, DefaultResponseHeaderTimeout)
	def(&o.IdleTimeout, DefaultIdleTimeout)
	def(&o.CPingTimeout, DefaultCPingTimeout)
	if o.CPingIdle == 0 { // negative means never
		o.CPingIdle = DefaultCPingIdle
	}
	return &Transport{o: o, idle: idlepool.New[*persistConn](o.MaxIdle, o.IdleTimeout, o.IdleLimit)}
}

type routeKey struct{}
type userKey struct{}

type remoteUser struct{ user, authType string }

// WithRoute returns a context that makes the Transport send route as the
// AJP route (jvmRoute) attribute.
func WithRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, routeKey{}, route)
}

// WithRemoteUser returns a context that makes the Transport send user and
// authType (e.g. "Basic") as the remote_user and auth_type attributes, for
// a user the proxy itself authenticated. Tomcat uses them only with
// tomcatAuthentication="false" on the AJP Connector.
func WithRemoteUser(ctx context.Context, user, authType string) context.Context {
	return context.WithValue(ctx, userKey{}, remoteUser{user, authType})
}

// HasIdle reports whether a pooled connection is waiting for a request:
// the next request would most likely not need to connect. The upstream
// pool races connects only for requests that would.
func (t *Transport) HasIdle() bool { return t.idle.Len() > 0 }

// CloseIdleConnections closes the idle connections now, and closes
// connections that finish their request later instead of pooling them,
// until the next RoundTrip. In-flight requests are not interrupted. This is
// net/http's contract, which drain relies on.
func (t *Transport) CloseIdleConnections() { t.idle.CloseIdle() }

// CPing opens a new connection, sends CPING and waits CPingTimeout (or
// ctx's deadline, if sooner) for CPONG, then closes the connection. It is
// the active health check: CPING needs no secret, and unlike a TCP connect
// it fails for a connector that is bound but not serving. Errors are
// *Error of KindDial or KindCPing; they are not reported to OnError.
func (t *Transport) CPing(ctx context.Context) error {
	pc, err := t.dial(ctx)
	if err != nil {
		return err
	}
	defer pc.close()
	return pc.cping(ctx, t.o.CPingTimeout)
}

// RoundTrip sends req over AJP and returns the response as soon as its
// headers arrive; the Body streams the rest. See the package doc for what
// the request must carry. RoundTrip closes req.Body, also on errors.
//
// One kind of response is read further before RoundTrip returns: one that
// may be Tomcat refusing the request, which Tomcat signals only by the
// status and reuse=0 at END_RESPONSE. That is a 403 to the first request
// of a connection, or a 400 or 500 to a Forward Request larger than 8192
// bytes. Its body is buffered, up to 16 KiB, until END_RESPONSE: with
// reuse=0 RoundTrip returns an *Error of KindSecret or KindPacketSize and
// no response; otherwise (reuse=1, or a longer body: the application's
// answer) the response is returned with its body intact.
//
// A pooled connection is checked with a non-blocking peek right before
// the request is written to it: one that Tomcat closed, or that holds
// bytes after the last END_RESPONSE (see Options.OnUnsolicited), is
// closed, and the next pooled connection or a new one is used.
//
// A request is retried once, transparently, on a new connection when a
// pooled connection turns out to be dead: only if nothing came back on it,
// no request body was read beyond the first packet (which is kept and
// resent), and either nothing could be written or the method is
// idempotent (net/http's rule).
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.RoundTripInterruptible(req, nil)
}

// RoundTripInterruptible is RoundTrip with in (if not nil) as a second
// way, besides req's context, to end the request: the caller's Fire
// interrupts the connection the request is on (package interrupt says
// why this is cheaper than a context of the request's own).
func (t *Transport) RoundTripInterruptible(req *http.Request, in *interrupt.Interrupt) (*http.Response, error) {
	if req.URL == nil {
		closeReqBody(req)
		return nil, errors.New("ajp: nil Request.URL")
	}
	if isUpgrade(req) {
		closeReqBody(req)
		return nil, ErrUpgrade
	}
	ex := &exchange{t: t, req: req, intr: in, rht: t.o.ResponseHeaderTimeout}
	if t.o.RouteTimeouts {
		ex.rht, ex.routeTimeout = backendconn.HeaderTimeout(req.Context(), ex.rht)
	}
	ex.rb.init(req)

	bufp := t.getBuf()
	pkt, err := t.encode((*bufp)[:0], req, ex.rb.length)
	if err != nil {
		t.putBuf(bufp)
		ex.rb.close()
		var e *Error
		if errors.As(err, &e) {
			t.report(e.Kind)
		}
		return nil, err
	}
	ex.fwdSize = len(pkt)
	ex.pkt = pkt
	resp, err := ex.run()
	*bufp = ex.pkt
	t.putBuf(bufp)
	return resp, err
}

func (t *Transport) report(kind string) {
	if t.o.OnError != nil && kind != KindCanceled {
		t.o.OnError(kind)
	}
}

func (t *Transport) getBuf() *[]byte {
	if p, ok := t.bufs.Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, 2*DefaultPacketSize)
	return &b
}

func (t *Transport) putBuf(p *[]byte) {
	if cap(*p) <= 2*MaxPacketSize {
		t.bufs.Put(p)
	}
}

func closeReqBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// isUpgrade reports whether req asks for a protocol switch or a tunnel.
// ReverseProxy keeps "Connection: Upgrade" and "Upgrade" on such requests.
func isUpgrade(req *http.Request) bool {
	if req.Method == http.MethodConnect || req.Header.Get("Upgrade") != "" {
		return true
	}
	for _, v := range req.Header["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if httplex.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// encode appends the Forward Request for req. length is the body length
// as decided by reqBody.init (-1 unknown, 0 none).
func (t *Transport) encode(dst []byte, req *http.Request, length int64) ([]byte, error) {
	fr := ForwardRequest{
		Method:        req.Method,
		Protocol:      req.Proto,
		URI:           req.URL.EscapedPath(),
		ServerName:    req.Host,
		Host:          req.Host,
		ContentLength: length,
		Header:        req.Header,
		Secret:        t.o.Secret,
		QueryString:   req.URL.RawQuery,
	}
	if fr.Method == "" {
		fr.Method = http.MethodGet
	}
	if !strings.HasPrefix(fr.Protocol, "HTTP/") {
		fr.Protocol = "HTTP/1.1"
	}
	if fr.URI == "" {
		fr.URI = "/"
	}
	if length == 0 {
		switch fr.Method {
		case http.MethodPost, http.MethodPut, http.MethodPatch:
			// Like net/http's client: say "no body" where one is expected.
		default:
			fr.ContentLength = -1
		}
	}
	if fr.Host == "" {
		fr.Host = req.URL.Host
		fr.ServerName = req.URL.Host
	}
	hostPort := ""
	if h, p, err := net.SplitHostPort(fr.ServerName); err == nil {
		fr.ServerName, hostPort = h, p
	} else {
		fr.ServerName = strings.TrimSuffix(strings.TrimPrefix(fr.ServerName, "["), "]")
	}
	if h, p, err := net.SplitHostPort(req.RemoteAddr); err == nil {
		fr.RemoteAddr, fr.RemotePort = h, p
	} else {
		fr.RemoteAddr = req.RemoteAddr
	}
	fr.RemoteHost = fr.RemoteAddr // no reverse DNS, like httpd's default

	ctx := req.Context()
	// server_port is Tomcat's getLocalPort (and getServerPort without a
	// Host port): the port the client connected to.
	if la, ok := ctx.Value(http.LocalAddrContextKey).(net.Addr); ok && la != nil {
		if ta, ok := la.(*net.TCPAddr); ok {
			fr.ServerPort = ta.Port
			fr.LocalAddr = ta.IP.String()
		} else if h, p, err := net.SplitHostPort(la.String()); err == nil {
			fr.ServerPort, _ = strconv.Atoi(p)
			fr.LocalAddr = h
		}
	}
	if fr.ServerPort == 0 && hostPort != "" {
		fr.ServerPort, _ = strconv.Atoi(hostPort)
	}
	if fr.ServerPort <= 0 || fr.ServerPort > 0xFFFF {
		fr.ServerPort = 80
		if req.TLS != nil {
			fr.ServerPort = 443
		}
	}
	if t.o.RequestIDAttribute != "" {
		if v := req.Header[t.o.RequestIDHeader]; len(v) > 0 {
			fr.RequestIDAttribute, fr.RequestID = t.o.RequestIDAttribute, v[0]
		}
	}
	if route, ok := ctx.Value(routeKey{}).(string); ok {
		fr.Route = route
	}
	if u, ok := ctx.Value(userKey{}).(remoteUser); ok {
		fr.RemoteUser, fr.AuthType = u.user, u.authType
	}
	if cs := req.TLS; cs != nil {
		fr.IsSSL = true
		fr.SSLCipher = tls.CipherSuiteName(cs.CipherSuite)
		fr.SSLKeySize = cipherKeyBits(fr.SSLCipher)
		fr.SSLProtocol = tlsVersionName(cs.Version)
		fr.SSLSession = tlsSessionID(cs)
		if len(cs.PeerCertificates) > 0 {
			fr.SSLCert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cs.PeerCertificates[0].Raw}))
		}
	}
	return AppendForwardRequest(dst, &fr, t.o.PacketSize)
}

// cipherKeyBits returns the symmetric key size of a cipher suite by name,
// the value servlets read as jakarta.servlet.request.key_size.
func cipherKeyBits(name string) int {
	switch {
	case strings.Contains(name, "AES_128"), strings.Contains(name, "RC4_128"):
		return 128
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return 256
	case strings.Contains(name, "3DES"):
		return 168
	}
	return 0
}

// tlsVersionName uses OpenSSL's spelling, which is what httpd sends.
func tlsVersionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "TLSv1"
	case tls.VersionTLS11:
		return "TLSv1.1"
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return ""
}

// tlsSessionID returns a per-connection identifier for ssl_session. Go
// does not expose a TLS session ID (TLS 1.3 has none), so it is derived
// from the connection's keying material with an exporter label of our
// own: stable for all requests of one TLS connection, different for
// another, and revealing nothing about the session keys.
func tlsSessionID(cs *tls.ConnectionState) (id string) {
	// A ConnectionState not made by crypto/tls (tests, other TLS stacks)
	// has no exporter and ExportKeyingMaterial panics on it.
	defer func() {
		if recover() != nil {
			id = ""
		}
	}()
	km, err := cs.ExportKeyingMaterial("EXPORTER-webtier-ajp-ssl-session", nil, 16)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(km)
}

// getConn returns a pooled connection that is fit for a request, or a new
// one. reused reports which.
func (t *Transport) getConn(ctx context.Context) (pc *persistConn, reused bool, err error) {
	for {
		pc, ok, _, idle := t.idle.Get()
		if !ok {
			break
		}
		// Checked right before the request goes out (sendAwait), in the
		// same step as the write.
		pc.Unchecked = true
		if t.o.CPingIdle < 0 || idle <= t.o.CPingIdle {
			return pc, true, nil
		}
		// Stray bytes would be read as the CPONG: look first, to name them.
		if !pc.fit() {
			pc.close()
			continue
		}
		pc.Unchecked = true
		if err := pc.cping(ctx, t.o.CPingTimeout); err != nil {
			pc.close() // not giving it back: stale
			if ctx.Err() != nil {
				return nil, false, canceledError(ctx)
			}
			continue
		}
		return pc, true, nil
	}
	pc, err = t.dial(ctx)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			t.report(e.Kind)
		}
		return nil, false, err
	}
	if !t.o.DisableCPingNew {
		if err := pc.cping(ctx, t.o.CPingTimeout); err != nil {
			pc.close()
			var e *Error
			if errors.As(err, &e) {
				t.report(e.Kind)
			}
			return nil, false, err
		}
	}
	return pc, false, nil
}

func canceledError(ctx context.Context) *Error {
	return newError(KindCanceled, context.Cause(ctx), "request canceled")
}

// dial opens a new connection.
func (t *Transport) dial(ctx context.Context) (*persistConn, error) {
	if err := ctx.Err(); err != nil {
		return nil, canceledError(ctx)
	}
	dctx, cancel := context.WithTimeout(ctx, t.o.ConnectTimeout)
	conn, err := t.o.Dial(dctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, canceledError(ctx)
		}
		return nil, newError(KindDial, err, "connecting to Tomcat's AJP connector (the upstream's connect_timeout, %v)", t.o.ConnectTimeout)
	}
	return newPersistConn(t, conn), nil
}

// putIdle pools pc (see idlepool.Pool.Put), unless it was interrupted or
// holds bytes after END_RESPONSE.
func (t *Transport) putIdle(pc *persistConn) {
	if idlepool.Leftover(pc.br, t.o.OnUnsolicited) {
		pc.close() // never reused: Options.OnUnsolicited says why
		return
	}
	if !pc.clearDeadlines() {
		pc.close()
		return
	}
	t.idle.Put(pc)
}

// idleCount returns the number of pooled connections (for tests).
func (t *Transport) idleCount() int { return t.idle.Len() }

var _ io.Closer = (*body)(nil)
