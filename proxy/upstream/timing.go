package upstream

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"
)

// Timing is what a pool measured of one request, for the access log and
// the latency histograms. The pool fills it only when the request's
// context carries it (see TimingContext) and Options.Timing is set, so a
// request that nobody logs pays nothing. Fields are atomic: a connect the
// request abandoned may finish after it.
type Timing struct {
	endpoint atomic.Pointer[Endpoint] // the last address tried
	connect  atomic.Int64             // ns of the last connect made for the request; 0: none
	header   atomic.Int64             // ns from the last try's start to its response header; 0: none
}

// Addr returns the last address the request was sent to, or the zero
// AddrPort when it was sent nowhere.
func (t *Timing) Addr() netip.AddrPort {
	if e := t.endpoint.Load(); e != nil {
		return e.addr
	}
	return netip.AddrPort{}
}

// Connect returns how long the connect for the request took, or -1 when
// it used a kept-alive connection.
func (t *Timing) Connect() time.Duration { return orNone(t.connect.Load()) }

// Header returns how long the try that answered took to its response
// header, or -1 when none answered.
func (t *Timing) Header() time.Duration { return orNone(t.header.Load()) }

func orNone(ns int64) time.Duration {
	if ns == 0 {
		return -1
	}
	return time.Duration(ns)
}

// TimingContext is a context carrying a Timing. It is a type of its own,
// not context.WithValue, so that a caller can embed it in a per-request
// struct it allocates anyway and spare an allocation.
type TimingContext struct {
	context.Context
	Timing Timing
}

type timingKey struct{}

// Value returns the Timing for the pool's key and asks the parent
// otherwise.
func (c *TimingContext) Value(key any) any {
	if key == (timingKey{}) {
		return &c.Timing
	}
	return c.Context.Value(key)
}

// timingFrom returns the Timing ctx carries, or nil.
func timingFrom(ctx context.Context) *Timing {
	t, _ := ctx.Value(timingKey{}).(*Timing)
	return t
}

// nanosSince returns the nanoseconds since start, at least 1 so that it
// reads as measured.
func nanosSince(start time.Time) int64 {
	return max(int64(time.Since(start)), 1)
}
