package frontend

import (
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// TestIdleMemory measures the Go heap a parked keep-alive connection keeps
// live on the fast path (after a GC, so garbage does not count), and with
// WEBTIER_IDLE_MEM_PROFILE a heap profile of every allocation (rate 1) to
// see what it is. It is a measurement, not an assertion, and runs only
// when asked (the clients are raw sockets of this process, so N plus the
// server's N must fit the file limit):
//
//	WEBTIER_IDLE_MEM_N=9000 go test -run TestIdleMemory -v ./proxy/
//
// RSS per connection of the whole process, as e2e/bench measures it, is
// the harness in cmd/webtier (TestIdleHarness).
func TestIdleMemory(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("WEBTIER_IDLE_MEM_N"))
	if n <= 0 {
		t.Skip("set WEBTIER_IDLE_MEM_N to the number of idle connections to measure")
	}
	if _, err := proxytest.RaiseFileLimit(); err != nil {
		t.Fatal(err)
	}
	profile := os.Getenv("WEBTIER_IDLE_MEM_PROFILE")
	if profile != "" {
		runtime.MemProfileRate = 1
	}
	debug.SetGCPercent(200) // as cmd/webtier
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 100)
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	s, err := newFastServer(ln, &http.Server{}, h, proxy.ListenerOptions{}, zap.NewNop())
	if err != nil {
		t.Skip(err)
	}
	go s.Serve() //nolint:errcheck // ends with Close
	defer s.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	heap := func() runtime.MemStats {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms
	}
	fd, err := proxytest.OpenIdle(port, 0) // warm up: one worker, its buffers
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	before := heap()
	fds, err := proxytest.OpenIdleN(port, n)
	if err != nil {
		t.Fatal(err)
	}
	defer proxytest.CloseAll(fds)
	after := heap()
	per := func(a, b uint64) float64 { return (float64(b) - float64(a)) / float64(n) }
	t.Logf("%d idle connections, bytes per connection: live heap %.0f (in use %.0f), off-heap runtime %.0f (OtherSys: mostly Go's pollDesc, 512 B each in Go 1.26), GC metadata %.0f",
		n, per(before.HeapAlloc, after.HeapAlloc), per(before.HeapInuse, after.HeapInuse), per(before.OtherSys, after.OtherSys), per(before.GCSys, after.GCSys))
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
			t.Fatal(err)
		}
	}
}
