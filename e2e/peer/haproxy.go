package peer

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HAProxyL4 is HAProxy 2.6 running as an L4 balancer in front of webtier
// instances (../shared/PEERS.md §6): mode tcp, so that a client's
// keep-alive connection stays pinned to the instance it first reached, and
// an HTTP health check on each instance, as an NLB or an L4 switch does.
type HAProxyL4 struct {
	p    *proc
	addr string
	sock string // stats socket, level admin
}

// L4Check is the health check HAProxy runs on every server.
type L4Check struct {
	Path  string        // GET path, e.g. "/health_check.html"
	Inter time.Duration // check interval
	Fall  int           // failed checks before a server is DOWN
	Rise  int           // passed checks before it is UP again
}

// StartHAProxyL4 starts `haproxy -db` listening on listenAddr (e.g. from
// FreeAddr) in front of servers, named s1, s2, ... in order, each checked
// with chk, and returns once every server is UP. In t.Cleanup it stops
// HAProxy with SIGTERM; if the test failed, it logs the last lines.
func StartHAProxyL4(t testing.TB, listenAddr string, chk L4Check, servers ...string) *HAProxyL4 {
	t.Helper()
	RequireTools(t, "haproxy")
	dir := t.TempDir()
	h := &HAProxyL4{addr: listenAddr, sock: filepath.Join(dir, "l4.sock")}
	var b strings.Builder
	fmt.Fprintf(&b, `global
    maxconn 4000
    stats socket %s mode 600 level admin
defaults
    mode tcp
    timeout connect 2s
    # an L4 session table keeps idle sessions for minutes
    timeout client 600s
    timeout server 600s
    timeout check 2s
frontend l4
    bind %s
    default_backend proxies
backend proxies
    balance roundrobin
    option httpchk
    http-check send meth GET uri %s ver HTTP/1.1 hdr Host localhost
    http-check expect status 200
    default-server check inter %dms fall %d rise %d
`, h.sock, listenAddr, chk.Path, chk.Inter.Milliseconds(), chk.Fall, chk.Rise)
	for i, s := range servers {
		fmt.Fprintf(&b, "    server s%d %s\n", i+1, s)
	}
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatalf("StartHAProxyL4: %v", err)
	}
	p, err := startProc(filepath.Join(dir, "haproxy.log"), "haproxy", "-db", "-f", cfg)
	if err != nil {
		t.Fatalf("StartHAProxyL4: %v", err)
	}
	h.p = p
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("haproxy log (%s), last 30 lines:\n%s\nconfig:\n%s", p.logPath, tailLines(p.logs(), 30), b.String())
		}
	})
	t.Cleanup(func() { p.stop(stopGrace) }) //nolint:errcheck // its exit status says nothing about the test
	for i := range servers {
		h.WaitStatus(t, fmt.Sprintf("s%d", i+1), "UP")
	}
	return h
}

// Addr returns HAProxy's listen address.
func (h *HAProxyL4) Addr() string { return h.addr }

// Status returns a server's check status as HAProxy's stats show it:
// "UP", "DOWN", "UP 1/2" (failing, not down yet), "DOWN 1/2", "MAINT".
func (h *HAProxyL4) Status(server string) (string, error) {
	c, err := net.DialTimeout("unix", h.sock, time.Second)
	if err != nil {
		return "", fmt.Errorf("haproxy stats socket: %w", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // a read fails instead
	if _, err := io.WriteString(c, "show stat\n"); err != nil {
		return "", fmt.Errorf("haproxy stats socket: %w", err)
	}
	r := csv.NewReader(bufio.NewReader(c))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return "", fmt.Errorf("haproxy show stat: %w", err)
	}
	status := -1
	for _, rec := range recs {
		if len(rec) > 0 && strings.HasPrefix(rec[0], "# ") {
			rec[0] = strings.TrimPrefix(rec[0], "# ")
			for i, name := range rec {
				if name == "status" {
					status = i
				}
			}
			continue
		}
		if status >= 0 && len(rec) > status && rec[0] == "proxies" && rec[1] == server {
			return rec[status], nil
		}
	}
	return "", fmt.Errorf("haproxy show stat: no server %q", server)
}

// WaitStatus waits until server's status is want, failing the test after
// 30 s.
func (h *HAProxyL4) WaitStatus(t testing.TB, server, want string) {
	t.Helper()
	var last string
	var err error
	if !poll(readyTimeout, func() bool {
		last, err = h.Status(server)
		return err == nil && last == want
	}) {
		t.Fatalf("haproxy: server %s is %q (%v) after %v; want %s\nlog:\n%s",
			server, last, err, readyTimeout, want, tailLines(h.p.logs(), 30))
	}
}
