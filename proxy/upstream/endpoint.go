package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/internal/interrupt"
	"github.com/webtier/webtier/proxy/upstream/h1"
)

// Endpoint is one backend address of one target, with its own keep-alive
// connection pool. Keeping a transport per address is what lets a pool close
// exactly the connections of an address that left DNS or was ejected.
// Endpoint values must not be copied.
type Endpoint struct {
	addr      netip.AddrPort
	hostport  string // addr as "ip:port" (or "[ip6]:port"), for URL.Host
	scheme    string
	weight    int
	target    *target
	transport backendTransport
	// intrT is transport when it can be interrupted without a context
	// (h1, AJP), found once here rather than asserted per request.
	intrT     interruptible
	tlsConfig *tls.Config // for https targets
	dialer    *net.Dialer

	// Read on the request path without locks.
	state    atomic.Uint32 // a State
	since    atomic.Int64  // UnixNano when state was entered, for slow start
	inflight atomic.Int64
	total    atomic.Uint64          // tries sent, for status pages
	reason   atomic.Pointer[string] // why the endpoint entered its state
	fails    atomic.Int32           // consecutive connect or health-check failures
	errs5xx  atomic.Int32           // consecutive 5xx answers or gateway failures
	// askedCert: an https:// backend asked for a client certificate the
	// upstream does not have; logged once (warnMissingClientCert).
	askedCert atomic.Bool

	// Written under Pool.mu.
	ejections int  // consecutive ejections, the backoff exponent
	probing   bool // a probe loop runs for this endpoint

	mu      sync.Mutex // guards waiting and watched
	waiting map[*attempt]struct{}
	watched bool        // in watch's list
	watch   *stallWatch // the pool's

	// gone ends the connects in progress to the address when it leaves
	// the DNS answer, is ejected or put in standby (see abandonConnects).
	gone atomic.Pointer[goneScope]
}

// goneScope is the context every connect to an endpoint runs under until
// the endpoint leaves service.
type goneScope struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func newGoneScope() *goneScope {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &goneScope{ctx: ctx, cancel: cancel}
}

// errAddressGone is the cause of a connect abandoned because its address
// left service while it waited: nothing was sent, so the request moves to
// another address at once, whatever its method, instead of waiting out
// connect_timeout on an address that will not take it.
var errAddressGone = errors.New("upstream: address left service while connecting")

// abandonConnects ends the connects in progress to e, and starts a new
// scope for connects that come later (a probe may bring e back).
func (e *Endpoint) abandonConnects() {
	if old := e.gone.Swap(newGoneScope()); old != nil {
		old.cancel(errAddressGone)
	}
}

// backendTransport is what an endpoint sends requests with: *h1.Transport
// for http:// targets, net/http's Transport (stdTransport) for https://
// ones and for http:// ones with engine std, *ajp.Transport for ajp://
// ones. All close idle connections on demand and keep closing
// connections that become idle until the next request, which draining
// relies on.
type backendTransport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// attempt is one try of one request on one endpoint, registered while it
// waits for response headers so that it can be rescued.
type attempt struct {
	cancel context.CancelCauseFunc // the try's context, or
	// intr ends a try with an h1 or AJP transport and no race, which has
	// no context; with a context, it holds the connection only, for the
	// stall watch (connStaller).
	intr    interrupt.Interrupt
	start   time.Time
	watched bool // the stall watch looks at it
}

// end stops the try with cause.
func (a *attempt) end(cause error) {
	if a.cancel != nil {
		a.cancel(cause)
		return
	}
	a.intr.Fire(cause)
}

// DialError is a failure to connect to an address: nothing of the request
// was sent, so the request may be retried elsewhere and answers 502.
type DialError struct {
	Addr netip.AddrPort
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err) }
func (e *DialError) Unwrap() error { return e.Err }

func (p *Pool) newEndpoint(tg *target, ip netip.Addr) *Endpoint {
	ap := netip.AddrPortFrom(ip, tg.Port)
	e := &Endpoint{
		addr:     ap,
		hostport: ap.String(),
		scheme:   tg.Scheme,
		weight:   tg.Weight,
		target:   tg,
		waiting:  map[*attempt]struct{}{},
		watch:    p.stall,
		dialer: &net.Dialer{Timeout: p.opts.ConnectTimeout, KeepAlive: 30 * time.Second,
			Control: userTimeoutControl(max(p.opts.ConnectTimeout, time.Second))},
	}
	initial := StateRunning
	if p.opts.SlowStart > 0 && tg.answered {
		// Addresses present at start-up take full load at once; addresses
		// that appear later ramp up.
		initial = StateRecovering
	}
	e.state.Store(uint32(initial))
	e.since.Store(p.now().UnixNano())
	if tg.isLiteral {
		e.reason.Store(&reasonConfigured)
	} else {
		e.reason.Store(&reasonAdded)
	}
	// dial connects to the fixed address. The dial outlives a request that
	// gave up on it (a lost connect race, a client that left): it ends by
	// connecting, and the connection is pooled, or by failing, and the
	// failure counts against the address. ConnectTimeout bounds it. It
	// ends early only when the address leaves service (abandonConnects):
	// that is no failure of the address, and the request, which sent
	// nothing, is retried elsewhere at once.
	e.gone.Store(newGoneScope())
	dial := func(ctx context.Context) (net.Conn, error) {
		var tm *Timing
		var t0 time.Time
		if p.opts.Timing {
			if tm = timingFrom(ctx); tm != nil {
				t0 = time.Now()
			}
		}
		scope := e.gone.Load()
		c, err := e.dialer.DialContext(scope.ctx, "tcp", e.hostport)
		if err != nil {
			if cause := context.Cause(scope.ctx); cause != nil {
				return nil, &DialError{Addr: ap, Err: fmt.Errorf("%w: %w", cause, err)}
			}
			p.connectFailed(e, err)
			return nil, &DialError{Addr: ap, Err: err}
		}
		if tm != nil {
			tm.connect.Store(nanosSince(t0))
		}
		return c, nil
	}
	switch tg.Scheme {
	case "ajp":
		at := p.newAJPTransport(dial, p.unsolicitedLogger(e))
		e.transport, e.intrT = at, at
		return e
	case "http":
		if p.opts.Engine.Std() || p.opts.Protocol == ProtocolH2C {
			break // net/http's Transport, below
		}
		// A lean synchronous HTTP/1.1 client: net/http's Transport costs
		// two goroutines per connection and channel hand-offs per request,
		// a large part of the proxy's CPU per request. It dials through
		// the same dial, so connect failures count and eject as before;
		// an abandoned connect still ends pooled or counted.
		ht := h1.NewTransport(h1.Options{
			Dial:                  dial,
			ResponseHeaderTimeout: p.opts.ResponseHeaderTimeout,
			RouteTimeouts:         p.opts.MaxRouteTimeout > 0,
			IdleTimeout:           p.opts.IdleConnTimeout,
			MaxIdle:               p.opts.MaxIdlePerAddress, // 0: no cap; negative: no keep-alive
			IdleLimit:             p.opts.IdleLimit,
			OnUnsolicited:         p.unsolicitedLogger(e),
		})
		e.transport, e.intrT = ht, ht
		return e
	}
	if tg.Scheme == "https" {
		// Verify the backend's certificate against the configured name,
		// not the IP we happen to connect to (backendtls.go).
		e.tlsConfig = p.targetTLS(tg)
		p.warnMissingClientCert(e, e.tlsConfig)
	}
	// https:// targets, h2c ones, and http:// ones of an upstream with
	// engine std: net/http's Transport, with golang.org/x/net/http2 for
	// HTTP/2 (stdclient.go).
	e.transport = p.newStdTransport(dial, e.tlsConfig, p.unsolicitedLogger(e))
	return e
}

// httpsMaxIdle is the per-address idle cap of an https:// endpoint, whose
// net/http transport cannot share the IdleLimit: with no cap of its own
// (MaxIdlePerAddress 0) it may keep as many as the whole limit, still
// closed after IdleConnTimeout. net/http reads 0 as its default of 2.
func (p *Pool) httpsMaxIdle() int {
	if n := p.opts.MaxIdlePerAddress; n != 0 {
		return n
	}
	if n := p.opts.IdleLimit.Max(); n > 0 {
		return n
	}
	return DefaultMaxIdleConns
}

// unsolicitedLogger returns the OnUnsolicited hook of e's transport: a
// backend that sends bytes after a complete response (a wrong
// Content-Length, a body on a 204, 304 or HEAD response, a response split
// by the application) would have them served to another client; the
// transport closes the connection and this says which backend did it.
func (p *Pool) unsolicitedLogger(e *Endpoint) func(head []byte) {
	return func(head []byte) {
		p.log.Warn("backend sent bytes after a complete response; connection closed, not reused",
			zap.String("target", e.target.Host), zap.Stringer("address", e.addr),
			zap.String("bytes", strconv.Quote(string(head))))
	}
}

// Addr returns the endpoint's address.
func (e *Endpoint) Addr() netip.AddrPort { return e.addr }

// State returns the endpoint's current state.
func (e *Endpoint) State() State { return State(e.state.Load()) }

// InFlight returns the number of requests sent to the endpoint whose
// response body is not yet closed.
func (e *Endpoint) InFlight() int64 { return e.inflight.Load() }

// Target returns the configured host name (or IP) the address belongs to.
func (e *Endpoint) Target() string { return e.target.Host }

// closeIdle closes idle pooled connections now; busy ones close when their
// request finishes (CloseIdleConnections also makes the transport close
// connections that become idle later, until a new request is queued on it).
func (e *Endpoint) closeIdle() { e.transport.CloseIdleConnections() }

// hasIdle reports whether the endpoint's transport has a pooled connection
// waiting (false for transports that cannot tell: net/http's).
func (e *Endpoint) hasIdle() bool {
	t, ok := e.transport.(interface{ HasIdle() bool })
	return ok && t.HasIdle()
}

// done ends one in-flight request.
func (e *Endpoint) done() {
	e.inflight.Add(-1)
	if s := e.State(); s == StateDraining || s == StateEjected {
		// A request that picked this endpoint just before it left may have
		// re-enabled idle pooling on the transport; close again.
		e.closeIdle()
	}
}

func (e *Endpoint) track(a *attempt) {
	e.mu.Lock()
	e.waiting[a] = struct{}{}
	watch := a.watched && e.watch != nil
	first := watch && !e.watched
	if first {
		e.watched = true
	}
	e.mu.Unlock()
	if watch {
		e.watch.tracked(e, first)
	}
}

func (e *Endpoint) untrack(a *attempt) {
	e.mu.Lock()
	delete(e.waiting, a)
	e.mu.Unlock()
}

// rescue cancels, with errRescued, every tracked attempt that has waited
// for response headers longer than grace; their connections close and
// RoundTrip re-sends them elsewhere. It returns how many it cancelled.
func (e *Endpoint) rescue(now time.Time, grace time.Duration) int {
	e.mu.Lock()
	var stuck []*attempt
	for a := range e.waiting {
		if now.Sub(a.start) >= grace {
			stuck = append(stuck, a)
			delete(e.waiting, a)
		}
	}
	e.mu.Unlock()
	for _, a := range stuck {
		a.end(errRescued)
	}
	return len(stuck)
}

// effectiveWeight is the weight used for balancing: during slow start it
// ramps from a tenth of the weight to all of it.
func (e *Endpoint) effectiveWeight(now int64, slowStart time.Duration) float64 {
	w := float64(e.weight)
	if slowStart <= 0 || e.State() != StateRecovering {
		return w
	}
	f := float64(now-e.since.Load()) / float64(slowStart)
	return w * min(1, max(0.1, f))
}
