package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/webtier/webtier/e2e/peer"
)

// Resource attacks: clients that hold webtier's (and so the backend's)
// resources by being slow or many. Each is bounded in count and time, uses
// small timeouts in its config, and asserts what the backend saw and that
// backend connections (and webtier's memory where it is the target) return
// to a bound afterwards. Waits are for signals (a close, a count) under a
// deadline; no assertion measures time.

// resourceWait bounds waiting for webtier to end an attack configured with
// timeouts of about a second.
const resourceWait = 30 * time.Second

// maxHeaderSize is webtier's default max_header_size: the memory a
// connection may take while its head is read is bounded by it.
const maxHeaderSize = 64 << 10

// startResourceWebtier starts webtier in front of b with listenerExtra
// (YAML lines under the listener, four spaces) and at most rawOpenBound
// idle backend connections.
func startResourceWebtier(t *testing.T, b *peer.RawBackend, listenerExtra string) *peer.Webtier {
	t.Helper()
	listen := peer.FreeAddr(t, "127.0.0.1")
	return peer.StartWebtier(t, peer.Build(t), listen,
		attackConfig(listen, "", []string{b.URL()}, listenerExtra, fmt.Sprintf("    max_idle_per_address: %d\n", rawOpenBound)))
}

// bigHandler answers /big with a body of size bytes, written in 64 KiB
// pieces (the write fails once webtier closes the connection), and
// anything else as RawOK.
func bigHandler(size int) peer.RawHandler {
	return func(c *peer.RawConn, r peer.RawRequest) bool {
		if r.RequestURI != "/big" {
			return peer.RawOK(c, r)
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", size); err != nil {
			return false
		}
		piece := []byte(strings.Repeat("x", 64<<10))
		for sent := 0; sent < size; sent += len(piece) {
			if _, err := c.Write(piece[:min(len(piece), size-sent)]); err != nil {
				return false
			}
		}
		return true
	}
}

// closedBy starts a goroutine that reads c until webtier closes it (or
// answers and closes), for up to bound; the channel gets what was read and
// whether the connection ended (false: still open at the bound).
func closedBy(c net.Conn, bound time.Duration) <-chan attackHeard {
	out := make(chan attackHeard, 1)
	go func() {
		_ = c.SetReadDeadline(time.Now().Add(bound))
		out <- readAnswers(c, true)
	}()
	return out
}

// unclosedAfter dials n connections to addr (closed when it returns) and
// runs send on each, in a goroutine of its own, with closedBy's channel
// for it (bound resourceWait); send reports whether webtier closed the
// connection. It returns how many it did not close.
func unclosedAfter(t *testing.T, addr string, n int, send func(c net.Conn, closed <-chan attackHeard) bool) int {
	t.Helper()
	var wg sync.WaitGroup
	var unclosed atomic.Int32
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !send(c, closedBy(c, resourceWait)) {
				unclosed.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(unclosed.Load())
}

// vmKB returns a VmRSS-style field of /proc/pid/status in KiB.
func vmKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading webtier's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: %q: %v", pid, line, err)
			}
			return n
		}
	}
	t.Fatalf("/proc/%d/status has no %s", pid, field)
	return 0
}

// expectNothingAndFreed checks that the backend received nothing and that
// its connections are back to bound.
func expectNothingAndFreed(t *testing.T, b *peer.RawBackend, bound int) {
	t.Helper()
	if raw := b.Received(); len(raw) > 0 {
		t.Errorf("backend received %q; want nothing", clip(raw))
	}
	if !b.WaitOpen(bound, resourceWait) {
		t.Errorf("%d backend connections still open %v after the attack; want at most %d", b.Open(), resourceWait, bound)
	}
}

// Slowloris: 50 connections each send a request head one byte every
// 200 ms. read_header_timeout (1 s here) must close every one of them
// before it finishes; nothing reaches the backend.
func TestAttackSlowloris(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w := startResourceWebtier(t, b, "    read_header_timeout: 1s\n")
	const conns = 50
	head := "GET /slowloris HTTP/1.1\r\nHost: a\r\nX-Slow: " + strings.Repeat("s", 60) + "\r\n\r\n"
	open := unclosedAfter(t, w.Addr(), conns, func(c net.Conn, closed <-chan attackHeard) bool {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for i := range len(head) {
			if _, err := c.Write([]byte{head[i]}); err != nil {
				break
			}
			select {
			case h := <-closed:
				return h.closed
			case <-tick.C:
			}
		}
		// The whole head went out without webtier closing.
		return false
	})
	if open > 0 {
		t.Errorf("%d of %d slowloris connections were not closed by read_header_timeout before sending their whole head", open, conns)
	}
	expectNothingAndFreed(t, b, 0)
}

// Slow body: a POST whose body comes one byte every 250 ms. With
// body_timeout 1s and body_min_rate 500 B/s the client gets 408 and the
// connection is closed, and the backend connection carrying the request
// is freed (closed).
func TestAttackSlowBody(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w := startResourceWebtier(t, b, "    body_timeout: 1s\n    body_min_rate: 500\n")
	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const size = 100
	if _, err := io.WriteString(c, fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)); err != nil {
		t.Fatal(err)
	}
	closed := closedBy(c, resourceWait)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var heard attackHeard
	sent := 0
loop:
	for ; sent < size-1; sent++ { // never the last byte
		if _, err := c.Write([]byte{'b'}); err != nil {
			heard = <-closed
			break
		}
		select {
		case heard = <-closed:
			break loop
		case <-tick.C:
		}
	}
	if sent == size-1 {
		heard = <-closed
	}
	if heard.first() != http.StatusRequestTimeout || !heard.closed {
		t.Errorf("slow body (%d bytes sent, one per 250 ms): attacker got %s; want 408, then closed", sent, heard)
	}
	if !b.WaitOpen(0, resourceWait) {
		t.Errorf("%d backend connections still open after the slow body was cut off; want 0 (freed)", b.Open())
	}
	for _, r := range b.Requests() {
		if r.BodyLen >= size {
			t.Errorf("backend received a complete %d-byte body; the client never sent its last byte", r.BodyLen)
		}
	}
}

// A client that asks for 20 MiB and never reads: with write_timeout 1s
// webtier ends the connection (the client gets less than the response)
// and frees the backend connection.
func TestAttackNeverReadingClient(t *testing.T) {
	const size = 20 << 20
	b := peer.StartRawBackend(t, bigHandler(size))
	w := startResourceWebtier(t, b, "    write_timeout: 1s\n")
	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	if !b.WaitReceived(1, resourceWait) {
		t.Fatal("the request did not reach the backend")
	}
	defer func() {
		if rs := b.Requests(); len(rs) != 1 || rs[0].RequestURI != "/big" {
			t.Errorf("backend received %s; want GET /big once", describeReqs(rs))
		}
	}()
	if !b.WaitOpen(0, resourceWait) {
		t.Errorf("%d backend connections still open while the client does not read; want 0 (freed by write_timeout)", b.Open())
	}
	// Now read: what was buffered, then the end.
	_ = c.SetReadDeadline(time.Now().Add(resourceWait))
	n, err := io.Copy(io.Discard, bufio.NewReader(c))
	if n >= size || (err != nil && !isClosed(err)) {
		t.Errorf("the never-reading client then read %d bytes (%v); want less than the %d-byte response and the connection closed", n, err, size)
	}
}

// HTTP/2 with SETTINGS_INITIAL_WINDOW_SIZE 0 and 50 streams each asking
// for 1 MiB: no DATA can be sent, and with write_timeout 1s every stream
// must be reset (or the connection ended) and every backend connection
// freed.
func TestAttackH2ZeroWindow(t *testing.T) {
	b := peer.StartRawBackend(t, bigHandler(1<<20))
	w := startH2Webtier(t, b, "    write_timeout: 1s\n", fmt.Sprintf("    max_idle_per_address: %d\n", rawOpenBound))
	h := dialH2(t, w.Addr(), false, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	const streams = 50
	for i := range uint32(streams) {
		if err := h.get(2*i+1, "/big"); err != nil {
			t.Fatal(err)
		}
	}
	_ = h.c.SetDeadline(time.Now().Add(2 * resourceWait))
	reset, ended := map[uint32]bool{}, ""
	timeout := time.After(resourceWait)
	for len(reset) < streams && ended == "" {
		select {
		case e, ok := <-h.events:
			switch {
			case !ok || e.err != nil:
				ended = fmt.Sprintf("connection closed (%v)", e.err)
			case e.typ == http2.FrameGoAway:
				ended = "GOAWAY " + e.code.String()
			case e.typ == http2.FrameRSTStream:
				reset[e.stream] = true
			case e.typ == http2.FrameWindowUpdate, e.typ == http2.FrameSettings, e.typ == http2.FrameHeaders:
			}
		case <-timeout:
			ended = "timeout"
		}
	}
	if len(reset) < streams && (ended == "timeout" || ended == "") {
		t.Errorf("zero window: %d of %d streams reset and the connection still open after %v; want every stream reset by write_timeout",
			len(reset), streams, resourceWait)
	}
	t.Logf("zero window: %d streams reset, connection: %q; backend got %d requests", len(reset), ended, len(b.Requests()))
	if n := len(b.Requests()); n > streams {
		t.Errorf("backend received %d requests from %d streams", n, streams)
	}
	if !b.WaitOpen(0, resourceWait) {
		t.Errorf("%d backend connections still open after the streams were reset; want 0 (freed)", b.Open())
	}
}

// rssFactor is how many times max_header_size one connection may add to
// webtier's RSS while its head is read: buffers grown to the limit, the
// garbage of growing them, a goroutine. The race detector's shadow memory
// and bookkeeping multiply that by up to 4.
func rssFactor() int64 {
	if peer.RaceBuilt() {
		return 16
	}
	return 4
}

// Big heads: 100 connections each send 1000 KiB of a head they never
// finish. webtier reads at most max_header_size (64 KiB) of each (431 and
// close), so its peak RSS grows by at most conns * max_header_size *
// rssFactor (100 MiB under -race; reading heads up to net/http's 1 MiB
// took 210 to 310 MiB more). Nothing reaches the backend.
func TestAttackBigHeads(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w := startResourceWebtier(t, b, "    read_header_timeout: 5s\n")
	base := vmKB(t, w.PID(), "VmRSS")
	const conns, each = 100, 1000 << 10
	head := "GET /big-head HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-Pad: "+strings.Repeat("p", 1000)+"\r\n", each/1009)
	n := unclosedAfter(t, w.Addr(), conns, func(c net.Conn, closed <-chan attackHeard) bool {
		_ = c.SetWriteDeadline(time.Now().Add(resourceWait))
		_, _ = io.WriteString(c, head) // stops with an error once webtier closes
		return (<-closed).closed
	})
	if n > 0 {
		t.Errorf("%d of %d connections sending an unfinished 1000 KiB head were not closed", n, conns)
	}
	peak := vmKB(t, w.PID(), "VmHWM")
	bound := base + conns*maxHeaderSize*rssFactor()/1024
	t.Logf("webtier RSS: %d KiB before, peak %d KiB, bound %d KiB", base, peak, bound)
	if peak > bound {
		t.Errorf("webtier's peak RSS %d KiB exceeds %d KiB (%d KiB before + %d connections x %d KiB x %d)",
			peak, bound, base, conns, maxHeaderSize>>10, rssFactor())
	}
	expectNothingAndFreed(t, b, 0)
}

// Many idle connections: 1,000 connections that send nothing. webtier
// still serves a normal request meanwhile, closes every idle one within
// read_header_timeout (2 s here, plus the deferred accept), keeps its peak
// RSS within base + 1,000 * max_header_size, and nothing reaches the
// backend but the normal request.
func TestAttackIdleConnections(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w := startResourceWebtier(t, b, "    read_header_timeout: 2s\n")
	base := vmKB(t, w.PID(), "VmRSS")
	const conns = 1000
	results := dialMany(t, w.Addr(), conns, "")
	heard := attack(t, w.Addr(), "GET /meanwhile HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true)
	if heard.first() != 200 || heard.bodies[0] != "/meanwhile\n" {
		t.Errorf("with %d idle connections open, a request got %s; want 200 from the backend", conns, heard)
	}
	unclosed := 0
	for _, r := range results {
		if h := <-r; !h.closed {
			unclosed++
		}
	}
	if unclosed > 0 {
		t.Errorf("%d of %d idle connections still open after %v; want all closed by read_header_timeout", unclosed, conns, 2*resourceWait)
	}
	peak := vmKB(t, w.PID(), "VmHWM")
	bound := base + conns*maxHeaderSize/1024
	t.Logf("webtier RSS: %d KiB before, peak %d KiB, bound %d KiB", base, peak, bound)
	if peak > bound {
		t.Errorf("webtier's peak RSS %d KiB with %d idle connections exceeds %d KiB", peak, conns, bound)
	}
	if rs := b.Requests(); len(rs) != 1 {
		t.Errorf("backend received %s; want only GET /meanwhile", describeReqs(rs))
	}
	if !b.WaitOpen(rawOpenBound, resourceWait) {
		t.Errorf("%d backend connections open after the attack; want at most %d", b.Open(), rawOpenBound)
	}
}

// Many idle keep-alive connections: 1,000 connections that each complete a
// request and then send nothing. Every one is closed by idle_timeout (2 s
// here; the idle wheel closes them within a second of it, wherever they
// were filed), and a client that keeps its connection busy with a request
// every 500 ms over several timeouts is never closed under it: a
// connection's deadline moves with each request though its place in the
// wheel does not.
func TestAttackIdleKeepAliveConnections(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w := startResourceWebtier(t, b, "    idle_timeout: 2s\n")
	const conns = 1000
	results := dialMany(t, w.Addr(), conns, "GET /idle HTTP/1.1\r\nHost: a\r\n\r\n")

	busy, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	br := bufio.NewReader(busy)
	const busyRequests = 12 // 6 s: three idle timeouts
	for i := range busyRequests {
		_ = busy.SetDeadline(time.Now().Add(resourceWait))
		if _, err := io.WriteString(busy, "GET /busy HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
			t.Fatalf("busy connection, request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("busy connection, request %d: %v; want it kept open while in use", i, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		time.Sleep(500 * time.Millisecond) // the client's pace, under idle_timeout
	}

	unclosed, unanswered := 0, 0
	for _, r := range results {
		h := <-r
		if h.first() != 200 {
			unanswered++
		}
		if !h.closed {
			unclosed++
		}
	}
	if unanswered > 0 {
		t.Errorf("%d of %d keep-alive connections got no 200 for their request", unanswered, conns)
	}
	if unclosed > 0 {
		t.Errorf("%d of %d idle keep-alive connections still open after %v; want all closed by idle_timeout", unclosed, conns, 2*resourceWait)
	}
	if rs := b.Requests(); len(rs) != conns+busyRequests {
		t.Errorf("backend received %d requests; want %d", len(rs), conns+busyRequests)
	}
}

// dialMany opens n connections to addr, sends raw on each (if any), and
// returns what each then hears until webtier closes it (closedBy, within
// 2*resourceWait). The connections close with the test.
func dialMany(t *testing.T, addr string, n int, raw string) []<-chan attackHeard {
	t.Helper()
	results := make([]<-chan attackHeard, 0, n)
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if raw != "" {
			if _, err := io.WriteString(c, raw); err != nil {
				t.Fatal(err)
			}
		}
		results = append(results, closedBy(c, 2*resourceWait))
	}
	return results
}
