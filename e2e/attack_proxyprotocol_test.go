package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// The client's address at the edge (issue 20): a real HAProxy in front of
// webtier sending the PROXY protocol (v1 with send-proxy, v2 with
// send-proxy-v2), as an NLB or an L4 balancer does, and what an attacker
// sends to get another address believed. One webtier, one Tomcat and one
// HAProxy serve every case (a JVM start is the slow part).
//
// Loopback takes any 127.x source, so the client of each case binds its
// own: 127.0.0.2 is the client behind HAProxy, 127.0.0.5 the ALB of the
// trusted_proxies listener, 127.0.0.6 a stranger; HAProxy connects to
// webtier from 127.0.0.1, the one source proxy_protocol lists.

// ppEdge is the setup every case shares.
type ppEdge struct {
	w       *peer.Webtier
	pp, alb string // webtier's listeners: proxy_protocol, trusted_proxies
	hapV1   string // HAProxy's frontends: send-proxy and send-proxy-v2
	hapV2   string
	backend *peer.Backend
}

func startPPEdge(t *testing.T) *ppEdge {
	t.Helper()
	peer.RequireTools(t, "haproxy")
	tc := startTomcat(t, peer.TomcatOptions{})
	e := &ppEdge{backend: peer.StartBackend(t, "127.0.0.1", "app")}
	e.alb, e.pp = peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
	e.w = peer.StartWebtier(t, peer.Build(t), e.alb, fmt.Sprintf(`
listeners:
  - address: %q
    name: alb
    trusted_proxies: ["127.0.0.5"]
  - address: %q
    name: nlb
    proxy_protocol: {from: ["127.0.0.1/32"], timeout: 1s}
routes:
  - path: /app/
    upstream: app
  - path: /
    upstream: tomcat
upstreams:
  app:
    targets: [%q]
  tomcat:
    ajp: {secret: %q}
    targets: [%q]
access_log: {format: json}
logging: {level: info, format: json}
`, e.alb, e.pp, e.backend.URL(), tc.Secret(), "ajp://"+tc.AJPAddr()))
	e.hapV1, e.hapV2 = peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
	peer.StartHAProxy(t, fmt.Sprintf(`
global
    maxconn 200
defaults
    mode tcp
    timeout connect 2s
    timeout client 30s
    timeout server 30s
frontend v1
    bind %s
    default_backend v1
backend v1
    server webtier %s send-proxy
frontend v2
    bind %s
    default_backend v2
backend v2
    server webtier %s send-proxy-v2
`, e.hapV1, e.pp, e.hapV2, e.pp), e.hapV1, e.hapV2)
	return e
}

// clientFrom returns an HTTP client whose connections leave from ip, one
// per request, and a function returning the local address of the last.
func clientFrom(t *testing.T, ip string) (*http.Client, func() *net.TCPAddr) {
	t.Helper()
	last := make(chan *net.TCPAddr, 1)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			select {
			case <-last:
			default:
			}
			last <- c.LocalAddr().(*net.TCPAddr)
		}
		return c, err
	}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, func() *net.TCPAddr { return <-last }
}

func TestAttack_proxyProtocol(t *testing.T) {
	e := startPPEdge(t)

	// HAProxy's PROXY header names the client (127.0.0.2) to webtier: an
	// HTTP backend gets it as X-Forwarded-For, Tomcat as getRemoteAddr,
	// getRemoteHost and (AJP_REMOTE_PORT) getRemotePort, and the access
	// log names it.
	for _, hap := range []struct{ name, addr string }{{"send-proxy", e.hapV1}, {"send-proxy-v2", e.hapV2}} {
		t.Run("haproxy/"+hap.name, func(t *testing.T) {
			c, local := clientFrom(t, "127.0.0.2")
			req := newRequest(t, "GET", "http://"+hap.addr+"/app/"+hap.name, nil)
			req.Header.Set("X-Forwarded-For", "203.0.113.66") // from a client: replaced
			if resp, _ := send(t, c, req); resp.StatusCode != 200 {
				t.Fatalf("GET /app/: %s", resp.Status)
			}
			local()
			if got := e.backend.Last().Header["X-Forwarded-For"]; len(got) != 1 || got[0] != "127.0.0.2" {
				t.Errorf("HTTP backend got X-Forwarded-For %q; want [127.0.0.2]", got)
			}
			ec := echo(t, c, newRequest(t, "GET", "http://"+hap.addr+"/echo.jsp?"+hap.name, nil))
			from := local()
			if ec.RemoteAddr != "127.0.0.2" || ec.RemoteHost != "127.0.0.2" || ec.RemotePort != from.Port {
				t.Errorf("Tomcat got remote %s (host %s) port %d; want 127.0.0.2 port %d",
					ec.RemoteAddr, ec.RemoteHost, ec.RemotePort, from.Port)
			}
			want := `"client":"127.0.0.2"`
			e.w.WaitLog(t, "/echo.jsp?"+hap.name)
			for _, uri := range []string{"/app/" + hap.name, "/echo.jsp?" + hap.name} {
				lines := logLines(e.w, `"uri":"`+uri+`"`)
				if len(lines) != 1 || !strings.Contains(lines[0], want) {
					t.Errorf("access log lines for %s: %q; want one with %s", uri, lines, want)
				}
			}
		})
	}

	// Behind an ALB (trusted_proxies), Tomcat gets the client the ALB
	// names; from anyone else a forged X-Forwarded-For changes nothing.
	for _, tc := range []struct{ name, from, listener, want string }{
		{"alb-names-the-client", "127.0.0.5", e.alb, "198.51.100.9"},
		{"forged-xff-untrusted-peer", "127.0.0.6", e.alb, "127.0.0.6"},
		{"forged-xff-behind-haproxy", "127.0.0.2", e.hapV2, "127.0.0.2"},
	} {
		t.Run("xff/"+tc.name, func(t *testing.T) {
			c, local := clientFrom(t, tc.from)
			req := newRequest(t, "GET", "http://"+tc.listener+"/echo.jsp", nil)
			req.Header.Set("X-Forwarded-For", "198.51.100.9")
			ec := echo(t, c, req)
			from := local()
			if ec.RemoteAddr != tc.want || ec.RemoteHost != tc.want {
				t.Errorf("Tomcat got getRemoteAddr %s, getRemoteHost %s; want %s", ec.RemoteAddr, ec.RemoteHost, tc.want)
			}
			if tc.listener == e.alb && ec.RemotePort != from.Port {
				// mod_remoteip keeps the connection's port.
				t.Errorf("Tomcat got getRemotePort %d; want the connection's, %d", ec.RemotePort, from.Port)
			}
		})
	}

	// Each attack is refused: the connection closes without an answer,
	// nothing reaches the backend, and webtier logs why.
	v1 := "PROXY TCP4 203.0.113.66 127.0.0.1 4711 80\r\n"
	v2bogus := "\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff" + "\xcb\x00\x71\x42\x7f\x00\x00\x01\x12\x67\x00\x50"
	attackGet := "GET /app/attack HTTP/1.1\r\nHost: a\r\n\r\n"
	for _, tc := range []struct{ name, from, send, log string }{
		{"header-from-unlisted-source", "127.0.0.6", v1 + attackGet, "not in proxy_protocol.from"},
		{"header-v2-from-unlisted-source", "127.0.0.6", "\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c" + "\xcb\x00\x71\x42\x7f\x00\x00\x01\x12\x67\x00\x50" + attackGet, "not in proxy_protocol.from"},
		{"missing-header-from-listed-source", "127.0.0.1", attackGet, "must send one"},
		{"truncated-v1-line", "127.0.0.1", "PROXY TCP4 203.0.113.66 127.0.0.1 4711\r\n" + attackGet, "malformed"},
		{"oversized-v1-line", "127.0.0.1", "PROXY TCP4 " + strings.Repeat("2", 200) + "\r\n" + attackGet, "longer than 107"},
		{"v2-bogus-length", "127.0.0.1", v2bogus + attackGet, "a v2 length of 65535 bytes"},
	} {
		t.Run("refused/"+tc.name, func(t *testing.T) {
			before, logged := e.backend.Count(), refusals(e.w, tc.log)
			c := dialFrom(t, tc.from, e.pp)
			if _, err := io.WriteString(c, tc.send); err != nil {
				t.Fatal(err)
			}
			if got, closed := readUntilClosed(c); got != "" || !closed {
				t.Fatalf("webtier answered %q (closed %v); want the connection closed without an answer", got, closed)
			}
			if n := e.backend.Count() - before; n != 0 {
				t.Fatalf("%d requests reached the backend", n)
			}
			waitRefusal(t, e.w, tc.log, logged)
		})
	}

	// A header sent one byte a second is cut off at proxy_protocol.timeout
	// (1 s), long before it is complete: a slowloris on the header holds
	// nothing.
	t.Run("refused/header-one-byte-a-second", func(t *testing.T) {
		before, logged := e.backend.Count(), refusals(e.w, "within 1s")
		c := dialFrom(t, "127.0.0.1", e.pp)
		sent := 0
		closed := false
		for ; sent < len(v1) && !closed; sent++ {
			if _, err := c.Write([]byte{v1[sent]}); err != nil {
				closed = true
				break
			}
			// The read waits a second for webtier to close: the pace.
			c.SetReadDeadline(time.Now().Add(time.Second))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			closed = err != nil && !(errors.As(err, &ne) && ne.Timeout())
		}
		if !closed || sent >= len(v1) {
			t.Fatalf("sent %d of the header's %d bytes, closed %v; want closed before the end", sent, len(v1), closed)
		}
		if n := e.backend.Count() - before; n != 0 {
			t.Fatalf("%d requests reached the backend", n)
		}
		waitRefusal(t, e.w, "within 1s", logged)
	})
}

// refusals counts webtier's log lines of refused PROXY protocol
// connections whose reason contains why.
func refusals(w *peer.Webtier, why string) int {
	n := 0
	for _, l := range logLines(w, "PROXY protocol: connection refused") {
		if strings.Contains(l, why) {
			n++
		}
	}
	return n
}

// waitRefusal waits until webtier has logged one refusal for why more
// than the n it had logged (the log is written as the refusal happens,
// and read here from webtier's output), failing after attackRead.
func waitRefusal(t *testing.T, w *peer.Webtier, why string, n int) {
	t.Helper()
	deadline := time.Now().Add(attackRead)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for refusals(w, why) <= n {
		if time.Now().After(deadline) {
			t.Fatalf("webtier logged no refusal with %q; log:\n%s", why, strings.Join(logLines(w, "PROXY protocol"), "\n"))
		}
		<-tick.C
	}
}

// dialFrom connects to addr from the local address ip.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readUntilClosed reads what webtier sends until it closes the
// connection, attackRead at most, and returns it and whether it closed.
func readUntilClosed(c net.Conn) (string, bool) {
	c.SetReadDeadline(time.Now().Add(attackRead))
	b, err := io.ReadAll(bufio.NewReader(c))
	var ne net.Error
	return string(b), !(errors.As(err, &ne) && ne.Timeout())
}
