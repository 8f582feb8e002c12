package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// Load through the L4: bounded in count, paced at about l4Rate requests
// a second over l4Clients keep-alive connections.
const (
	l4Clients  = 50
	l4Requests = 3000
	l4Rate     = 300
	// l4StopAt is how many requests have been answered when one instance
	// is sent SIGTERM: every client holds a pinned connection by then.
	l4StopAt = 600
)

func drainConfig(listen, backend, wait string) string {
	return fmt.Sprintf(`listeners:
  - address: %q
routes:
  - upstream: app
upstreams:
  app:
    targets: ["http://%s"]
drain:
  wait: %s
logging:
  level: info
  format: json
`, listen, backend, wait)
}

// Issue 19, drain behind an L4: HAProxy in mode tcp, checking
// GET /health_check.html every 500 ms (fall 2), in front of two webtier
// instances; 50 keep-alive clients through it; one instance stopped with a
// single SIGTERM. With the drain (drain.wait 3s, more than the checker's
// 0.5 to 1 s to see the failure) no request fails: HAProxy takes the
// instance out before its listeners close, and the connections pinned to
// it end after a response that says Connection: close. With drain.wait 0s
// (the listeners close at once, as before the drain existed) the clients
// pinned to it, and those HAProxy still sends there, see their requests
// fail: the contrast shows the test can fail.
func TestDrainBehindL4(t *testing.T) {
	peer.RequireTools(t, "haproxy")
	bin := peer.Build(t)
	backend := peer.StartBackend(t, "127.0.0.1", "app")
	for _, tc := range []struct {
		wait  string
		drain bool
	}{
		{"3s", true},
		{"0s", false},
	} {
		t.Run("wait="+tc.wait, func(t *testing.T) {
			l1, l2 := peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
			w1 := peer.StartWebtier(t, bin, l1, drainConfig(l1, backend.Addr(), tc.wait))
			peer.StartWebtier(t, bin, l2, drainConfig(l2, backend.Addr(), tc.wait))
			l4 := peer.StartHAProxyL4(t, peer.FreeAddr(t, "127.0.0.1"),
				peer.L4Check{Path: "/health_check.html", Inter: 500 * time.Millisecond, Fall: 2, Rise: 1}, l1, l2)

			ld := startL4Load(l4.Addr())
			<-ld.reached
			if err := w1.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			// What HAProxy sees first: its check failing, or the instance
			// gone.
			l4.WaitStatus(t, "s1", "DOWN")
			var downFirst bool
			select {
			case <-w1.Exited():
			default:
				downFirst = true
			}
			select {
			case <-w1.Exited():
			case <-time.After(30 * time.Second): // a hang guard only
				t.Fatal("webtier did not exit after SIGTERM")
			}
			exitErr := w1.Stop(t) // exited already: its exit status
			ld.wait()
			failed, kinds := ld.failures()
			t.Logf("drain.wait %s: %d of %d requests failed %v; HAProxy saw the health check fail before the exit: %v",
				tc.wait, failed, ld.done.Load(), kinds, downFirst)
			if exitErr != nil {
				t.Errorf("webtier exited with %v after SIGTERM; want exit status 0", exitErr)
			}
			if ld.done.Load() != l4Requests {
				t.Errorf("%d requests done; want %d", ld.done.Load(), l4Requests)
			}
			switch {
			case tc.drain && failed != 0:
				t.Errorf("with the drain, %d requests failed (%v); want 0", failed, kinds)
			case tc.drain && !downFirst:
				t.Error("webtier exited before HAProxy saw its health check fail")
			case !tc.drain && failed == 0:
				t.Error("without the drain no request failed: the test cannot tell the drain's effect")
			}
			if tc.drain && !strings.Contains(w1.Logs(), "draining") {
				t.Error("webtier's log does not say it drained")
			}
		})
	}
}

// l4Load is the client side: l4Clients goroutines, each with one
// keep-alive connection at a time, that send l4Requests in all at
// l4Rate. A client never retries: a request that gets no complete 200
// answer is a failure, as a user would see it.
type l4Load struct {
	reached chan struct{} // closed at l4StopAt answered requests
	done    atomic.Int64  // requests finished, failed or not
	wg      sync.WaitGroup

	mu    sync.Mutex
	kinds map[string]int // failures by kind
}

func startL4Load(addr string) *l4Load {
	ld := &l4Load{reached: make(chan struct{}), kinds: map[string]int{}}
	tokens := make(chan struct{})
	go func() {
		defer close(tokens)
		t := time.NewTicker(time.Second / l4Rate)
		defer t.Stop()
		for range l4Requests {
			<-t.C
			tokens <- struct{}{}
		}
	}()
	var once sync.Once
	for range l4Clients {
		ld.wg.Add(1)
		go func() {
			defer ld.wg.Done()
			var c *l4Conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for range tokens {
				var err error
				if c == nil {
					c, err = dialL4(addr)
				}
				if err == nil {
					var keep bool
					keep, err = c.get()
					if !keep || err != nil {
						c.Close()
						c = nil
					}
				}
				if err != nil {
					ld.fail(err)
				}
				if ld.done.Add(1) == l4StopAt {
					once.Do(func() { close(ld.reached) })
				}
			}
		}()
	}
	return ld
}

func (ld *l4Load) wait() { ld.wg.Wait() }

func (ld *l4Load) fail(err error) {
	kind := err.Error()
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		kind = "EOF"
	case errors.Is(err, syscall.ECONNRESET):
		kind = "connection reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		kind = "connection refused"
	}
	ld.mu.Lock()
	ld.kinds[kind]++
	ld.mu.Unlock()
}

func (ld *l4Load) failures() (int, []string) {
	ld.mu.Lock()
	defer ld.mu.Unlock()
	n, out := 0, []string{}
	for k, v := range ld.kinds {
		n += v
		out = append(out, fmt.Sprintf("%d× %s", v, k))
	}
	sort.Strings(out)
	return n, out
}

type l4Conn struct {
	net.Conn
	br *bufio.Reader
}

func dialL4(addr string) (*l4Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &l4Conn{Conn: c, br: bufio.NewReader(c)}, nil
}

// get sends one request and reads its answer; keep reports whether the
// connection can carry the next one.
func (c *l4Conn) get() (keep bool, err error) {
	c.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // a hang guard; the read fails instead
	if _, err := io.WriteString(c, "GET /drain HTTP/1.1\r\nHost: app.test\r\n\r\n"); err != nil {
		return false, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return false, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return false, err
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	return !resp.Close, nil
}
