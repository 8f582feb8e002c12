package proxy

import (
	"net/netip"
	"strings"
	"time"

	"github.com/webtier/webtier/proxy/h2"
	"github.com/webtier/webtier/proxy/upstream"
)

// Defaults applied to zero-valued option fields. config uses the same values
// so that README, `webtier validate` and the runtime agree.
const (
	DefaultConnectTimeout        = upstream.DefaultConnectTimeout
	DefaultResponseHeaderTimeout = upstream.DefaultResponseHeaderTimeout
	DefaultIdleConnTimeout       = upstream.DefaultIdleConnTimeout
	DefaultMaxIdlePerAddress     = upstream.DefaultMaxIdlePerAddress

	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultClientIdleTimeout is above the 60 s idle timeout of an AWS
	// load balancer (ALB and CLB default): the balancer, not webtier, must
	// close an idle connection, or it may send a request on a connection
	// webtier is closing and answer the client 502. 75 s is nginx's
	// keepalive_timeout default (httpd's KeepAliveTimeout is 5 s, written
	// for clients, not for a balancer in front).
	DefaultClientIdleTimeout = 75 * time.Second
	DefaultShutdownTimeout   = 30 * time.Second

	// Request head limits, as httpd's LimitRequestLine (8190),
	// LimitRequestFieldSize (8190) and LimitRequestFields (100); the whole
	// head is bounded too, and with it the memory a connection holds while
	// its head is read.
	DefaultMaxRequestLine     = 8192
	DefaultMaxHeaderFieldSize = 8192
	DefaultMaxHeaderFields    = h2.DefaultMaxHeaderFields // 100
	DefaultMaxHeaderSize      = h2.DefaultMaxHeaderBytes  // 64 KiB

	// Request body and response write timeouts: mod_reqtimeout's
	// body=20,MinRate=500, and nginx's send_timeout (httpd's Timeout).
	DefaultBodyTimeout  = 20 * time.Second
	DefaultBodyMinRate  = 500
	DefaultWriteTimeout = h2.DefaultWriteTimeout // 60 s
)

// Options is the validated, runtime form of the proxy part of a config file.
type Options struct {
	Listeners []ListenerOptions
	Routes    []RouteOptions
	Upstreams []UpstreamOptions

	// Metrics receives the upstream pools' counters; cmd sets it once per
	// process (config does not). Nil: counted but not exported.
	Metrics *upstream.Metrics
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
	// own HTTP/1 server and, on TLS, its own HTTP/2 server (proxy/h2);
	// EngineStd net/http's HTTP/1 and HTTP/2 servers, with the same limits
	// and timeouts (stdserver.go). A change waits for a restart.
	Engine Engine
	// TLS, when set, makes the listener serve HTTPS only: TLS 1.2 or later,
	// with HTTP/2 and HTTP/1.1 offered by ALPN. Nil: plain HTTP/1.1.
	TLS *TLSOptions
}

// TLSOptions are a listener's certificate and key. Both are PEM files, read
// once when Server.Listen runs: a renewed certificate takes effect at the
// next start.
type TLSOptions struct {
	// CertFile holds the server certificate, then any intermediates.
	CertFile string
	// KeyFile holds the certificate's private key (PKCS #1, PKCS #8 or
	// SEC 1 EC), unencrypted.
	KeyFile string
}

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
	// Upgrades are the protocols (Upgrade header values, matched
	// case-insensitively without a version) forwarded as upgrades. Nil:
	// DefaultUpgrades; empty: none. A request asking for another protocol
	// is forwarded as a plain request, without its Upgrade, Connection
	// tokens and HTTP2-Settings, and a 101 answer to it is a 502. "h2c" is
	// refused: the tunnel would carry later requests past routing,
	// X-Forwarded-* and every other rule.
	Upgrades []string
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
