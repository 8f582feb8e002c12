package proxy

import (
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/webtier/webtier/proxy/accesslog"
	"github.com/webtier/webtier/proxy/compress"
	"github.com/webtier/webtier/proxy/rules/rewrite"
	"github.com/webtier/webtier/proxy/static"
	"github.com/webtier/webtier/proxy/upstream"
)

// Defaults applied to zero-valued option fields. config uses the same values
// so that README, `webtier validate` and the runtime agree.
const (
	DefaultConnectTimeout        = upstream.DefaultConnectTimeout
	DefaultResponseHeaderTimeout = upstream.DefaultResponseHeaderTimeout
	DefaultIdleConnTimeout       = upstream.DefaultIdleConnTimeout
	DefaultMaxIdlePerAddress     = upstream.DefaultMaxIdlePerAddress
	DefaultMaxIdleBackendConns   = upstream.DefaultMaxIdleConns

	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultProxyHeaderTimeout bounds the read of a PROXY protocol
	// header: a balancer sends it with the connection's first segment.
	DefaultProxyHeaderTimeout = 5 * time.Second
	// DefaultClientIdleTimeout is above the 60 s idle timeout of an AWS
	// load balancer (ALB and CLB default): the balancer, not webtier, must
	// close an idle connection, or it may send a request on a connection
	// webtier is closing and answer the client 502. 75 s is nginx's
	// keepalive_timeout default (httpd's KeepAliveTimeout is 5 s, written
	// for clients, not for a balancer in front).
	DefaultClientIdleTimeout = 75 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second

	// DefaultHealthPath is the path of the health endpoint the balancer
	// in front checks: the L4 convention of the seed's deployments
	// ("GET /health_check.html").
	DefaultHealthPath = "/health_check.html"
	// DefaultHealthFailStatus is the health endpoint's answer while
	// webtier drains (or a required upstream has no usable address).
	DefaultHealthFailStatus = 503
	// DefaultDrainWait is how long webtier keeps serving after SIGTERM
	// with its health endpoint failing: longer than the balancer in front
	// takes to see the failure (check interval × fall count; an L4 with a
	// 10 s interval and one retry takes 11 to 20 s), so that no new
	// connection is sent to a closed listener.
	DefaultDrainWait = 20 * time.Second
	// DefaultDrainTimeout bounds how long requests in flight may run once
	// the listeners are closed.
	DefaultDrainTimeout = DefaultShutdownTimeout

	// Request head limits, as httpd's LimitRequestLine (8190),
	// LimitRequestFieldSize (8190) and LimitRequestFields (100); the whole
	// head is bounded too, and with it the memory a connection holds while
	// its head is read.
	DefaultMaxRequestLine     = 8192
	DefaultMaxHeaderFieldSize = 8192
	DefaultMaxHeaderFields    = 100
	DefaultMaxHeaderSize      = 64 << 10

	// Request body and response write timeouts: mod_reqtimeout's
	// body=20,MinRate=500, and nginx's send_timeout (httpd's Timeout).
	DefaultBodyTimeout  = 20 * time.Second
	DefaultBodyMinRate  = 500
	DefaultWriteTimeout = 60 * time.Second
)

// Options is the validated, runtime form of the proxy part of a config file.
type Options struct {
	Listeners []ListenerOptions
	Routes    []RouteOptions
	Upstreams []UpstreamOptions

	// Drain is what SIGTERM does (see Server.Drain).
	Drain DrainOptions
	// MaxIdleBackendConns bounds the idle backend connections of all the
	// upstreams together; when it is reached, the connection idle the
	// longest is closed to make room. Default 4096.
	MaxIdleBackendConns int

	// Metrics receives the upstream pools' counters; cmd sets it once per
	// process (config does not). Nil: counted but not exported.
	Metrics *upstream.Metrics

	// DrainState is the frontend Server's drain flag, shared by every
	// Handler it builds (nil outside a Server: never draining). Config
	// leaves it nil.
	DrainState *DrainState

	// RequestMetrics receives the per-request metrics; cmd sets it once
	// per process when the admin listener serves them. Nil: requests are
	// not measured (and cost nothing for it).
	RequestMetrics *Metrics
	// AccessLog gets one line per request in AccessLogFormat; cmd sets it.
	// Nil or FormatOff: no access log (and no cost).
	AccessLog       *accesslog.Writer
	AccessLogFormat accesslog.Format
	// RequestID configures the request id. Zero: none.
	RequestID RequestIDOptions
}

// DrainOptions time the stop on SIGTERM: the health endpoint fails, webtier
// serves on for Wait while the balancer in front takes it out, then the
// listeners close and requests in flight get Timeout to finish.
type DrainOptions struct {
	// Wait is how long webtier keeps serving, its health endpoint failing
	// and keep-alive connections being closed, before the listeners
	// close. Zero: DefaultDrainWait; negative: no wait (the listeners
	// close at once).
	Wait time.Duration
	// Timeout bounds how long requests in flight may run after the
	// listeners closed; the rest are cut off. Default DefaultDrainTimeout.
	Timeout time.Duration
}

// WaitTime returns Wait with its default applied (0: no wait).
func (d DrainOptions) WaitTime() time.Duration {
	switch {
	case d.Wait == 0:
		return DefaultDrainWait
	case d.Wait < 0:
		return 0
	}
	return d.Wait
}

// ListenerOptions describe one client-facing socket.
type ListenerOptions struct {
	// Name is used in logs and metrics. Default: the address.
	Name string
	// Address is "host:port" as for net.Listen, e.g. ":8080" or "127.0.0.1:80".
	Address string
	// TrustedProxies are the peers (for example the ELB's subnets) whose
	// X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host are kept and
	// appended to. From any other peer those headers are replaced, so a
	// client cannot forge its address. Empty: trust nobody.
	TrustedProxies []netip.Prefix
	// ReadHeaderTimeout bounds reading a request's headers. Default 10s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a client keep-alive connection idle this long.
	// Default 75s (keep it above the load balancer's idle timeout, 60 s
	// on AWS).
	IdleTimeout time.Duration
	// KeepUnderscoreHeaders forwards request header fields whose name
	// contains "_". False (the default) drops them, as nginx's
	// underscores_in_headers off does: CGI-style backends read
	// X_Forwarded_For and X-Forwarded-For as one variable, so a client
	// could forge what the backend takes for webtier's header.
	KeepUnderscoreHeaders bool
	// MaxRequestLine bounds the request line in bytes (CRLF not counted):
	// beyond it the answer is 414 and the connection closes. Default 8192.
	MaxRequestLine int
	// MaxHeaderFieldSize bounds one header field line ("Name: value") in
	// bytes: beyond it, 431. Default 8192.
	MaxHeaderFieldSize int
	// MaxHeaderFields bounds the number of header fields: beyond it, 431.
	// Default 100.
	MaxHeaderFields int
	// MaxHeaderSize bounds the whole request head (request line, fields
	// and the empty line) in bytes: beyond it, 431. It also bounds what a
	// connection buffers while its head is read. Default 64 KiB.
	MaxHeaderSize int
	// BodyTimeout is how long the first request body bytes may take to
	// come; each bytes received then extend the deadline by
	// len/BodyMinRate seconds (mod_reqtimeout's body=20,MinRate=500).
	// Expiry: 408 if no response has started, and the connection closes.
	// Default 20s.
	BodyTimeout time.Duration
	// BodyMinRate is the request body rate, bytes per second, that keeps
	// pushing the body deadline back. Default 500.
	BodyMinRate int
	// WriteTimeout ends a connection whose response write makes no
	// progress this long (nginx's send_timeout): a client that stops
	// reading frees its backend connection. Default 60s.
	WriteTimeout time.Duration
	// Engine picks the server: EngineWebtier (the default, "") webtier's
	// own HTTP/1 server and, on TLS, its own HTTP/2 server (frontend/h2);
	// EngineStd net/http's HTTP/1 and HTTP/2 servers, with the same limits
	// and timeouts (frontend/stdserver.go). A change waits for a restart.
	Engine Engine
	// TLS, when set, makes the listener serve HTTPS only: TLS 1.2 or later,
	// with HTTP/2 and HTTP/1.1 offered by ALPN. Nil: plain HTTP/1.1.
	TLS *TLSOptions
	// HealthPath is the path webtier answers itself for the balancer in
	// front: 200 while serving, HealthFailStatus while draining or while
	// an upstream of HealthRequires has no usable address. It matches
	// the request's path after cleaning (so "//x" and "/a/../x" match
	// "/x", and so does the path followed by ";parameters"), whatever
	// the Host and query; such a request is never proxied. Empty: no
	// health endpoint (config fills in DefaultHealthPath).
	HealthPath string
	// HealthFailStatus is the failing answer's status. Default
	// DefaultHealthFailStatus.
	HealthFailStatus int
	// HealthRequires names upstreams that must each have an address that
	// takes requests for the health endpoint to answer 200.
	HealthRequires []string

	// ProxyProtocol, when set, makes the listener read the PROXY protocol
	// header (v1 or v2) that an NLB or an L4 balancer sends before the
	// connection's first bytes, from the sources it lists; nil: off.
	ProxyProtocol *ProxyProtocolOptions
	// ForwardedHeader sends HTTP backends an RFC 7239 Forwarded header
	// besides X-Forwarded-*. Default false.
	ForwardedHeader bool
	// RedirectHTTPS, on a plain listener, answers every request with 308
	// to https:// with the same host, path and query, except the health
	// path and ACME HTTP-01 challenges.
	RedirectHTTPS bool
	// Rules are the listener's defaults for its routes' header rules and
	// error pages (rules.go). Nil: none.
	Rules *ListenerRules
	// Compress is the compression of the listener's routes that have
	// none of their own (proxy/compress). Nil: off.
	Compress *compress.Options
}

// ProxyProtocolOptions are a listener's PROXY protocol settings. A
// connection from a source in From must open with a PROXY header, whose
// source address becomes the connection's remote address (a LOCAL header,
// the balancer's own health check, keeps the TCP peer); a connection from
// any other source that opens with one is closed. Connections from other
// sources without a header are served as on any listener.
type ProxyProtocolOptions struct {
	// From are the balancer's addresses: the only peers whose PROXY
	// header is believed, and which must send one.
	From []netip.Prefix
	// Timeout bounds reading the header (a balancer sends it at once).
	// Default DefaultProxyHeaderTimeout.
	Timeout time.Duration
}

// TLSOptions are a listener's certificates and TLS settings. Certificate
// files are read when the listener starts and again at every reload
// (SIGHUP): a renewed certificate is served from the next handshake, and
// one that does not load fails the reload and leaves the old ones in
// place. A handshake gets the certificate whose name matches its SNI
// exactly, else a wildcard one, else the default: the first file
// certificate (CertFile, else Certificates[0]), else the first ACME name's.
type TLSOptions struct {
	// CertFile holds the server certificate, then any intermediates.
	CertFile string
	// KeyFile holds the certificate's private key (PKCS #1, PKCS #8 or
	// SEC 1 EC), unencrypted.
	KeyFile string
	// Certificates are more certificate and key files, after CertFile's.
	Certificates []CertFiles
	// ACME, when set, obtains and renews certificates for its names.
	ACME *ACMEOptions
	// MinVersion is the lowest TLS version accepted:
	// tls.VersionTLS12 (0: the default) or tls.VersionTLS13.
	MinVersion uint16
	// ClientCAFile holds the CAs that sign client certificates (mTLS).
	ClientCAFile string
	// ClientAuth says whether a client certificate is asked for.
	ClientAuth ClientAuth
	// HSTS, when positive, is the max-age of the Strict-Transport-Security
	// header set on every response of the listener.
	HSTS time.Duration
}

// CertFiles are one certificate's PEM files.
type CertFiles struct {
	CertFile, KeyFile string
}

// ClientAuth is a TLS listener's client-certificate policy.
type ClientAuth string

const (
	ClientAuthOff     ClientAuth = ""        // no client certificate asked for
	ClientAuthRequest ClientAuth = "request" // asked for; verified against ClientCAFile when sent
	ClientAuthRequire ClientAuth = "require" // required and verified; the handshake fails without
)

// ACMEOptions are the certificates a TLS listener obtains over ACME.
type ACMEOptions struct {
	Names     []string // the certificates' names, one certificate each
	Directory string   // the CA's directory URL; default DefaultACMEDirectory
	Email     string   // the account's contact; optional
	CARoot    string   // PEM file trusted for the directory's HTTPS; "": the system's roots
	// HTTP01 and TLSALPN01 are the challenges offered. HTTP-01 is answered
	// on the plain listeners (HTTPAddress is the one the CA connects to);
	// TLS-ALPN-01 on the TLS listener itself.
	HTTP01, TLSALPN01 bool
	HTTPAddress       string
	// Storage is the directory of accounts, certificates and locks;
	// default DefaultACMEStorage.
	Storage string
	// RenewWindowPercent: a certificate is renewed once less than this
	// share of its lifetime is left. Default DefaultACMERenewWindowPercent.
	RenewWindowPercent int
	// RenewCheckInterval is how often certificates are checked for
	// renewal. Default DefaultACMERenewCheckInterval.
	RenewCheckInterval time.Duration
}

// ACME defaults.
const (
	// DefaultACMEDirectory is Let's Encrypt's production directory.
	DefaultACMEDirectory = certmagic.LetsEncryptProductionCA
	// DefaultACMEStorage is where accounts and certificates are kept; it
	// must be writable by webtier's user and survive restarts (the CA
	// limits how often a name may be issued).
	DefaultACMEStorage = "/var/lib/webtier/acme"
	// DefaultACMERenewCheckInterval is certmagic's.
	DefaultACMERenewCheckInterval = certmagic.DefaultRenewCheckInterval
)

// DefaultACMERenewWindowPercent is certmagic's renewal window: the last
// third of a certificate's lifetime.
var DefaultACMERenewWindowPercent = func() int {
	r := certmagic.DefaultRenewalWindowRatio
	return int(r*100 + 0.5)
}()

// RouteOptions map requests to an upstream. Routes are matched in order of
// specificity: an exact Host beats a wildcard Host beats any Host, and within
// the same Host the longest PathPrefix wins.
type RouteOptions struct {
	// Host matches the request's Host header without port, case-insensitive.
	// "" or "*" matches any host; "*.example.com" matches one or more labels
	// in front of example.com.
	Host string
	// PathPrefix matches the start of the URL path. Default "/".
	PathPrefix string
	// Upstream names an UpstreamOptions.Name.
	Upstream string
	// Static files and compression (proxy/static, proxy/compress).
	// Static, when set, serves the route from a directory instead of
	// Upstream (which is then empty). Compress, when set, compresses the
	// route's responses; nil: the listener's Compress.
	Static   *static.Options
	Compress *compress.Options

	// Upgrades are the protocols (Upgrade header values, matched
	// case-insensitively without a version) forwarded as upgrades. Nil:
	// DefaultUpgrades; empty: none. A request asking for another protocol
	// is forwarded as a plain request, without its Upgrade, Connection
	// tokens and HTTP2-Settings, and a 101 answer to it is a 502. "h2c" is
	// refused: the tunnel would carry later requests past routing,
	// X-Forwarded-* and every other rule.
	Upgrades []string

	// Rewrite is the route's rewrite rules (proxy/rules/rewrite):
	// remapping, ProxyPassReverse, redirects and rewrites. Nil: none. A
	// route whose rules answer every request (AnswersAll) needs no
	// Upstream.
	Rewrite *rewrite.Rules
	// Rules are the route's header rules, error pages, limits and access
	// control (rules.go). Nil: none.
	Rules *RouteRules
}

// DefaultUpgrades is RouteOptions.Upgrades when it is nil. Read only.
var DefaultUpgrades = []string{"websocket"}

// upgrades returns Upgrades with its default applied, in lower case.
func (ro RouteOptions) upgrades() []string {
	if ro.Upgrades == nil {
		return DefaultUpgrades
	}
	out := make([]string, len(ro.Upgrades))
	for i, u := range ro.Upgrades {
		out[i] = strings.ToLower(u)
	}
	return out
}

// UpstreamOptions describe one group of backends; see upstream.Options.
type UpstreamOptions = upstream.Options

// TargetOptions is one configured backend; see upstream.Target.
type TargetOptions = upstream.Target

// DrainState is the drain flag a frontend Server shares with every Handler
// it builds (Options.DrainState): the health endpoint fails while it is
// on. The zero value, and a nil one, is not draining.
type DrainState struct{ on atomic.Bool }

// Draining reports whether the drain is on.
func (d *DrainState) Draining() bool { return d != nil && d.on.Load() }

// Set turns the drain on or off.
func (d *DrainState) Set(on bool) { d.on.Store(on) }

// Engine picks whose protocol code serves a listener or an upstream; see
// upstream.Engine.
type Engine = upstream.Engine

// The engines; see upstream.EngineWebtier and upstream.EngineStd.
const (
	EngineWebtier = upstream.EngineWebtier
	EngineStd     = upstream.EngineStd
	DefaultEngine = upstream.DefaultEngine
)
