package main

import (
	"bytes"
	"cmp"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// TestIdleHarness measures what idle keep-alive connections cost a webtier
// process built from this tree: RSS per connection (from a fresh start,
// measured as e2e/bench measures it: RSS 1 s after the last connection's
// first response, minus RSS before; and again 12 s after) and CPU time and
// thread wake-ups per second while they sit idle, with one connection and
// with N. It is a
// measurement, not an assertion, and runs only when asked:
//
//	WEBTIER_IDLE_N=19000 go test -run TestIdleHarness -v -timeout 10m ./cmd/webtier/
//
// The clients are raw sockets in this process (outside Go's poller, so
// they do not need webtier's file limit), bound to 127.0.0.x source
// addresses so that 19,000 of them do not run out of ports. The machine's
// other load shows in the CPU figures; the wake-up counts (voluntary
// context switches of all webtier's threads) are steadier.
func TestIdleHarness(t *testing.T) {
	// The CPU windows start this long after the connections are open:
	// past webtier's memory releases (after 0.3 s and 11 s of quiet,
	// cmd/webtier/procs.go), so that they measure the idle state.
	const settle = 12 * time.Second
	n, _ := strconv.Atoi(os.Getenv("WEBTIER_IDLE_N"))
	if n <= 0 {
		t.Skip("set WEBTIER_IDLE_N to the number of idle connections to measure")
	}
	window := 10 * time.Second
	if s := os.Getenv("WEBTIER_IDLE_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		window = d
	}
	lim, err := proxytest.RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(n)+256 > lim {
		t.Fatalf("RLIMIT_NOFILE %d is too low for %d connections", lim, n)
	}

	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 100)
	go http.Serve(backend, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { //nolint:errcheck // ends with the test
		w.Write(body) //nolint:errcheck // the harness only needs the response
	}))
	defer backend.Close()
	bin := peer.Build(t)
	if os.Getenv(peer.BinEnv) == "" {
		// Build leaves its binary for e2e's TestMain to remove; here
		// the test is the only one to use it.
		t.Cleanup(func() { os.RemoveAll(filepath.Dir(bin)) })
	}
	addr := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, bin, addr, fmt.Sprintf(`listeners:
  - address: %q
    idle_timeout: 10m
routes:
  - path: /
    upstream: backend
upstreams:
  backend:
    targets: ["http://%s"]
logging:
  level: %s
`, addr, backend.Addr(), cmp.Or(os.Getenv("WEBTIER_IDLE_LOG"), "warn")))
	if os.Getenv("WEBTIER_IDLE_LOG") != "" {
		defer func() { t.Log(w.Logs()) }()
	}
	pid := w.PID()
	port := addrPort(t, addr)
	time.Sleep(300 * time.Millisecond)

	one, err := proxytest.OpenIdle(port, 0)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(settle)
	cpu, wakes := idleCost(t, pid, window)
	t.Logf("1 idle connection: %.3f ms CPU/s, %.1f wake-ups/s over %v", cpu, wakes, window)
	syscall.Close(one)
	time.Sleep(300 * time.Millisecond)

	before := rssKiB(t, pid)
	fds, err := proxytest.OpenIdleN(port, n)
	if err != nil {
		t.Fatal(err)
	}
	defer proxytest.CloseAll(fds)
	time.Sleep(time.Second)
	after := rssKiB(t, pid)
	t.Logf("webtier PID %d", pid)
	t.Logf("%d idle connections: RSS %d -> %d KiB, %.2f KiB per connection 1 s after", n, before, after, float64(after-before)/float64(n))
	time.Sleep(settle - time.Second)
	after = rssKiB(t, pid)
	t.Logf("%d idle connections: RSS %d KiB, %.2f KiB per connection %v after", n, after, float64(after-before)/float64(n), settle)
	cpu, wakes = idleCost(t, pid, window)
	t.Logf("%d idle connections: %.3f ms CPU/s, %.1f wake-ups/s over %v", n, cpu, wakes, window)
}

func addrPort(t *testing.T, addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// rssKiB is the process's VmRSS.
func rssKiB(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return kib
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// idleCost is the process's CPU time (ms per second, from its threads'
// schedstat, in nanoseconds: utime and stime count 10 ms ticks) and its
// threads' voluntary context switches (per second) over window. Threads
// that exit meanwhile drop out: compare runs, not absolutes.
func idleCost(t *testing.T, pid int, window time.Duration) (cpuMS, wakes float64) {
	c0, w0 := threadsSum(t, pid)
	start := time.Now()
	time.Sleep(window)
	c1, w1 := threadsSum(t, pid)
	secs := time.Since(start).Seconds()
	return float64(c1-c0) / 1e6 / secs, float64(w1-w0) / secs
}

// threadsSum sums the CPU nanoseconds (schedstat) and voluntary context
// switches (status) of the process's threads.
func threadsSum(t *testing.T, pid int) (cpuNS, switches uint64) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("no threads of %d: %v", pid, err)
	}
	for _, task := range tasks {
		if b, err := os.ReadFile(task + "/schedstat"); err == nil {
			ns, _ := strconv.ParseUint(strings.Fields(string(b))[0], 10, 64)
			cpuNS += ns
		}
		b, err := os.ReadFile(task + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "voluntary_ctxt_switches:"); ok {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				switches += n
			}
		}
	}
	return cpuNS, switches
}
