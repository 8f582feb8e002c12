package resolver

import (
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// NameStatus is one cached name as a status page shows it.
type NameStatus struct {
	Name  string       `json:"name"`
	Addrs []netip.Addr `json:"addresses"`
	// TTL is the clamped TTL of the current answer.
	TTL time.Duration `json:"-"`
	// Age is how long ago the current answer came; zero when the answer
	// is stale or empty (then Error says why).
	Age time.Duration `json:"-"`
	// NextRefresh is when the name is to be asked again; zero before the
	// first answer and for IP literals.
	NextRefresh time.Time `json:"next_refresh"`
	Stale       bool      `json:"stale"`
	Source      string    `json:"source"` // dns, hosts file, localhost
	Error       string    `json:"error,omitempty"`
}

// Names returns every name in the cache, sorted, read without a lock from
// the snapshots Lookup reads. IP literals are left out.
func (r *Resolver) Names() []NameStatus {
	names := r.names.Load()
	if names == nil {
		return nil
	}
	now := time.Now()
	out := make([]NameStatus, 0, len(*names))
	for name, e := range *names {
		if e.literal.IsValid() {
			continue
		}
		ns := NameStatus{Name: name, Source: SourceDNS}
		if s := e.snap.Load(); s != nil {
			ns.Addrs, ns.TTL, ns.Stale = s.ans.Addrs, s.ans.TTL, s.ans.Stale
			if !s.at.IsZero() {
				ns.Age = now.Sub(s.at)
			}
			if s.source != "" {
				ns.Source = s.source
			}
			if s.err != nil {
				ns.Error = s.err.Error()
			}
		}
		if n := e.nextAt.Load(); n != 0 {
			ns.NextRefresh = time.Unix(0, n).UTC()
		}
		out = append(out, ns)
	}
	slices.SortFunc(out, func(a, b NameStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Change is one change of a name's address set.
type Change struct {
	At     time.Time     `json:"at"`
	Name   string        `json:"name"`
	Old    []netip.Addr  `json:"old"`
	New    []netip.Addr  `json:"new"`
	TTL    time.Duration `json:"-"`
	Source string        `json:"source"`
}

// changeRingSize bounds the changes kept: enough to see the last few moves
// of every name of a usual config, a few KiB at most.
const changeRingSize = 32

// changeRing keeps the last changeRingSize changes. It is written by the
// refresh goroutines (never by the request path), so a mutex is enough.
type changeRing struct {
	mu   sync.Mutex
	buf  [changeRingSize]Change
	next int // index of the next write
	n    int // changes kept, up to changeRingSize
}

func (c *changeRing) add(ch Change) {
	c.mu.Lock()
	c.buf[c.next] = ch
	c.next = (c.next + 1) % changeRingSize
	c.n = min(c.n+1, changeRingSize)
	c.mu.Unlock()
}

// Changes returns the most recent changes of names' address sets, newest
// first, at most a few dozen (older ones are forgotten).
func (r *Resolver) Changes() []Change {
	c := &r.changes
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Change, 0, c.n)
	for i := 1; i <= c.n; i++ {
		out = append(out, c.buf[(c.next-i+changeRingSize)%changeRingSize])
	}
	return out
}
