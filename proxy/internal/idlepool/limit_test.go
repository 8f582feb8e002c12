package idlepool

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimit covers what the pools sharing a Limit keep and close: the
// connection idle the longest, in any pool, makes room; a pool's own cap
// still evicts its own oldest; and without a cap of its own a pool keeps
// all it is given.
func TestLimit(t *testing.T) {
	tests := []struct {
		name   string
		limit  int
		max    [2]int // each pool's own cap
		puts   string // "a1" puts connection 1 into pool a, in order
		closed string // connections closed, in order of closing
		idle   [2]int
	}{
		{"no own cap: the load's connections are all kept", 0, [2]int{0, 0}, "a1 a2 a3 a4 a5", "", [2]int{5, 0}},
		{"limit reached: the oldest of the same pool goes", 3, [2]int{0, 0}, "a1 a2 a3 a4", "1", [2]int{3, 0}},
		{"limit reached: the oldest of another pool goes", 3, [2]int{0, 0}, "a1 a2 b3 b4", "1", [2]int{1, 2}},
		{"oldest across pools, in order", 2, [2]int{0, 0}, "a1 b2 a3 b4 b5", "123", [2]int{0, 2}},
		{"own cap evicts its own oldest", 10, [2]int{2, 0}, "b1 a2 a3 a4", "2", [2]int{2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimit(tc.limit)
			pools := [2]*Pool[*conn]{New[*conn](tc.max[0], time.Hour, l), New[*conn](tc.max[1], time.Hour, l)}
			var order []string
			var mu sync.Mutex
			all := map[string]*conn{}
			for _, put := range splitFields(tc.puts) {
				p := pools[put[0]-'a']
				c := &conn{name: put[1:]}
				c.closeHook = func(name string) { mu.Lock(); order = append(order, name); mu.Unlock() }
				p.Track(c)
				all[c.name] = c
				p.Put(c)
			}
			got := ""
			for _, n := range order {
				got += n
			}
			if got != tc.closed {
				t.Errorf("closed %q; want %q", got, tc.closed)
			}
			for i, p := range pools {
				if n := p.Len(); n != tc.idle[i] {
					t.Errorf("pool %c holds %d idle; want %d", 'a'+i, n, tc.idle[i])
				}
			}
			if n := l.Idle(); n != tc.idle[0]+tc.idle[1] {
				t.Errorf("Limit counts %d idle; want %d", n, tc.idle[0]+tc.idle[1])
			}
		})
	}
}

func splitFields(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j] != ' ' {
			j++
		}
		out = append(out, s[i:j])
		i = j + 1
	}
	return out
}

// TestLimitNeverExceeded: many pools Put and Get concurrently; at no
// moment do they hold more idle connections than the limit, every
// connection given to Put ends either idle or closed, and the count the
// Limit keeps matches what the pools hold.
func TestLimitNeverExceeded(t *testing.T) {
	const pools, workers, rounds, max = 8, 16, 300, 20
	l := NewLimit(max)
	ps := make([]*Pool[*conn], pools)
	for i := range ps {
		ps[i] = New[*conn](0, time.Hour, l)
	}
	var over atomic.Int64
	held := func() int {
		n := 0
		for _, p := range ps {
			n += p.Len()
		}
		return n
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				p := ps[(w+r)%pools]
				c, ok, _, _ := p.Get()
				if !ok {
					c = &conn{name: fmt.Sprint(w, ".", r)}
					p.Track(c)
				}
				p.Put(c)
				if l.Idle() > max {
					over.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := over.Load(); n > 0 {
		t.Errorf("the Limit counted more than %d idle connections %d times", max, n)
	}
	if n := held(); n > max {
		t.Errorf("the pools hold %d idle connections; limit %d", n, max)
	}
	if a, b := l.Idle(), held(); a != b {
		t.Errorf("the Limit counts %d idle; the pools hold %d", a, b)
	}
	for _, p := range ps {
		p.CloseIdle()
	}
	if n := l.Idle(); n != 0 {
		t.Errorf("after CloseIdle everywhere the Limit counts %d idle; want 0", n)
	}
	if n := l.members(); n != 0 {
		t.Errorf("after CloseIdle everywhere the Limit has %d member pools; want 0 (closed pools are let go)", n)
	}
}

// TestLimitRejoin: a pool let go by CloseIdle joins again at its next Get,
// so that its connections are evictable again.
func TestLimitRejoin(t *testing.T) {
	l := NewLimit(1)
	a, b := New[*conn](0, time.Hour, l), New[*conn](0, time.Hour, l)
	a.CloseIdle()
	a.Get()
	ca, cb := newConns(a, "a")[0], newConns(b, "b")[0]
	a.Put(ca)
	b.Put(cb)
	if ca.closed.Load() != 1 || cb.closed.Load() != 0 {
		t.Errorf("closed: a %d, b %d; want the older, a, evicted for b", ca.closed.Load(), cb.closed.Load())
	}
}

// BenchmarkGetPut is a request's use of the pool: take the most recently
// used connection and give it back, on every core at once, each core on
// its own pool as each backend address has its own, sharing one Limit.
func BenchmarkGetPut(b *testing.B) {
	l := NewLimit(4096)
	b.RunParallel(func(pb *testing.PB) {
		p := New[*conn](0, time.Hour, l)
		newConns(p, "a")
		c := newConns(p, "a")[0]
		p.Put(c)
		for pb.Next() {
			c, _, _, _ := p.Get()
			p.Put(c)
		}
	})
}
