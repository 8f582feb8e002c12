package upstream

import (
	"fmt"
	"time"

	"github.com/webtier/webtier/proxy/internal/idlepool"
)

// Defaults applied to zero-valued Options fields.
const (
	// DefaultConnectTimeout is far below httpd's multi-second stall on a dead
	// ELB address: a TCP handshake on a healthy path inside a region takes
	// well under 10 ms, so 2 s only ever expires on a dead or black-holed
	// address.
	DefaultConnectTimeout        = 2 * time.Second
	DefaultResponseHeaderTimeout = 60 * time.Second
	// DefaultIdleConnTimeout is below the keep-alive timeout of Tomcat's
	// stock HTTP connector (keepAliveTimeout defaults to connectionTimeout,
	// 20 s in the server.xml Tomcat ships): webtier must drop an idle
	// connection before Tomcat does, or a request written as Tomcat closes
	// it fails (and a POST cannot be re-sent). Tomcat's AJP connector keeps
	// idle connections forever by default (connectionTimeout -1); 15 s
	// holds for it too, and for an AJP connector given the HTTP one's
	// connectionTimeout="20000", as is common.
	DefaultIdleConnTimeout = 15 * time.Second
	// DefaultMaxIdlePerAddress is no cap: an address keeps the connections
	// its load left idle (a burst of 500 concurrent requests leaves 500),
	// each until IdleConnTimeout, within the shared DefaultMaxIdleConns.
	// A fixed cap of 64 made every connection above it close after its
	// request and reopen for the next one: under HTTP/2 with 500 streams,
	// 47 % of requests paid a backend connect.
	DefaultMaxIdlePerAddress = 0
	// DefaultMaxIdleConns bounds the idle backend connections of all
	// upstreams together, and with them the memory and file descriptors
	// idle connections hold (see README, backends: about 1.2 KiB of Go
	// memory each for HTTP/1.1, the h1 client keeping no buffers while a
	// connection is idle, so about 5 MiB at the limit, and a descriptor
	// each). It is far above what a busy proxy keeps (one per request in
	// flight at the last peak) and below the 8192 connections a Tomcat NIO
	// connector accepts by default.
	DefaultMaxIdleConns = 4096
	DefaultWeight       = 1

	// DefaultFailuresToEject: one failed connect makes an address suspect
	// (no new requests) and starts re-probing it; the third consecutive
	// failure ejects it. Three is what L4 checkers and HAProxy ("fall 3")
	// use: one lost SYN or a backend's full accept queue does not eject,
	// while a dead address is out after about three connect timeouts.
	DefaultFailuresToEject  = 3
	DefaultEjectBackoffBase = 1 * time.Second
	DefaultEjectBackoffCap  = 60 * time.Second
	// DefaultMaintainInterval matches httpd's 60 s maintain pass, but the
	// pass only trusts a fresh DNS answer.
	DefaultMaintainInterval = 60 * time.Second
	DefaultRetryTries       = 3
	DefaultRetryBudget      = 10 * time.Second
	DefaultRescueGrace      = 1 * time.Second
	DefaultRaceDelay        = 250 * time.Millisecond
	DefaultSlowStart        = 0 * time.Second

	DefaultHealthInterval = 10 * time.Second
	DefaultHealthTimeout  = 2 * time.Second
	DefaultHealthFall     = 3
	DefaultHealthRise     = 2

	DefaultConsecutive5xx    = 5
	DefaultMaxEjectedPercent = 50
)

// Balance names a load-balancing algorithm.
type Balance string

// The balancing algorithms.
const (
	// BalanceLeastConn picks the address with the fewest requests in flight
	// relative to its weight (the default, as in the session load balancer
	// of the field reports); ties go round robin.
	BalanceLeastConn Balance = "least_conn"
	// BalanceRoundRobin cycles through the addresses, weighted.
	BalanceRoundRobin Balance = "round_robin"
	// BalanceRandomTwo picks two addresses at random and takes the less
	// loaded one (power of two choices).
	BalanceRandomTwo Balance = "random_two"
	// BalanceSticky sends a request whose session cookie ends in
	// ".<route>" to the target with that route (Tomcat's jvmRoute), and
	// balances the others least_conn.
	BalanceSticky Balance = "sticky"
	// BalanceHash picks by a hash of a header or, without one, the client
	// IP, so the same client keeps reaching the same address while the set
	// is stable.
	BalanceHash Balance = "hash"
)

// Options describe one group of backends.
type Options struct {
	Name    string
	Targets []Target
	// ConnectTimeout bounds one TCP (and TLS) connect to one address.
	// Default 2s.
	ConnectTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the response headers once the
	// request is written; expiry is answered 504. Default 60s.
	ResponseHeaderTimeout time.Duration
	// MaxRouteTimeout is the longest `timeout` of a route to this
	// upstream, which takes the place of ResponseHeaderTimeout for the
	// route's requests (backendconn.WithHeaderTimeout); zero when no
	// route has one, and then no request is looked at for one.
	MaxRouteTimeout time.Duration
	// IdleConnTimeout closes a pooled backend connection idle this long.
	// Default 15s; keep it below the backend's own keep-alive timeout
	// (Tomcat's stock HTTP connector: 20 s).
	IdleConnTimeout time.Duration
	// MaxIdlePerAddress, when positive, caps the pooled idle connections
	// of each backend address (the oldest makes room). Zero (the default)
	// sets no cap: an address keeps what its load left idle, each
	// connection until IdleConnTimeout, within IdleLimit. A negative value
	// keeps no idle connection (no keep-alive to the backend).
	MaxIdlePerAddress int
	// IdleLimit bounds the idle connections of every pool sharing it; the
	// proxy gives all its upstreams one (config does not set it). Nil: the
	// pool makes its own, of DefaultMaxIdleConns.
	IdleLimit *idlepool.Limit
	// HostHeader, when set, replaces the Host header sent to the backend.
	// Empty: the client's Host is passed through (httpd ProxyPreserveHost On).
	HostHeader string

	// Balance is the load-balancing algorithm. Empty means least_conn.
	Balance Balance
	// StickyCookie is the session cookie read by BalanceSticky. Default
	// JSESSIONID.
	StickyCookie string
	// HashHeader is the request header hashed by BalanceHash. Empty: the
	// client IP.
	HashHeader string
	// SlowStart ramps the share of a new or recovered address from 10% to
	// its full weight over this window. Zero: no ramp.
	SlowStart time.Duration

	// FailuresToEject is how many consecutive connect failures eject an
	// address. The first makes it suspect. Default 3.
	FailuresToEject int
	// EjectBackoffBase and EjectBackoffCap bound the jittered exponential
	// wait before an ejected address is probed again. Defaults 1s and 60s.
	EjectBackoffBase, EjectBackoffCap time.Duration
	// MaintainInterval is the period of the maintain pass, which re-resolves
	// every name and forgets ejected addresses the fresh answer no longer
	// contains. Default 60s.
	MaintainInterval time.Duration

	// RetryTries bounds how many addresses one request is tried on.
	// Default 3. 1 disables retries.
	RetryTries int
	// RetryBudget bounds the total time spent on retries of one request.
	// Default 10s.
	RetryBudget time.Duration
	// RetryIdempotent also retries idempotent requests without a body
	// (GET, HEAD, OPTIONS, TRACE) after they were sent, when the connection
	// broke before any response byte. Requests that never reached a backend
	// are always retried. Default false.
	RetryIdempotent bool
	// RescueGrace: when an address is ejected or leaves DNS, idempotent
	// requests in flight to it that have had no response byte for this long
	// are re-sent elsewhere and their connection closed. Default 1s.
	RescueGrace time.Duration
	// RaceDelay starts a connect to a second address when the first has not
	// connected after this long (RFC 8305 style); the first to connect wins.
	// Default 250ms. Negative disables racing.
	RaceDelay time.Duration

	// AJP configures ajp:// targets.
	AJP AJPOptions

	// Engine picks the client of http:// targets: EngineWebtier (the
	// default, "") webtier's own HTTP/1.1 client, EngineStd net/http's
	// Transport. https:// targets always use net/http's; ajp:// targets
	// always webtier's AJP client (there is no standard one). See engine.go.
	Engine Engine

	// TLS configures how https:// targets are verified and what client
	// certificate they get (backendtls.go). Nil: the system's roots and
	// each target's host name, no client certificate.
	TLS *TLSOptions
	// Protocol is the HTTP version spoken to http(s):// targets; empty
	// is DefaultProtocol (ProtocolAuto). See backendtls.go.
	Protocol Protocol

	// HealthCheck configures active checks; nil means none. For ajp://
	// targets the check is an AJP CPING/CPONG instead of an HTTP request.
	HealthCheck *HealthCheck

	// Consecutive5xx ejects an address after this many consecutive 5xx
	// responses or gateway failures (passive health). Default 5; negative
	// disables.
	Consecutive5xx int
	// Metrics receives the pool's counters; the proxy sets it (config does
	// not). Nil: counted but not exported.
	Metrics *Metrics
	// Timing makes the pool fill the Timing a request's context carries
	// (TimingContext); the proxy sets it when it logs or measures
	// requests (config does not). False: the pool never looks.
	Timing bool

	// MaxEjectedPercent bounds the share of an upstream's addresses that
	// passive health may eject at once. Zero means the default, 50; a
	// negative value lets passive health eject nothing.
	MaxEjectedPercent int
}

// AJPOptions configure the AJP13 client used for ajp:// targets.
type AJPOptions struct {
	// Secret must equal the secret of Tomcat's AJP Connector
	// (secretRequired="true" is Tomcat's default). Never logged.
	Secret string
	// PacketSize must equal packetSize on Tomcat's AJP Connector. Zero
	// means 8192, Tomcat's default; at most 65536.
	PacketSize int
	// CPingIdle: a pooled connection idle longer than this is checked with
	// CPING/CPONG before reuse. Zero means 10s; negative: never.
	CPingIdle time.Duration
	// RequestIDAttribute, when set, sends the request id header
	// (RequestIDHeader, canonical) as a request attribute of this name;
	// the proxy sets both from its request_id options (config does not
	// set them here).
	RequestIDAttribute, RequestIDHeader string
}

// HealthCheck configures the active HTTP health check of an upstream.
type HealthCheck struct {
	// Method and Path of the check request. Defaults GET and /.
	Method, Path string
	// Host header of the check. Empty: the target's host name.
	Host string
	// ExpectMin and ExpectMax bound the healthy status codes. Defaults
	// 200 and 399.
	ExpectMin, ExpectMax int
	// Interval between checks of one address. Default 10s.
	Interval time.Duration
	// Timeout of one check. Default 2s.
	Timeout time.Duration
	// Fall consecutive failures eject an address (the first makes it
	// suspect); Rise consecutive successes bring an ejected one back.
	// Defaults 3 and 2.
	Fall, Rise int
}

// Target is one configured backend: a hostname (re-resolved by TTL)
// or an IP literal, with a port.
type Target struct {
	// Scheme is "http", "https" or "ajp" (AJP13 to Tomcat).
	Scheme string
	// Host is a DNS name or an IP literal (no brackets).
	Host string
	// Port is the TCP port.
	Port uint16
	// Weight is the relative share of requests for this target's addresses.
	// Zero means DefaultWeight.
	Weight int
	// Backup targets take requests only when no primary address can.
	Backup bool
	// Route is the target's jvmRoute for BalanceSticky: a session cookie
	// ending in ".<Route>" goes to this target.
	Route string
}

// String hides the secret, so that printing options never leaks it.
func (o AJPOptions) String() string {
	secret := "<empty>"
	if o.Secret != "" {
		secret = "<set>"
	}
	return fmt.Sprintf("{Secret:%s PacketSize:%d CPingIdle:%v}", secret, o.PacketSize, o.CPingIdle)
}

// GoString hides the secret from %#v as well.
func (o AJPOptions) GoString() string { return "upstream.AJPOptions" + o.String() }
