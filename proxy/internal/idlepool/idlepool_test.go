package idlepool

import (
	"sync/atomic"
	"testing"
	"time"
)

type conn struct {
	name    string
	entry   Entry
	closed  atomic.Int32
	onClose chan struct{} // if not nil, gets a value on every Close
	// closeHook, if set, is called with the name on every Close.
	closeHook func(name string)
}

func (c *conn) IdleEntry() *Entry { return &c.entry }

func (c *conn) Close() {
	c.closed.Add(1)
	c.entry.StopTimer()
	if c.closeHook != nil {
		c.closeHook(c.name)
	}
	if c.onClose != nil {
		c.onClose <- struct{}{}
	}
}

func newConns(p *Pool[*conn], names ...string) []*conn {
	cs := make([]*conn, len(names))
	for i, n := range names {
		cs[i] = &conn{name: n}
		p.Track(cs[i])
	}
	return cs
}

// TestPool covers what a client sees of the pool: which connection a
// request gets, and which are closed, after a sequence of Puts and Gets.
func TestPool(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		run    func(p *Pool[*conn], c []*conn) (got string)
		want   string // the connection the last Get returned ("" for none)
		closed string // the connections closed, in order of c
		idle   int
	}{
		{"empty", 2, func(p *Pool[*conn], c []*conn) string { return get(p) }, "", "", 0},
		{"most recently used first", 2, func(p *Pool[*conn], c []*conn) string {
			p.Put(c[0])
			p.Put(c[1])
			return get(p)
		}, "b", "", 1},
		{"oldest evicted when full", 2, func(p *Pool[*conn], c []*conn) string {
			p.Put(c[0])
			p.Put(c[1])
			p.Put(c[2])
			get(p)
			return get(p)
		}, "b", "a", 0},
		{"pooling off", -1, func(p *Pool[*conn], c []*conn) string {
			p.Put(c[0])
			return get(p)
		}, "", "a", 0},
		{"CloseIdle closes idle and later ones", 2, func(p *Pool[*conn], c []*conn) string {
			p.Put(c[0])
			p.CloseIdle()
			p.Put(c[1])
			return ""
		}, "", "ab", 0},
		{"Get pools again after CloseIdle", 2, func(p *Pool[*conn], c []*conn) string {
			p.CloseIdle()
			get(p)
			p.Put(c[0])
			return get(p)
		}, "a", "", 0},
		{"an expired connection is closed, not returned", 2, func(p *Pool[*conn], c []*conn) string {
			p.Put(c[0])
			p.Put(c[1])
			p.mu.Lock()
			c[1].entry.at = time.Now().Add(-2 * time.Hour) // as if its timer were late
			p.mu.Unlock()
			return get(p)
		}, "a", "b", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New[*conn](tc.max, time.Hour, nil)
			c := newConns(p, "a", "b", "c")
			if got := tc.run(p, c); got != tc.want {
				t.Errorf("Get returned %q; want %q", got, tc.want)
			}
			closed := ""
			for _, x := range c {
				if x.closed.Load() > 0 {
					closed += x.name
				}
			}
			if closed != tc.closed {
				t.Errorf("closed %q; want %q", closed, tc.closed)
			}
			if n := p.Len(); n != tc.idle {
				t.Errorf("Len = %d; want %d", n, tc.idle)
			}
		})
	}
}

func get(p *Pool[*conn]) string {
	if c, ok, _, _ := p.Get(); ok {
		return c.name
	}
	return ""
}

// TestExpire: the idle timer closes a connection idle for the timeout,
// re-arms itself for one that was used meanwhile, and leaves one in use
// alone (Put arms it again).
func TestExpire(t *testing.T) {
	p := New[*conn](4, time.Hour, nil) // the real timers do not fire during the test
	c := newConns(p, "in use", "used meanwhile", "idle")
	p.Put(c[0])
	p.Get() // c[0] is in use
	p.Put(c[1])
	p.Put(c[2])
	p.mu.Lock()
	c[2].entry.at = time.Now().Add(-2 * time.Hour)
	p.mu.Unlock()
	for _, x := range c {
		p.expire(x)
	}
	if n := c[0].closed.Load() + c[1].closed.Load(); n != 0 {
		t.Errorf("a connection in use or idle for less than the timeout was closed")
	}
	if c[2].closed.Load() != 1 {
		t.Errorf("the connection idle for longer than the timeout was not closed")
	}
	p.mu.Lock()
	on0, on1 := c[0].entry.timerOn, c[1].entry.timerOn
	p.mu.Unlock()
	if on0 || !on1 {
		t.Errorf("timer armed: in use %v (want false), used meanwhile %v (want true)", on0, on1)
	}
	p.Put(c[0])
	p.mu.Lock()
	on0 = c[0].entry.timerOn
	p.mu.Unlock()
	if !on0 {
		t.Error("Put did not arm the timer of a connection whose timer had run out")
	}
}

// TestTimerCloses: with a short timeout, the real timer closes an idle
// connection.
func TestTimerCloses(t *testing.T) {
	p := New[*conn](4, 10*time.Millisecond, nil)
	c := newConns(p, "a")
	c[0].onClose = make(chan struct{}, 1)
	p.Put(c[0])
	select {
	case <-c[0].onClose:
	case <-time.After(30 * time.Second): // a safety net, not a measurement
		t.Fatal("idle connection not closed after the timeout")
	}
	if n := p.Len(); n != 0 {
		t.Errorf("Len = %d after the timer closed the connection; want 0", n)
	}
}
