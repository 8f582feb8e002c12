package upstream

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Reasons recorded for states an operator did not cause through a
// failure: kept as variables so that every endpoint points at one string.
var (
	reasonAdded         = "in dns answer"
	reasonConfigured    = "configured address"
	reasonTargetStandby = "operator (target in standby)"
)

// Balances are the valid values of Options.Balance, the default first.
var Balances = []Balance{BalanceLeastConn, BalanceRoundRobin, BalanceRandomTwo, BalanceSticky, BalanceHash}

// ParseBalance returns the Balance named s, or an error that lists the
// valid names.
func ParseBalance(s string) (Balance, error) {
	if b := Balance(s); slices.Contains(Balances, b) {
		return b, nil
	}
	names := make([]string, len(Balances))
	for i, b := range Balances {
		names[i] = string(b)
	}
	return "", fmt.Errorf("balance %q: want one of %s", s, strings.Join(names, ", "))
}

// SetBalance changes the balancing algorithm while the pool serves; the
// next pick uses it. Requests in flight are not moved.
func (p *Pool) SetBalance(b Balance) error {
	if _, err := ParseBalance(string(b)); err != nil {
		return err
	}
	p.balance.Store(&b)
	return nil
}

// SetTargetStandby puts every address of the target whose configured host
// is host in standby (or back to running), and keeps addresses that DNS
// adds to it later in the same state. It reports whether the pool has such
// a target.
func (p *Pool) SetTargetStandby(host string, standby bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	found := false
	for _, tg := range p.targets {
		if !strings.EqualFold(tg.Host, host) {
			continue
		}
		found = true
		tg.standby = standby
		for _, e := range tg.endpoints {
			if standby {
				p.setStateLocked(e, StateStandby, reasonTargetStandby)
			} else if e.State() == StateStandby {
				p.setStateLocked(e, StateRunning, "operator")
			}
		}
	}
	return found
}

// PoolStatus is a point-in-time view of a pool, for status pages.
type PoolStatus struct {
	Name    string         `json:"name"`
	Scheme  string         `json:"scheme"`
	Balance Balance        `json:"balance"`
	Panic   bool           `json:"panic"` // no address is healthy: every one is tried
	Targets []TargetStatus `json:"targets"`
}

// TargetStatus is one configured target and the addresses its name
// resolves to now.
type TargetStatus struct {
	Host      string          `json:"host"`
	Port      uint16          `json:"port"`
	Backup    bool            `json:"backup"`
	Literal   bool            `json:"literal"` // an IP address, not a name
	Standby   bool            `json:"standby"` // the whole target, by an operator
	Addresses []AddressStatus `json:"addresses"`
}

// AddressStatus is one backend address.
type AddressStatus struct {
	Address  string    `json:"address"`
	State    string    `json:"state"`
	Reason   string    `json:"reason"`
	Since    time.Time `json:"since"`
	InFlight int64     `json:"in_flight"`
	Total    uint64    `json:"total"` // tries sent since the address joined
	Weight   int       `json:"weight"`
}

// Status returns the pool's current view. It takes the pool's lock (not
// the request path's way in) for the list of targets; the figures are
// read from the same atomics the request path writes.
func (p *Pool) Status() PoolStatus {
	s := PoolStatus{Name: p.opts.Name, Scheme: p.Scheme(), Balance: *p.balance.Load(), Panic: p.panicking.Load()}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tg := range p.targets {
		ts := TargetStatus{Host: tg.Host, Port: tg.Port, Backup: tg.Backup, Literal: tg.isLiteral,
			Standby: tg.standby, Addresses: []AddressStatus{}}
		eps := make([]*Endpoint, 0, len(tg.endpoints))
		for _, e := range tg.endpoints {
			eps = append(eps, e)
		}
		slices.SortFunc(eps, func(a, b *Endpoint) int { return a.addr.Compare(b.addr) })
		for _, e := range eps {
			ts.Addresses = append(ts.Addresses, e.status())
		}
		s.Targets = append(s.Targets, ts)
	}
	return s
}

func (e *Endpoint) status() AddressStatus {
	a := AddressStatus{Address: e.hostport, State: e.State().String(), Since: time.Unix(0, e.since.Load()).UTC(),
		InFlight: e.inflight.Load(), Total: e.total.Load(), Weight: e.weight}
	if r := e.reason.Load(); r != nil {
		a.Reason = *r
	}
	return a
}
