package config

import "time"

// The raw structs below are the file format, key by key. They hold what was
// written, unchecked; check.go validates them and builds the option structs.
// To add a key: add a tagged field here, then one line in check.go that
// validates it and sets the option (its default comes from the runtime
// package's Default* constant).

// rawFile is the whole file.
type rawFile struct {
	loc
	Listeners field[[]rawListener]        `yaml:"listeners"`
	Routes    field[[]rawRoute]           `yaml:"routes"`
	Upstreams field[entries[rawUpstream]] `yaml:"upstreams"`
	Resolver  rawResolver                 `yaml:"resolver"`
	Logging   rawLogging                  `yaml:"logging"`
}

// rawListener is one item of listeners.
type rawListener struct {
	loc
	Address           field[string]          `yaml:"address"`             // required, host:port
	Name              field[string]          `yaml:"name"`                // default: the address
	TrustedProxies    field[[]field[string]] `yaml:"trusted_proxies"`     // CIDRs or IPs
	ReadHeaderTimeout field[time.Duration]   `yaml:"read_header_timeout"` // default proxy.DefaultReadHeaderTimeout
	IdleTimeout       field[time.Duration]   `yaml:"idle_timeout"`        // default proxy.DefaultClientIdleTimeout
}

func (rawListener) noun() string { return "listener" }

// rawRoute is one item of routes.
type rawRoute struct {
	loc
	Host     field[string] `yaml:"host"`     // "" or "*": any host
	Path     field[string] `yaml:"path"`     // default "/"
	Upstream field[string] `yaml:"upstream"` // required
}

func (rawRoute) noun() string { return "route" }

// rawUpstream is one value of the upstreams mapping.
type rawUpstream struct {
	loc
	Targets               field[[]rawTarget]   `yaml:"targets"`                 // required
	ConnectTimeout        field[time.Duration] `yaml:"connect_timeout"`         // default proxy.DefaultConnectTimeout
	ResponseHeaderTimeout field[time.Duration] `yaml:"response_header_timeout"` // default proxy.DefaultResponseHeaderTimeout
	IdleTimeout           field[time.Duration] `yaml:"idle_timeout"`            // default proxy.DefaultIdleConnTimeout
	MaxIdlePerAddress     field[int]           `yaml:"max_idle_per_address"`    // default proxy.DefaultMaxIdlePerAddress
	HostHeader            field[string]        `yaml:"host_header"`             // default: the client's Host
}

func (rawUpstream) noun() string { return "upstream" }

// rawTarget is one item of targets: either a URL string or a mapping.
type rawTarget struct {
	loc
	URL    field[string] `yaml:"url,short"` // required
	Weight field[int]    `yaml:"weight"`    // default 1
}

func (rawTarget) noun() string { return "target" }

// rawResolver is the resolver section.
type rawResolver struct {
	loc
	Nameservers      field[[]field[string]] `yaml:"nameservers"`
	ResolvConf       field[string]          `yaml:"resolv_conf"`
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

// rawLogging is the logging section.
type rawLogging struct {
	loc
	Level  field[string] `yaml:"level"`
	Format field[string] `yaml:"format"`
}
