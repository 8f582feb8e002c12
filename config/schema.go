package config

import "time"

// The raw structs below are the file format, key by key. They hold what was
// written, unchecked; the checker (check.go, and one file per section:
// proxy.go, resilience.go, resolver.go, tls.go, ajp.go, health.go,
// operations.go) validates them and builds the option structs. To add a
// key: add a tagged field here, then the line in its section's file that
// validates it and sets the option (its default comes from the runtime
// package's Default* constant, never a copy).

// rawFile is the whole file.
type rawFile struct {
	loc
	Listeners field[[]rawListener]        `yaml:"listeners"`
	Routes    field[[]rawRoute]           `yaml:"routes"`
	Upstreams field[entries[rawUpstream]] `yaml:"upstreams"`
	Resolver  rawResolver                 `yaml:"resolver"`
	Logging   rawLogging                  `yaml:"logging"`
	Drain     rawDrain                    `yaml:"drain"`
	AccessLog rawAccessLog                `yaml:"access_log"`
	RequestID rawRequestID                `yaml:"request_id"`
	Admin     field[rawAdmin]             `yaml:"admin"` // absent: no admin listener
	Backends  rawBackends                 `yaml:"backends"`
}

// rawListener is one item of listeners.
type rawListener struct {
	loc
	Address            field[string]          `yaml:"address"`               // required, host:port
	Name               field[string]          `yaml:"name"`                  // default: the address
	TrustedProxies     field[[]field[string]] `yaml:"trusted_proxies"`       // CIDRs or IPs
	ReadHeaderTimeout  field[time.Duration]   `yaml:"read_header_timeout"`   // default proxy.DefaultReadHeaderTimeout
	IdleTimeout        field[time.Duration]   `yaml:"idle_timeout"`          // default proxy.DefaultClientIdleTimeout
	MaxRequestLine     field[int]             `yaml:"max_request_line"`      // default proxy.DefaultMaxRequestLine
	MaxHeaderFieldSize field[int]             `yaml:"max_header_field_size"` // default proxy.DefaultMaxHeaderFieldSize
	MaxHeaderFields    field[int]             `yaml:"max_header_fields"`     // default proxy.DefaultMaxHeaderFields
	MaxHeaderSize      field[int]             `yaml:"max_header_size"`       // default proxy.DefaultMaxHeaderSize
	BodyTimeout        field[time.Duration]   `yaml:"body_timeout"`          // default proxy.DefaultBodyTimeout
	BodyMinRate        field[int]             `yaml:"body_min_rate"`         // default proxy.DefaultBodyMinRate
	WriteTimeout       field[time.Duration]   `yaml:"write_timeout"`         // default proxy.DefaultWriteTimeout
	TLS                field[rawTLS]          `yaml:"tls"`                   // absent: plain HTTP
	Engine             field[string]          `yaml:"engine"`                // default proxy.DefaultEngine; WEBTIER_ENGINE overrides
	// default false: header names with "_" are dropped
	KeepUnderscoreHeaders field[bool] `yaml:"keep_underscore_headers"`
	// TLS (config/tls.go): plain listeners only; default false
	RedirectHTTPS field[bool] `yaml:"redirect_https"`

	// The health endpoint for the balancer in front (config/health.go).
	HealthPath       field[string]          `yaml:"health_path"`        // default proxy.DefaultHealthPath; "": none
	HealthFailStatus field[int]             `yaml:"health_fail_status"` // default proxy.DefaultHealthFailStatus
	HealthRequires   field[[]field[string]] `yaml:"health_requires"`    // upstream names; default none

	// Compression (config/static.go): the default of the listener's routes.
	Compress field[rawCompress] `yaml:"compress"` // absent: off
	// Header rules and error pages (issue 21; config/rules.go): defaults
	// for every route served on this listener.
	ServerHeader    field[string]                 `yaml:"server_header"`    // absent: as the backend sent it; "": none
	RequestHeaders  field[rawHeaderRules]         `yaml:"request_headers"`  // applied before the route's
	ResponseHeaders field[rawHeaderRules]         `yaml:"response_headers"` // applied before the route's
	SecurityHeaders field[bool]                   `yaml:"security_headers"` // default false; a route's value wins
	ErrorPages      field[entries[field[string]]] `yaml:"error_pages"`      // status: file; a route's entries win
	// The client's address (config/proxyprotocol.go).
	ProxyProtocol   field[rawProxyProtocol] `yaml:"proxy_protocol"`   // absent: off
	ForwardedHeader field[bool]             `yaml:"forwarded_header"` // default false
}

// rawProxyProtocol is listeners[].proxy_protocol: the PROXY protocol
// header (v1 or v2) that an NLB or L4 balancer puts before the
// connection's first bytes.
type rawProxyProtocol struct {
	loc
	From    field[[]field[string]] `yaml:"from"`    // required: CIDRs or IPs of the balancer
	Timeout field[time.Duration]   `yaml:"timeout"` // default proxy.DefaultProxyHeaderTimeout
}

func (rawListener) noun() string { return "listener" }

// rawTLS is listeners[].tls: certificates from PEM files (cert_file and
// key_file, and/or certificates), from ACME, or both; at least one.
type rawTLS struct {
	loc
	CertFile     field[string]           `yaml:"cert_file"`      // the certificate, then its intermediates
	KeyFile      field[string]           `yaml:"key_file"`       // its private key
	Certificates field[[]rawCertificate] `yaml:"certificates"`   // more, chosen by SNI; the first overall is the default
	ACME         field[rawACME]          `yaml:"acme"`           // absent: no ACME
	MinVersion   field[string]           `yaml:"min_version"`    // "1.2" (default) or "1.3"
	ClientCAFile field[string]           `yaml:"client_ca_file"` // PEM CAs for client certificates; needs client_auth
	ClientAuth   field[string]           `yaml:"client_auth"`    // off (default), request, require
	HSTS         field[time.Duration]    `yaml:"hsts"`           // Strict-Transport-Security max-age; absent: none
}

// rawCertificate is one item of listeners[].tls.certificates.
type rawCertificate struct {
	loc
	CertFile field[string] `yaml:"cert_file"`
	KeyFile  field[string] `yaml:"key_file"`
}

func (rawCertificate) noun() string { return "certificate" }

// rawACME is listeners[].tls.acme: certificates obtained and renewed by
// certmagic from an ACME CA.
type rawACME struct {
	loc
	Names              field[[]field[string]] `yaml:"names"`                // required
	Directory          field[string]          `yaml:"directory"`            // default proxy.DefaultACMEDirectory
	Email              field[string]          `yaml:"email"`                // default none
	CARoot             field[string]          `yaml:"ca_root"`              // PEM file trusted for the directory's HTTPS; default: system roots
	Challenges         field[[]field[string]] `yaml:"challenges"`           // http-01, tls-alpn-01; default both (http-01 only with a plain listener)
	Storage            field[string]          `yaml:"storage"`              // default proxy.DefaultACMEStorage
	RenewWindowPercent field[int]             `yaml:"renew_window_percent"` // default proxy.DefaultACMERenewWindowPercent
	RenewCheckInterval field[time.Duration]   `yaml:"renew_check_interval"` // default proxy.DefaultACMERenewCheckInterval
}

// rawRoute is one item of routes.
type rawRoute struct {
	loc
	Host     field[string] `yaml:"host"`     // "" or "*": any host
	Path     field[string] `yaml:"path"`     // default "/"
	Upstream field[string] `yaml:"upstream"` // required
	// default proxy.DefaultUpgrades; h2c refused
	Upgrades field[[]field[string]] `yaml:"upgrades"`

	// Rewrite rules (config/rewrite.go, proxy/rules/rewrite): ProxyPass
	// remapping comes from the upstream's target path; these add
	// ProxyPassReverse, Redirect, RedirectMatch and RewriteRule.
	Reverse   field[rawReverse]         `yaml:"reverse"`   // default: on
	Redirect  field[rawRedirect]        `yaml:"redirect"`  // absent: none
	Redirects field[[]rawRedirectMatch] `yaml:"redirects"` // default none; first match wins
	Rewrites  field[[]rawRewrite]       `yaml:"rewrites"`  // default none; in order
	// Header rules, error pages, limits and access control (issue 21
	// points 4, 7, 8; config/rules.go, proxy/rules/).
	RequestHeaders    field[rawHeaderRules]         `yaml:"request_headers"`     // added to the listener's
	ResponseHeaders   field[rawHeaderRules]         `yaml:"response_headers"`    // added to the listener's
	SecurityHeaders   field[bool]                   `yaml:"security_headers"`    // default: the listener's (false)
	ErrorPages        field[entries[field[string]]] `yaml:"error_pages"`         // status (404, 502, 503, 504): file
	ErrorPagesBackend field[bool]                   `yaml:"error_pages_backend"` // default false: a backend's 5xx passes as sent
	MaxBodySize       field[string]                 `yaml:"max_body_size"`       // default none; 10MiB, 512k, 1048576
	Timeout           field[time.Duration]          `yaml:"timeout"`             // default: the upstream's response_header_timeout
	Allow             field[[]field[string]]        `yaml:"allow"`               // CIDRs or IPs; default: everyone
	Deny              field[[]field[string]]        `yaml:"deny"`                // CIDRs or IPs; default: nobody
	BasicAuth         field[rawBasicAuth]           `yaml:"basic_auth"`          // absent: no authentication
	RateLimit         field[rawRateLimit]           `yaml:"rate_limit"`          // absent: no limit
	// Static files and compression (config/static.go).
	Static   field[rawStatic]   `yaml:"static"`   // absent: proxied; exactly one of static and upstream
	Compress field[rawCompress] `yaml:"compress"` // absent: the listener's compress, else off
}

func (rawRoute) noun() string { return "route" }

// rawStatic is routes[].static: the route is served from a directory
// (httpd's DocumentRoot, Alias) instead of an upstream.
type rawStatic struct {
	loc
	Root           field[string]          `yaml:"root"`            // required, a directory
	Index          field[[]field[string]] `yaml:"index"`           // default static.DefaultIndex; []: none
	Dotfiles       field[bool]            `yaml:"dotfiles"`        // default false
	FollowSymlinks field[bool]            `yaml:"follow_symlinks"` // default false
	Precompressed  field[bool]            `yaml:"precompressed"`   // default static.DefaultPrecompressed
	Listing        field[bool]            `yaml:"listing"`         // default false
}

// rawCompress is routes[].compress and listeners[].compress (httpd's
// mod_deflate). Writing the key, even as an empty mapping, turns
// compression on.
type rawCompress struct {
	loc
	Types     field[[]field[string]] `yaml:"types"`     // default compress.DefaultTypes
	MinSize   field[int]             `yaml:"min_size"`  // default compress.DefaultMinSize
	Encodings field[[]field[string]] `yaml:"encodings"` // default compress.DefaultEncodings
}

// rawHeaderRules is request_headers or response_headers, on a route or a
// listener. Values may hold {client_ip}, {request_id}, {scheme}, {host}.
type rawHeaderRules struct {
	loc
	Set   field[entries[field[string]]] `yaml:"set"`   // name: value; replaces every field of that name
	Add   field[entries[field[string]]] `yaml:"add"`   // name: value; one more field
	Unset field[[]field[string]]        `yaml:"unset"` // names
	Edit  field[[]rawHeaderEdit]        `yaml:"edit"`  // regex replace in the values of one name
}

// rawHeaderEdit is one item of edit: match is an RE2 regular expression,
// replace may use $1 or ${name}.
type rawHeaderEdit struct {
	loc
	Name    field[string] `yaml:"name"`    // required
	Match   field[string] `yaml:"match"`   // required
	Replace field[string] `yaml:"replace"` // default ""
}

func (rawHeaderEdit) noun() string { return "header edit" }

// rawBasicAuth is routes[].basic_auth.
type rawBasicAuth struct {
	loc
	Realm        field[string] `yaml:"realm"`         // default proxy/rules/access.DefaultRealm
	HtpasswdFile field[string] `yaml:"htpasswd_file"` // required; bcrypt entries only (htpasswd -B)
	ForwardAuth  field[bool]   `yaml:"forward_auth"`  // default false: Authorization is not forwarded
}

// rawRateLimit is routes[].rate_limit: a token bucket per client address.
type rawRateLimit struct {
	loc
	RequestsPerSecond field[string] `yaml:"requests_per_second"` // required, > 0; may be a fraction (0.5)
	Burst             field[int]    `yaml:"burst"`               // default: requests_per_second rounded up
	MaxClients        field[int]    `yaml:"max_clients"`         // default access.DefaultMaxClients
}

// rawReverse is routes[].reverse: ProxyPassReverse and
// ProxyPassReverseCookieDomain/Path.
type rawReverse struct {
	loc
	Enabled      field[bool]            `yaml:"enabled"`       // default true
	CookieDomain field[entries[string]] `yaml:"cookie_domain"` // backend domain: client domain; default none
	CookiePath   field[entries[string]] `yaml:"cookie_path"`   // backend path prefix: client prefix; default the remap
}

// rawRedirect is routes[].redirect: every request of the route is
// redirected, the rest of its path after the route's path appended to to.
type rawRedirect struct {
	loc
	To     field[string] `yaml:"to"`     // required (but for status 410)
	Status field[int]    `yaml:"status"` // default rewrite.DefaultRedirectStatus
}

// rawRedirectMatch is one item of routes[].redirects (RedirectMatch).
type rawRedirectMatch struct {
	loc
	Match  field[string] `yaml:"match"`  // required: RE2 on the escaped path
	To     field[string] `yaml:"to"`     // required (but for status 410); $1..$9
	Status field[int]    `yaml:"status"` // default rewrite.DefaultRedirectStatus
}

// rawRewrite is one item of routes[].rewrites (RewriteRule + RewriteCond).
type rawRewrite struct {
	loc
	Match field[string]          `yaml:"match"` // required: RE2 on the escaped path
	To    field[string]          `yaml:"to"`    // required ("-": unchanged); $N, %N
	When  field[[]rawCondition]  `yaml:"when"`  // default none; all must hold
	Flags field[[]field[string]] `yaml:"flags"` // L, R[=code], QSA, NE, F, G
}

// rawCondition is one item of routes[].rewrites[].when: exactly one of
// host, path, query, header (with match), method or client.
type rawCondition struct {
	loc
	Host   field[string] `yaml:"host"`   // RE2 on the Host without port
	Path   field[string] `yaml:"path"`   // RE2 on the escaped path
	Query  field[string] `yaml:"query"`  // RE2 on the raw query
	Header field[string] `yaml:"header"` // a header name; match is the RE2
	Match  field[string] `yaml:"match"`  // with header: RE2 on its value
	Method field[string] `yaml:"method"` // RE2 on the method
	Client field[string] `yaml:"client"` // CIDR or IP: the client address
	Negate field[bool]   `yaml:"negate"` // default false
	Or     field[bool]   `yaml:"or"`     // default false: this condition or the next (RewriteCond [OR])
}

// rawUpstream is one value of the upstreams mapping.
type rawUpstream struct {
	loc
	Targets               field[[]rawTarget]    `yaml:"targets"`                 // required
	ConnectTimeout        field[time.Duration]  `yaml:"connect_timeout"`         // default proxy.DefaultConnectTimeout
	ResponseHeaderTimeout field[time.Duration]  `yaml:"response_header_timeout"` // default proxy.DefaultResponseHeaderTimeout
	IdleTimeout           field[time.Duration]  `yaml:"idle_timeout"`            // default proxy.DefaultIdleConnTimeout
	MaxIdlePerAddress     field[int]            `yaml:"max_idle_per_address"`    // default proxy.DefaultMaxIdlePerAddress (no cap); 0: no keep-alive
	HostHeader            field[string]         `yaml:"host_header"`             // default: the client's Host
	Balance               field[string]         `yaml:"balance"`                 // default least_conn
	StickyCookie          field[string]         `yaml:"sticky_cookie"`           // default JSESSIONID; balance: sticky only
	HashHeader            field[string]         `yaml:"hash_header"`             // default: the client IP; balance: hash only
	SlowStart             field[time.Duration]  `yaml:"slow_start"`              // default upstream.DefaultSlowStart (off); 0s: off
	MaintainInterval      field[time.Duration]  `yaml:"maintain_interval"`       // default upstream.DefaultMaintainInterval
	Ejection              rawEjection           `yaml:"ejection"`
	Retries               rawRetries            `yaml:"retries"`
	RaceDelay             field[time.Duration]  `yaml:"race_delay"`   // default upstream.DefaultRaceDelay; 0s: off
	AJP                   field[rawAJP]         `yaml:"ajp"`          // ajp:// targets only
	HealthCheck           field[rawHealthCheck] `yaml:"health_check"` // absent: no active check
	Outlier               rawOutlier            `yaml:"outlier"`
	Engine                field[string]         `yaml:"engine"` // default proxy.DefaultEngine; WEBTIER_ENGINE overrides
	// HTTPS and HTTP/2 to backends (config/upstreamtls.go).
	TLS      field[rawUpstreamTLS] `yaml:"tls"`      // https:// targets only; absent: system roots, the target's name
	Protocol field[string]         `yaml:"protocol"` // default upstream.DefaultProtocol (auto)
}

func (rawUpstream) noun() string { return "upstream" }

// rawUpstreamTLS is upstreams.<name>.tls: how webtier verifies an https://
// backend and what certificate it presents to it.
type rawUpstreamTLS struct {
	loc
	CAFile             field[string] `yaml:"ca_file"`              // PEM roots; default: the system's
	ServerName         field[string] `yaml:"server_name"`          // default: each target's host name
	CertFile           field[string] `yaml:"cert_file"`            // client certificate; with key_file
	KeyFile            field[string] `yaml:"key_file"`             // its private key
	InsecureSkipVerify field[bool]   `yaml:"insecure_skip_verify"` // default false; logged loudly when true
}

// rawTarget is one item of targets: either a URL string or a mapping.
type rawTarget struct {
	loc
	URL    field[string] `yaml:"url,short"` // required
	Weight field[int]    `yaml:"weight"`    // default 1
	Route  field[string] `yaml:"route"`     // jvmRoute for balance: sticky; default none
	Backup field[bool]   `yaml:"backup"`    // default false
}

func (rawTarget) noun() string { return "target" }

// rawEjection is upstreams.<name>.ejection: when connect failures eject an
// address and how long it stays out.
type rawEjection struct {
	loc
	Failures    field[int]           `yaml:"failures"`     // default upstream.DefaultFailuresToEject
	BackoffBase field[time.Duration] `yaml:"backoff_base"` // default upstream.DefaultEjectBackoffBase
	BackoffCap  field[time.Duration] `yaml:"backoff_cap"`  // default upstream.DefaultEjectBackoffCap
}

// rawRetries is upstreams.<name>.retries.
type rawRetries struct {
	loc
	Tries       field[int]           `yaml:"tries"`        // default upstream.DefaultRetryTries
	Budget      field[time.Duration] `yaml:"budget"`       // default upstream.DefaultRetryBudget
	Idempotent  field[bool]          `yaml:"idempotent"`   // default false
	RescueGrace field[time.Duration] `yaml:"rescue_grace"` // default upstream.DefaultRescueGrace; 0s: off
}

// rawAJP is upstreams.<name>.ajp: the AJP13 client of ajp:// targets. Its
// values must match Tomcat's AJP Connector.
type rawAJP struct {
	loc
	Secret         field[string]        `yaml:"secret"`          // the connector's secret; never printed
	SecretFile     field[string]        `yaml:"secret_file"`     // file holding the secret, read at load; not with secret
	SecretRequired field[bool]          `yaml:"secret_required"` // default true, as Tomcat's secretRequired
	PacketSize     field[int]           `yaml:"packet_size"`     // default ajp.DefaultPacketSize
	CPingIdle      field[time.Duration] `yaml:"cping_idle"`      // default ajp.DefaultCPingIdle; 0s: never
}

// rawHealthCheck is upstreams.<name>.health_check. Writing the key, even as
// an empty mapping, turns the active check on.
type rawHealthCheck struct {
	loc
	Method       field[string]        `yaml:"method"`        // default GET
	Path         field[string]        `yaml:"path"`          // default /
	Host         field[string]        `yaml:"host"`          // default: the target's host name
	ExpectStatus field[string]        `yaml:"expect_status"` // default 200-399
	Interval     field[time.Duration] `yaml:"interval"`      // default upstream.DefaultHealthInterval
	Timeout      field[time.Duration] `yaml:"timeout"`       // default upstream.DefaultHealthTimeout
	Fall         field[int]           `yaml:"fall"`          // default upstream.DefaultHealthFall
	Rise         field[int]           `yaml:"rise"`          // default upstream.DefaultHealthRise
}

// rawOutlier is upstreams.<name>.outlier: passive health from responses.
type rawOutlier struct {
	loc
	Consecutive5xx    field[int] `yaml:"consecutive_5xx"`     // default upstream.DefaultConsecutive5xx; 0: off
	MaxEjectedPercent field[int] `yaml:"max_ejected_percent"` // default upstream.DefaultMaxEjectedPercent
}

// rawResolver is the resolver section.
type rawResolver struct {
	loc
	Nameservers      field[[]field[string]] `yaml:"nameservers"`
	ResolvConf       field[string]          `yaml:"resolv_conf"`
	HostsFile        field[string]          `yaml:"hosts_file"` // default resolver.DefaultHostsFile
	Search           field[[]field[string]] `yaml:"search"`
	Ndots            field[int]             `yaml:"ndots"`
	MinTTL           field[time.Duration]   `yaml:"min_ttl"`
	MaxTTL           field[time.Duration]   `yaml:"max_ttl"`
	Stale            field[time.Duration]   `yaml:"stale"`
	NegativeHold     field[time.Duration]   `yaml:"negative_hold"`
	QueryTimeout     field[time.Duration]   `yaml:"query_timeout"`
	Attempts         field[int]             `yaml:"attempts"`
	Family           field[string]          `yaml:"family"`
	RefreshNowMinGap field[time.Duration]   `yaml:"refresh_now_min_gap"`
	IdleTimeout      field[time.Duration]   `yaml:"idle_timeout"`
}

// rawDrain is the drain section: what SIGTERM does.
type rawDrain struct {
	loc
	Wait    field[time.Duration] `yaml:"wait"`    // default proxy.DefaultDrainWait; 0s: no wait
	Timeout field[time.Duration] `yaml:"timeout"` // default proxy.DefaultDrainTimeout
}

// rawBackends is the backends section: limits shared by every upstream.
type rawBackends struct {
	loc
	MaxIdle field[int] `yaml:"max_idle"` // default proxy.DefaultMaxIdleBackendConns
}

// rawLogging is the logging section.
type rawLogging struct {
	loc
	Level  field[string] `yaml:"level"`
	Format field[string] `yaml:"format"`
}

// rawAccessLog is the access_log section.
type rawAccessLog struct {
	loc
	Format field[string] `yaml:"format"` // default accesslog.DefaultFormat; off: none
	Path   field[string] `yaml:"path"`   // default accesslog.DefaultPath; stdout, stderr or a file
}

// rawRequestID is the request_id section.
type rawRequestID struct {
	loc
	Enabled      field[bool]   `yaml:"enabled"`       // default true
	Header       field[string] `yaml:"header"`        // default proxy.DefaultRequestIDHeader
	AJPAttribute field[string] `yaml:"ajp_attribute"` // default none
}

// rawAdmin is the admin section. Writing the key, even as an empty
// mapping, turns the admin listener on.
type rawAdmin struct {
	loc
	Address   field[string] `yaml:"address"`    // default admin.DefaultAddress
	Token     field[string] `yaml:"token"`      // required off loopback; never printed
	TokenFile field[string] `yaml:"token_file"` // file holding the token; not with token
}
