package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// errStalled is the cause of a try re-sent elsewhere because the backend
// left its request unacknowledged (interrupt.Unacknowledged): the address
// stopped taking packets, as an ELB node that vanished does.
var errStalled = errors.New("upstream: backend stopped acknowledging the request; re-sent")

// Stall watch timing. A try is looked at once it has waited stallAge for
// response headers (the kernel's minimum RTO: no retransmission can have
// happened before), then every stallTick. A request to a black-holed
// address is found at its first retransmission timeout (about 400 ms after
// it was sent, with the tail loss probe before it) plus up to a tick:
// below the 1 s TCP_USER_TIMEOUT floor and below rescue_grace.
const (
	stallAge  = 200 * time.Millisecond
	stallTick = 100 * time.Millisecond
)

// stallWatch finds tries that wait for response headers on a pooled
// connection whose backend stopped acknowledging (one of two addresses
// black-holed, or an ELB node that vanished as its record moved), and ends
// them so that RoundTrip re-sends them elsewhere at once rather than after
// the kernel's TCP_USER_TIMEOUT. Only tries the rescue path already tracks
// are looked at: idempotent requests without a body, which may be sent
// again, on an h1 or AJP connection (ended by their Interrupt) or on one
// of net/http's Transport (engine std, https://), which GotConn names
// (connStaller) and whose try ends by its context: the Transport closes
// the connection and returns the cause, and RoundTrip re-sends.
//
// One goroutine per pool runs it, and only while tries wait: a request
// costs one atomic load here (see Endpoint.track), and an idle pool no
// wake-up at all.
type stallWatch struct {
	idle atomic.Bool   // the watch sleeps until wake
	wake chan struct{} // capacity 1

	mu  sync.Mutex
	eps []*Endpoint // endpoints that have tracked a try, until they drain
	buf []*attempt  // reused by check
}

func newStallWatch() *stallWatch {
	w := &stallWatch{wake: make(chan struct{}, 1)}
	w.idle.Store(true)
	return w
}

// tracked is called after e tracked an interruptible try; first says e
// had never done so (it joins the watch's list).
func (w *stallWatch) tracked(e *Endpoint, first bool) {
	if first {
		w.mu.Lock()
		w.eps = append(w.eps, e)
		w.mu.Unlock()
	}
	if w.idle.Load() && w.idle.CompareAndSwap(true, false) {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// watchStalls runs the pool's stall watch until Close.
func (p *Pool) watchStalls() {
	w := p.stall
	t := time.NewTimer(stallTick)
	t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-w.wake:
		}
		for busy := true; busy; {
			t.Reset(stallTick)
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if busy = p.checkStalls(p.now()); busy {
				continue
			}
			// Sleep, unless a try was tracked since the check looked.
			w.idle.Store(true)
			if p.checkStalls(p.now()) {
				if !w.idle.CompareAndSwap(true, false) {
					<-w.wake // the tracker's wake-up, taken here
				}
				busy = true
			}
		}
	}
}

// checkStalls ends every watched try that is stalled and reports whether
// any interruptible try is still waiting.
func (p *Pool) checkStalls(now time.Time) (busy bool) {
	w := p.stall
	w.mu.Lock()
	defer w.mu.Unlock()
	kept := w.eps[:0]
	for _, e := range w.eps {
		old := w.buf[:0]
		e.mu.Lock()
		waiting := false
		for a := range e.waiting {
			if !a.watched {
				continue
			}
			waiting = true
			if now.Sub(a.start) >= stallAge {
				old = append(old, a)
			}
		}
		if !waiting && e.State() == StateDraining {
			// Out of DNS for good (an address that comes back gets a new
			// Endpoint): nothing will be tracked on it again.
			e.watched = false
			e.mu.Unlock()
			continue
		}
		e.mu.Unlock()
		kept = append(kept, e)
		busy = busy || waiting
		n, other := 0, -1
		for _, a := range old {
			if !a.intr.Stalled() {
				continue
			}
			if other < 0 {
				other = 0
				if p.otherTakesRequests(e) {
					other = 1
				} else if p.res != nil && !e.target.isLiteral {
					// Nowhere to re-send it yet: an ELB node that vanished
					// as its record moved is found here before the new
					// answer. Ask for it now; the try is ended at the first
					// check after another address takes requests.
					p.res.RefreshNow(e.target.Host)
				}
			}
			if other == 0 {
				continue
			}
			e.mu.Lock()
			_, ok := e.waiting[a]
			delete(e.waiting, a)
			e.mu.Unlock()
			if ok {
				a.end(errStalled)
				n++
			}
		}
		clear(old)
		w.buf = old
		if n > 0 {
			p.log.Warn("requests re-sent: the backend stopped acknowledging them",
				zap.String("target", e.target.Host), zap.Stringer("address", e.addr),
				zap.Int("requests", n), zap.Stringer("state", e.State()))
		}
	}
	clear(w.eps[len(kept):])
	w.eps = kept
	return busy
}

// otherTakesRequests reports whether an address other than e takes new
// requests: a stalled try is ended only when it can be re-sent.
func (p *Pool) otherTakesRequests(e *Endpoint) bool {
	for _, o := range p.active.Load().eps {
		if o != e && o.State().takesRequests() {
			return true
		}
	}
	return false
}

// connStaller is the connection net/http's Transport (or, racing, a
// backend client) named in GotConn for a try with a context, as the stall
// watch asks it (attempt.intr): whether its peer stopped acknowledging.
// Interrupting it does nothing: such a try ends by its context.
type connStaller struct{ c net.Conn }

func (connStaller) Interrupt() {}

func (s connStaller) Stalled() bool {
	c := s.c
	if st, ok := c.(interrupt.Staller); ok {
		return st.Stalled() // the h1 client's own connection
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if sc, ok := c.(*strayConn); ok {
		c = sc.Conn
	}
	return interrupt.Unacknowledged(c)
}
