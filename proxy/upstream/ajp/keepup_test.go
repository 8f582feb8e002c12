package ajp

import (
	"context"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/webtier/webtier/proxy/internal/idlepool"
)

// TestKeepsUpWithConcurrency: with default options, a second wave of
// concurrent requests reuses the connections the first one opened (with
// the old default cap of 64, every connection above it was closed after
// its request and reopened by the next wave); with a shared Limit the
// transport keeps no more than it allows.
func TestKeepsUpWithConcurrency(t *testing.T) {
	const n = 200
	for _, tc := range []struct {
		name      string
		limit     *idlepool.Limit
		idle, new int // idle after a wave, connects in the second wave
	}{
		{"defaults", nil, n, 0},
		{"shared limit", idlepool.NewLimit(50), 50, n - 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			var mu sync.Mutex
			var arrived int
			var release chan struct{}
			fc := newFakeContainer(t, func(c *cconn, _ *decodedRequest, _ []byte) error {
				mu.Lock()
				rel := release
				if arrived++; arrived == n {
					close(release)
				}
				mu.Unlock()
				select {
				case <-rel:
				case <-ctx.Done():
				}
				return c.respond(200, []respHeader{{Code: RespContentLength, Value: "2"}}, []byte("ok"), 8184, true)
			})
			tr := fc.transport(Options{IdleLimit: tc.limit})
			wave := func() int32 {
				before := fc.accepts.Load()
				mu.Lock()
				arrived, release = 0, make(chan struct{})
				mu.Unlock()
				var wg sync.WaitGroup
				var failed atomic.Int32
				for range n {
					wg.Go(func() {
						req, _ := http.NewRequestWithContext(ctx, "GET", "http://app/", nil)
						resp, err := tr.RoundTrip(req)
						if err != nil {
							failed.Add(1)
							return
						}
						if _, err := io.Copy(io.Discard, resp.Body); err != nil {
							failed.Add(1)
						}
						resp.Body.Close()
					})
				}
				wg.Wait()
				if f := failed.Load(); f > 0 {
					t.Fatalf("%d of %d requests failed", f, n)
				}
				return fc.accepts.Load() - before
			}
			if got := wave(); got != n {
				t.Fatalf("warm-up wave of %d concurrent requests opened %d connections; want %d", n, got, n)
			}
			if got := tr.idleCount(); got != tc.idle {
				t.Errorf("%d idle connections after the warm-up wave; want %d", got, tc.idle)
			}
			if got := wave(); int(got) != tc.new {
				t.Errorf("second wave of %d concurrent requests opened %d connections; want %d", n, got, tc.new)
			}
		})
	}
}
