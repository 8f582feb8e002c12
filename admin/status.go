package admin

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/webtier/webtier/proxy/upstream"
)

// Status is the JSON of GET /api/status. Field names are part of the admin
// API: add, never rename.
type Status struct {
	Version    string           `json:"version,omitempty"`
	Now        time.Time        `json:"now"`
	Config     *ConfigInfo      `json:"config,omitempty"`
	Drain      DrainStatus      `json:"drain"`
	LogLevel   string           `json:"log_level,omitempty"`
	Upstreams  []UpstreamStatus `json:"upstreams"`
	Names      []NameStatus     `json:"names"`
	DNSChanges []DNSChange      `json:"dns_changes"`
}

// DrainStatus says whether the process drains.
type DrainStatus struct {
	Available bool `json:"available"` // false: drain actions answer 501
	Draining  bool `json:"draining"`
}

// UpstreamStatus is a pool with its totals.
type UpstreamStatus struct {
	upstream.PoolStatus
	InFlight int64  `json:"in_flight"`
	Total    uint64 `json:"total"` // tries sent to the addresses in the current answers
}

// NameStatus is one name of the DNS cache.
type NameStatus struct {
	Name        string       `json:"name"`
	Addresses   []netip.Addr `json:"addresses"`
	TTLSeconds  float64      `json:"ttl_seconds"`
	TTLLeft     float64      `json:"ttl_left_seconds"` // until the answer's TTL runs out; 0 when stale or empty
	AgeSeconds  float64      `json:"age_seconds"`      // since the answer came; 0 when stale or empty
	NextRefresh *time.Time   `json:"next_refresh,omitempty"`
	Stale       bool         `json:"stale"`
	Source      string       `json:"source"`
	Error       string       `json:"error,omitempty"`
}

// DNSChange is one change of a name's address set.
type DNSChange struct {
	At         time.Time    `json:"at"`
	Name       string       `json:"name"`
	Old        []netip.Addr `json:"old"`
	New        []netip.Addr `json:"new"`
	TTLSeconds float64      `json:"ttl_seconds"`
	Source     string       `json:"source"`
}

// Snapshot gathers the status. It takes each pool's lock briefly (not the
// request path's way in) and reads the DNS cache without a lock.
func (c Controls) Snapshot() Status {
	st := Status{Version: c.Version, Now: time.Now().UTC(), Upstreams: []UpstreamStatus{},
		Names: []NameStatus{}, DNSChanges: []DNSChange{}}
	if c.Config != nil {
		ci := c.Config()
		st.Config = &ci
	}
	if c.Drainer != nil {
		st.Drain = DrainStatus{Available: true, Draining: c.Drainer.Draining()}
	}
	if c.Level != nil {
		st.LogLevel = c.Level.Level().String()
	}
	if c.Pools != nil {
		for _, p := range c.Pools() {
			u := UpstreamStatus{PoolStatus: p.Status()}
			for _, t := range u.Targets {
				for _, a := range t.Addresses {
					u.InFlight += a.InFlight
					u.Total += a.Total
				}
			}
			st.Upstreams = append(st.Upstreams, u)
		}
	}
	if c.Names != nil {
		for _, n := range c.Names.Names() {
			ns := NameStatus{Name: n.Name, Addresses: n.Addrs, TTLSeconds: n.TTL.Seconds(),
				AgeSeconds: n.Age.Seconds(), Stale: n.Stale, Source: n.Source, Error: n.Error}
			if ns.Addresses == nil {
				ns.Addresses = []netip.Addr{}
			}
			if n.Age > 0 {
				ns.TTLLeft = max(0, (n.TTL - n.Age).Seconds())
			}
			if !n.NextRefresh.IsZero() {
				t := n.NextRefresh
				ns.NextRefresh = &t
			}
			st.Names = append(st.Names, ns)
		}
		for _, ch := range c.Names.Changes() {
			st.DNSChanges = append(st.DNSChanges, DNSChange{At: ch.At.UTC(), Name: ch.Name, Old: nonNil(ch.Old),
				New: nonNil(ch.New), TTLSeconds: ch.TTL.Seconds(), Source: ch.Source})
		}
	}
	return st
}

func nonNil(a []netip.Addr) []netip.Addr {
	if a == nil {
		return []netip.Addr{}
	}
	return a
}

func (k *control) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, k.c.Snapshot())
}
