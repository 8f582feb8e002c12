package frontend

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// rawBackend is a backend on a raw socket that records every request head
// it receives, byte for byte, and answers it with answer(head). After a
// 101 answer it treats the connection as a tunnel, as a backend that
// switched protocols would: whatever arrives next is recorded in tunnel
// and echoed back.
type rawBackend struct {
	ln     net.Listener
	answer func(head string) string
	heads  chan string
	tunnel chan string
}

func newRawBackend(t *testing.T, answer func(head string) string) *rawBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &rawBackend{ln: ln, answer: answer, heads: make(chan string, 16), tunnel: make(chan string, 16)}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go b.serve(c)
		}
	}()
	return b
}

func (b *rawBackend) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		var head strings.Builder
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			head.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		b.heads <- head.String()
		ans := b.answer(head.String())
		if _, err := io.WriteString(c, ans); err != nil {
			return
		}
		if strings.HasPrefix(ans, "HTTP/1.1 101 ") {
			buf := make([]byte, 4096)
			for {
				n, err := br.Read(buf)
				if n > 0 {
					b.tunnel <- string(buf[:n])
					c.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}
	}
}

// options is one upstream "app" for b, routed for any host at /.
func (b *rawBackend) options(t *testing.T) proxy.Options {
	t.Helper()
	ap := b.ln.Addr().(*net.TCPAddr)
	tg := proxy.TargetOptions{Scheme: "http", Host: ap.IP.String(), Port: uint16(ap.Port), Weight: 1}
	return proxy.Options{
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{tg}}},
	}
}

// head waits for the next request head the backend receives.
func (b *rawBackend) head(t *testing.T) string {
	t.Helper()
	select {
	case h := <-b.heads:
		return h
	case <-time.After(10 * time.Second): // a safety net: a hang fails the test
		t.Fatal("the backend received no request")
		return ""
	}
}

// noMore fails the test if the backend received a request head or tunnel
// bytes that the test did not take.
func (b *rawBackend) noMore(t *testing.T) {
	t.Helper()
	select {
	case h := <-b.heads:
		t.Errorf("the backend received another request:\n%s", h)
	case s := <-b.tunnel:
		t.Errorf("the backend received bytes over a tunnel: %q", s)
	default:
	}
}

// hasField reports whether the head has a field named name (any case).
func hasField(head, name string) bool {
	for line := range strings.Lines(head) {
		if k, _, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// field returns the value of the head's first field named name.
func field(head, name string) string {
	for line := range strings.Lines(head) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

const okAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// rawProxy serves opts (with one listener, modified by mod) and returns its
// address.
func rawProxy(t *testing.T, opts proxy.Options, mod func(*proxy.ListenerOptions)) string {
	t.Helper()
	lo := proxy.ListenerOptions{Name: "test", Address: "127.0.0.1:0"}
	if mod != nil {
		mod(&lo)
	}
	opts.Listeners = []proxy.ListenerOptions{lo}
	return serveWith(t, opts, zap.NewNop())[0].String()
}

// Issue 15, finding 2, from the attacker's side: an h2c upgrade must not
// open a tunnel past the proxy's rules, whether the backend honours h2c
// (Tomcat with Http2Protocol) or answers 101 to anything.
func TestUpgrade_h2cNeverTunnels(t *testing.T) {
	const h2c = "GET /x HTTP/1.1\r\nHost: www.example.test\r\nConnection: Upgrade, HTTP2-Settings\r\n" +
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
	// Sent next on the same client connection: over a tunnel it would
	// reach the backend as it is, forged X-Forwarded-For and all.
	const next = "GET /admin HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
	tests := []struct {
		name       string
		answer     func(head string) string
		wantStatus int
	}{
		{name: "backend-honours-h2c", answer: func(head string) string {
			if strings.Contains(strings.ToLower(head), "upgrade: h2c") {
				return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
			}
			return okAnswer
		}, wantStatus: 200},
		{name: "backend-answers-101-to-anything", answer: func(head string) string {
			if strings.HasPrefix(head, "GET /x ") {
				return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
			}
			return okAnswer
		}, wantStatus: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, tt.answer)
			c := dialRaw(t, rawProxy(t, b.options(t), nil))
			c.send(h2c)
			resp, _ := c.read("GET")
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("client got %d; want %d", resp.StatusCode, tt.wantStatus)
			}
			first := b.head(t)
			for _, f := range []string{"Upgrade", "HTTP2-Settings", "Connection"} {
				if hasField(first, f) {
					t.Errorf("the backend received %s:\n%s", f, first)
				}
			}
			c.send(next)
			if resp, _ := c.read("GET"); resp.StatusCode != 200 {
				t.Errorf("second request: client got %d; want 200", resp.StatusCode)
			}
			second := b.head(t)
			if got := field(second, "X-Forwarded-For"); got != "127.0.0.1" {
				t.Errorf("second request reached the backend with X-Forwarded-For %q; want 127.0.0.1:\n%s", got, second)
			}
			b.noMore(t)
		})
	}
}

// A route forwards the upgrades it allows (websocket by default) and no
// other; "upgrades: []" forwards none.
func TestUpgrade_routeAllowList(t *testing.T) {
	upgrade := func(proto string) string {
		return "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: " + proto + "\r\n\r\n"
	}
	answer := func(head string) string {
		if up := field(head, "Upgrade"); up != "" {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: " + up + "\r\n\r\n"
		}
		return okAnswer
	}
	tests := []struct {
		name     string
		upgrades []string
		req      string
		want     int
	}{
		{"websocket-by-default", nil, upgrade("websocket"), 101},
		{"websocket-any-case", nil, upgrade("WebSocket"), 101},
		{"other-protocol-by-default", nil, upgrade("echo"), 200},
		{"two-protocols", nil, upgrade("websocket, h2c"), 200},
		{"none-allowed", []string{}, upgrade("websocket"), 200},
		{"listed", []string{"echo"}, upgrade("echo"), 101},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newRawBackend(t, answer)
			opts := b.options(t)
			opts.Routes[0].Upgrades = tt.upgrades
			c := dialRaw(t, rawProxy(t, opts, nil))
			c.send(tt.req)
			resp, err := http.ReadResponse(c.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.want {
				t.Fatalf("client got %d; want %d", resp.StatusCode, tt.want)
			}
			head := b.head(t)
			if tt.want == 101 {
				c.send("ping\n")
				if line, err := c.br.ReadString('\n'); line != "ping\n" {
					t.Errorf("after the upgrade read %q, %v; want the echo", line, err)
				}
				return
			}
			if hasField(head, "Upgrade") || hasField(head, "Connection") {
				t.Errorf("a plain request reached the backend with its upgrade:\n%s", head)
			}
		})
	}
}

func TestNewHandler_refusesH2CUpgrades(t *testing.T) {
	_, err := proxy.NewHandler(proxy.Options{
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app", Upgrades: []string{"websocket", "H2C"}}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: 9, Weight: 1}}}},
	}, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "h2c") {
		t.Errorf("NewHandler = %v; want an error about h2c", err)
	}
}

// Issue 15, finding 8: header names with "_" are dropped unless the
// listener keeps them, on the lean path and on ReverseProxy's (upgrades).
func TestUnderscoreHeaders(t *testing.T) {
	const fields = "X_Forwarded_For: 10.6.6.6\r\nMy_Role: admin\r\nX-Plain: 1\r\n"
	reqs := map[string]string{
		"lean":         "GET /u HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n",
		"reverseproxy": "GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" + fields + "\r\n",
	}
	answer := func(head string) string {
		if hasField(head, "Upgrade") {
			return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
		}
		return okAnswer
	}
	for _, keep := range []bool{false, true} {
		for path, req := range reqs {
			t.Run(fmt.Sprintf("%s/keep=%v", path, keep), func(t *testing.T) {
				b := newRawBackend(t, answer)
				c := dialRaw(t, rawProxy(t, b.options(t), func(lo *proxy.ListenerOptions) { lo.KeepUnderscoreHeaders = keep }))
				c.send(req)
				if _, err := http.ReadResponse(c.br, nil); err != nil {
					t.Fatal(err)
				}
				head := b.head(t)
				for _, f := range []string{"X_Forwarded_For", "My_Role"} {
					if hasField(head, f) != keep {
						t.Errorf("%s forwarded: %v; want %v:\n%s", f, !keep, keep, head)
					}
				}
				if !hasField(head, "X-Plain") || field(head, "X-Forwarded-For") != "127.0.0.1" {
					t.Errorf("the other fields are not as forwarded before:\n%s", head)
				}
			})
		}
	}
}

// Issue 15, finding 8: a query reaches the backend byte for byte, ";" and
// malformed escapes included, on both paths.
func TestQueryByteForByte(t *testing.T) {
	for _, q := range []string{"a=1;b=2", "a=1&c=%zz", "x=%41;y"} {
		for path, extra := range map[string]string{"lean": "", "reverseproxy": "Connection: Upgrade\r\nUpgrade: websocket\r\n"} {
			t.Run(path+"/"+q, func(t *testing.T) {
				b := newRawBackend(t, func(string) string { return okAnswer })
				c := dialRaw(t, rawProxy(t, b.options(t), nil))
				c.send("GET /semi?" + q + " HTTP/1.1\r\nHost: x\r\n" + extra + "\r\n")
				if _, err := http.ReadResponse(c.br, nil); err != nil {
					t.Fatal(err)
				}
				line, _, _ := strings.Cut(b.head(t), "\r\n")
				if want := "GET /semi?" + q + " HTTP/1.1"; line != want {
					t.Errorf("the backend received %q; want %q", line, want)
				}
			})
		}
	}
}

// Issue 15, finding 8: an HTTP/1.0 request without Host gets the
// upstream's host_header as Host and X-Forwarded-Host, or 400; never the
// backend's own address.
func TestHTTP10WithoutHost(t *testing.T) {
	t.Run("host_header", func(t *testing.T) {
		b := newRawBackend(t, func(string) string { return okAnswer })
		opts := b.options(t)
		opts.Upstreams[0].HostHeader = "app.internal"
		c := dialRaw(t, rawProxy(t, opts, nil))
		c.send("GET /old HTTP/1.0\r\n\r\n")
		if resp, _ := c.read("GET"); resp.StatusCode != 200 {
			t.Fatalf("client got %d; want 200", resp.StatusCode)
		}
		head := b.head(t)
		if h, xfh := field(head, "Host"), field(head, "X-Forwarded-Host"); h != "app.internal" || xfh != "app.internal" {
			t.Errorf("the backend received Host %q, X-Forwarded-Host %q; want app.internal for both:\n%s", h, xfh, head)
		}
	})
	t.Run("no-host_header", func(t *testing.T) {
		b := newRawBackend(t, func(string) string { return okAnswer })
		c := dialRaw(t, rawProxy(t, b.options(t), nil))
		c.send("GET /old HTTP/1.0\r\n\r\n")
		resp, body := c.read("GET")
		if resp.StatusCode != 400 || !strings.Contains(body, "Host header required") {
			t.Errorf("client got %d %q; want 400 Host header required", resp.StatusCode, body)
		}
		b.noMore(t)
	})
}

// ajpContainer is a fake AJP13 container on a raw socket: it answers
// CPING with CPONG and every forward request with an empty 200, and hands
// each forward request's payload, as received, to got.
func ajpContainer(t *testing.T) (proxy.TargetOptions, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 16)
	// SEND_HEADERS 200 "OK" with no header, then END_RESPONSE (reuse).
	headers := []byte{4, 0, 200, 0, 2, 'O', 'K', 0, 0, 0}
	answer := append([]byte{'A', 'B', 0, byte(len(headers))}, headers...)
	answer = append(answer, 'A', 'B', 0, 2, 5, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					var hdr [4]byte
					if _, err := io.ReadFull(br, hdr[:]); err != nil {
						return
					}
					payload := make([]byte, int(hdr[2])<<8|int(hdr[3]))
					if _, err := io.ReadFull(br, payload); err != nil || len(payload) == 0 {
						return
					}
					switch payload[0] {
					case 10: // CPING
						c.Write([]byte{'A', 'B', 0, 1, 9})
					case 2: // FORWARD_REQUEST
						got <- payload
						c.Write(answer)
					}
				}
			}()
		}
	}()
	ap := ln.Addr().(*net.TCPAddr)
	return proxy.TargetOptions{Scheme: "ajp", Host: ap.IP.String(), Port: uint16(ap.Port), Weight: 1}, got
}

// Header names with "_" are dropped on the way to an AJP backend too: the
// AJP client encodes the outbound request's header.
func TestUnderscoreHeaders_ajp(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			tg, got := ajpContainer(t)
			opts := proxy.Options{
				Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
				Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{tg}}},
			}
			c := dialRaw(t, rawProxy(t, opts, func(lo *proxy.ListenerOptions) { lo.KeepUnderscoreHeaders = keep }))
			c.send("GET /u HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 10.6.6.6\r\nX-Plain: 1\r\n\r\n")
			if resp, _ := c.read("GET"); resp.StatusCode != 200 {
				t.Fatalf("client got %d; want 200", resp.StatusCode)
			}
			var req []byte
			select {
			case req = <-got:
			case <-time.After(10 * time.Second): // a safety net
				t.Fatal("the container received no request")
			}
			if has := strings.Contains(strings.ToLower(string(req)), "x_forwarded_for"); has != keep {
				t.Errorf("X_Forwarded_For forwarded: %v; want %v: %q", has, keep, req)
			}
			if !strings.Contains(strings.ToLower(string(req)), "x-plain") {
				t.Errorf("X-Plain missing: %q", req)
			}
		})
	}
}
