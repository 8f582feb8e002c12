package e2e

import (
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/webtier/webtier/e2e/peer"
)

// reloadConfig routes every request to the backend at addr; upstreamKey
// lets a test misspell the route's upstream key.
func reloadConfig(listen, upstreamKey, addr string) string {
	return fmt.Sprintf(`listeners:
  - address: %q
routes:
  - path: /
    %s: app
upstreams:
  app:
    targets: ["http://%s"]
logging:
  level: info
  format: json
`, listen, upstreamKey, addr)
}

// Issue: a sysadmin's reload. kill -HUP makes webtier read its config file
// again: requests move to the new backend on the same keep-alive
// connections without one failing, and a config with a mistake is reported
// (file, line, key) while the previous config keeps serving. Without SIGHUP
// handling the process would die at the signal.
func TestReloadOnSIGHUP(t *testing.T) {
	a := peer.StartBackend(t, "127.0.0.1", "a")
	b := peer.StartBackend(t, "127.0.0.1", "b")
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, reloadConfig(listen, "upstream", a.Addr()))
	results := stream(t, w.URL(), false)

	// next returns the next result, failing the test on a failed request
	// or when the stream has ended.
	next := func(step string) result {
		t.Helper()
		r, ok := <-results
		if !ok {
			t.Fatalf("%s: the request stream ended", step)
		}
		if !r.ok() {
			t.Fatalf("%s: a request failed: %v", step, r)
		}
		return r
	}
	if r := next("before reload"); r.backend != "a" {
		t.Fatalf("before reload: answered by %q; want a", r.backend)
	}

	w.WriteConfig(t, reloadConfig(listen, "upstream", b.Addr()))
	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	w.WaitLog(t, "config reloaded")
	// Requests sent before the reload may still come from a; every one
	// must succeed, and b must take over.
	for n := 0; ; n++ {
		if n == 500 {
			t.Fatal("after reload: 500 requests later, still no answer from b")
		}
		if next("after reload").backend == "b" {
			break
		}
	}
	for range 5 {
		if r := next("after reload"); r.backend != "b" {
			t.Fatalf("after reload: answered by %q once b had answered; want b", r.backend)
		}
	}

	w.WriteConfig(t, reloadConfig(listen, "upstrem", a.Addr()))
	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	w.WaitLog(t, "config reload failed")
	for _, want := range []string{w.ConfigPath() + ":5: routes[0].upstrem: unknown key", `"serving":"previous config"`} {
		if !strings.Contains(w.Logs(), want) {
			t.Errorf("the failed reload's log does not say %q", want)
		}
	}
	for range 20 {
		if r := next("after a failed reload"); r.backend != "b" {
			t.Fatalf("after a failed reload: answered by %q; want b (the config in force)", r.backend)
		}
	}
	select {
	case <-w.Exited():
		t.Fatal("webtier exited after SIGHUP")
	default:
	}
}
