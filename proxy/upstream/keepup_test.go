package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webtier/webtier/proxy/internal/idlepool"
)

// barrierBackend is an HTTP/1 backend on 127.0.0.1 that counts the
// connections it accepts and holds each request until wave requests are
// in flight together, so that a wave really needs wave connections.
type barrierBackend struct {
	srv      *httptest.Server
	accepted atomic.Int64
	open     atomic.Int64
	closed   chan struct{} // gets a value (if empty) when a connection closes

	mu      sync.Mutex
	arrived int
	wave    int
	release chan struct{}
}

func startBarrierBackend(t *testing.T, ctx context.Context) *barrierBackend {
	t.Helper()
	b := &barrierBackend{closed: make(chan struct{}, 1)}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		rel := b.release
		if b.arrived++; b.arrived == b.wave {
			close(b.release)
		}
		b.mu.Unlock()
		select {
		case <-rel:
		case <-ctx.Done(): // the test gave up: do not hang it
		}
		io.WriteString(w, "ok")
	}))
	b.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			b.accepted.Add(1)
			b.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			b.open.Add(-1)
			select {
			case b.closed <- struct{}{}:
			default:
			}
		}
	}
	b.srv.Start()
	t.Cleanup(b.srv.Close)
	return b
}

// startWave arms the barrier for n requests.
func (b *barrierBackend) startWave(n int) {
	b.mu.Lock()
	b.arrived, b.wave, b.release = 0, n, make(chan struct{})
	b.mu.Unlock()
}

func (b *barrierBackend) port() uint16 { return uint16(b.srv.Listener.Addr().(*net.TCPAddr).Port) }

// wave sends n concurrent GETs through p, each read to the end, and
// returns the number of connections the backend accepted meanwhile.
func wave(t *testing.T, ctx context.Context, p *Pool, b *barrierBackend, n int) int64 {
	t.Helper()
	before := b.accepted.Load()
	b.startWave(n)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://app/", nil)
			resp, err := p.RoundTrip(req)
			if err != nil {
				failed.Add(1)
				return
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d requests failed", f, n)
	}
	return b.accepted.Load() - before
}

// TestPool_keepsUpWithConcurrency: with defaults, a second wave of 500
// concurrent requests to one address reuses the connections the first
// wave opened instead of paying a connect for each one above a fixed
// per-address cap (with the old cap of 64: 436 connects).
func TestPool_keepsUpWithConcurrency(t *testing.T) {
	const n = 500
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b := startBarrierBackend(t, ctx)
	p, err := New(Options{Name: "app", Targets: []Target{{Scheme: "http", Host: "127.0.0.1", Port: b.port()}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := wave(t, ctx, p, b, n); got != n {
		t.Fatalf("warm-up wave of %d concurrent requests opened %d connections; want %d", n, got, n)
	}
	if got := wave(t, ctx, p, b, n); got != 0 {
		t.Errorf("second wave of %d concurrent requests opened %d new backend connections; want 0 (all reused)", n, got)
	}
}

// TestPool_idleLimitShared: upstreams sharing an IdleLimit keep at most
// that many idle connections together; the connections idle the longest
// (the first upstream's) are closed to make room, and no request fails
// for it.
func TestPool_idleLimitShared(t *testing.T) {
	const n, max = 40, 50
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	limit := idlepool.NewLimit(max)
	b1, b2 := startBarrierBackend(t, ctx), startBarrierBackend(t, ctx)
	pools := make([]*Pool, 2)
	for i, b := range []*barrierBackend{b1, b2} {
		p, err := New(Options{Name: "app", IdleLimit: limit,
			Targets: []Target{{Scheme: "http", Host: "127.0.0.1", Port: b.port()}}}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		pools[i] = p
	}
	wave(t, ctx, pools[0], b1, n)
	if got := limit.Idle(); got != n {
		t.Fatalf("after %d requests to the first upstream, %d idle; want %d", n, got, n)
	}
	wave(t, ctx, pools[1], b2, n) // needs 30 of the first upstream's places
	if got := limit.Idle(); got != max {
		t.Errorf("after both waves, %d idle connections; want the limit, %d", got, max)
	}
	// The backends see the evicted connections close; wait for it (the
	// close is asynchronous on their side).
	for b1.open.Load() > max-n && ctx.Err() == nil {
		select {
		case <-b1.closed:
		case <-ctx.Done():
		}
	}
	if got, want := b1.open.Load(), int64(max-n); got != want {
		t.Errorf("first backend still has %d connections open; want %d (the oldest evicted)", got, want)
	}
	if got := b2.open.Load(); got != n {
		t.Errorf("second backend has %d connections open; want %d (the newest kept)", got, n)
	}
}
