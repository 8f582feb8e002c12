package peer

import (
	"os"
	"path/filepath"
	"testing"
)

// HAProxy is HAProxy 2.6 running a config the test wrote: for what
// HAProxyL4 does not cover, such as a balancer sending the PROXY
// protocol (`server ... send-proxy` or `send-proxy-v2`, ../shared/PEERS.md
// §6).
type HAProxy struct{ p *proc }

// StartHAProxy starts `haproxy -db -f` with cfg and returns once each of
// listens (the config's bind addresses) accepts connections. In t.Cleanup
// it stops HAProxy with SIGTERM; if the test failed, it logs the last
// lines and the config.
func StartHAProxy(t testing.TB, cfg string, listens ...string) *HAProxy {
	t.Helper()
	RequireTools(t, "haproxy")
	dir := t.TempDir()
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatalf("StartHAProxy: %v", err)
	}
	p, err := startProc(filepath.Join(dir, "haproxy.log"), "haproxy", "-db", "-f", path)
	if err != nil {
		t.Fatalf("StartHAProxy: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy log (%s), last 30 lines:\n%s\nconfig:\n%s", p.logPath, tailLines(p.logs(), 30), cfg)
		}
	})
	t.Cleanup(func() { p.stop(stopGrace) }) //nolint:errcheck // its exit status says nothing about the test
	for _, addr := range listens {
		if !poll(readyTimeout, func() bool {
			if p.exited() {
				return true
			}
			return accepts(addr)
		}) || p.exited() {
			t.Fatalf("haproxy did not listen on %s within %v; log:\n%s", addr, readyTimeout, tailLines(p.logs(), 30))
		}
	}
	return &HAProxy{p: p}
}

// PID returns HAProxy's process ID.
func (h *HAProxy) PID() int { return h.p.pid() }
