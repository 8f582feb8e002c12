package frontend

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// ppProxy runs a proxy with a plain and a TLS listener of engine e, both
// taking PROXY headers from 127.0.0.1 only, in front of a backend that
// answers with the X-Forwarded-For it got and counts its requests.
type ppProxy struct {
	plain, tls string
	roots      *tls.Config
	reached    atomic.Int32
	logs       *observer.ObservedLogs
}

func startPPProxy(t *testing.T, e proxy.Engine, from string) *ppProxy {
	t.Helper()
	pp := &ppProxy{}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pp.reached.Add(1)
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(backend.Close)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	pp.roots = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
	ppo := &proxy.ProxyProtocolOptions{From: []netip.Prefix{netip.MustParsePrefix(from)}, Timeout: 300 * time.Millisecond}
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "plain", Address: "127.0.0.1:0", Engine: e, ProxyProtocol: ppo},
		{Name: "tls", Address: "127.0.0.1:0", Engine: e, ProxyProtocol: ppo, TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
	}
	core, logs := observer.New(zap.InfoLevel)
	pp.logs = logs
	addrs := serveWith(t, opts, zap.New(core))
	pp.plain, pp.tls = addrs[0].String(), addrs[1].String()
	return pp
}

// ppHeader is a PROXY header of version v from src to dst.
func ppHeader(t *testing.T, v byte, cmd proxyproto.ProtocolVersionAndCommand, src, dst string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(v, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)),
		net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	h.Command = cmd
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const ppGet = "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"

// exchange sends pre then, on a TLS listener after the handshake, a
// request, and returns the response body, or "" with the error when
// the proxy closed the connection instead.
func (pp *ppProxy) exchange(t *testing.T, addr string, useTLS bool, pre []byte) (string, error) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(pre); err != nil {
		return "", err
	}
	var rw io.ReadWriter = c
	if useTLS {
		tc := tls.Client(c, pp.roots)
		if err := tc.Handshake(); err != nil {
			return "", err
		}
		rw = tc
	}
	if _, err := io.WriteString(rw, ppGet); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(rw), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

// A PROXY header from a listed source gives the client's address to the
// backend, on both engines, plain and TLS (the header comes before the
// handshake); a LOCAL header (the balancer's health check) keeps the
// peer's.
func TestProxyProtocol_clientAddress(t *testing.T) {
	for _, e := range []proxy.Engine{proxy.EngineWebtier, proxy.EngineStd} {
		pp := startPPProxy(t, e, "127.0.0.1/32")
		tests := []struct {
			name string
			pre  []byte
			want string
		}{
			{"v1", ppHeader(t, 1, proxyproto.PROXY, "203.0.113.7:4711", "10.0.0.1:80"), "200 OK 203.0.113.7"},
			{"v2", ppHeader(t, 2, proxyproto.PROXY, "203.0.113.8:4711", "10.0.0.1:80"), "200 OK 203.0.113.8"},
			{"v2-ipv6", ppHeader(t, 2, proxyproto.PROXY, "[2001:db8::9]:4711", "[2001:db8::1]:80"), "200 OK 2001:db8::9"},
			{"v2-local", ppHeader(t, 2, proxyproto.LOCAL, "203.0.113.9:4711", "10.0.0.1:80"), "200 OK 127.0.0.1"},
			{"v1-unknown", []byte("PROXY UNKNOWN\r\n"), "200 OK 127.0.0.1"},
		}
		for _, tt := range tests {
			for _, useTLS := range []bool{false, true} {
				addr, kind := pp.plain, "plain"
				if useTLS {
					addr, kind = pp.tls, "tls"
				}
				t.Run(string(engineName(e))+"/"+kind+"/"+tt.name, func(t *testing.T) {
					got, err := pp.exchange(t, addr, useTLS, tt.pre)
					if err != nil || got != tt.want {
						t.Fatalf("got %q, %v; want %q", got, err, tt.want)
					}
				})
			}
		}
	}
}

// What an attacker tries is refused: the connection closes before any
// request reaches the backend, and the refusal is logged.
func TestProxyProtocol_refused(t *testing.T) {
	v2 := ppHeader(t, 2, proxyproto.PROXY, "203.0.113.7:4711", "10.0.0.1:80")
	bogus := append([]byte(nil), v2...)
	bogus[14], bogus[15] = 0x04, 0x00 // 1024 bytes of addresses announced
	short := append([]byte(nil), v2...)
	short[15] = 4 // too short for two IPv4 addresses and ports
	for _, e := range []proxy.Engine{proxy.EngineWebtier, proxy.EngineStd} {
		listed := startPPProxy(t, e, "127.0.0.1/32")
		unlisted := startPPProxy(t, e, "127.0.0.2/32")
		tests := []struct {
			name string
			pp   *ppProxy
			pre  []byte
			log  string
		}{
			{"unlisted-v1", unlisted, ppHeader(t, 1, proxyproto.PROXY, "203.0.113.7:4711", "10.0.0.1:80"), "not in proxy_protocol.from"},
			{"unlisted-v2", unlisted, v2, "not in proxy_protocol.from"},
			{"missing", listed, nil, "must send one"},
			{"v1-too-long", listed, []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"), "longer than 107"},
			{"v1-truncated", listed, []byte("PROXY TCP4 203.0.113.7 10.0.0.1 4711"), "malformed"},
			{"v1-garbage", listed, []byte("PROXY TCP4 203.0.113.7 x 4711 80\r\n"), "malformed"},
			{"v2-bogus-length", listed, bogus, "over"},
			{"v2-short-length", listed, short, "malformed"},
		}
		for _, tt := range tests {
			t.Run(string(engineName(e))+"/"+tt.name, func(t *testing.T) {
				before := tt.pp.reached.Load()
				got, err := tt.pp.exchange(t, tt.pp.plain, false, tt.pre)
				if err == nil {
					t.Fatalf("got %q; want the connection closed", got)
				}
				if n := tt.pp.reached.Load() - before; n != 0 {
					t.Fatalf("%d requests reached the backend", n)
				}
				if tt.pp.logs.FilterMessage("PROXY protocol: connection refused").FilterFieldKey("error").Len() == 0 {
					t.Fatal("no refusal logged")
				}
				found := false
				for _, e := range tt.pp.logs.FilterMessage("PROXY protocol: connection refused").All() {
					found = found || strings.Contains(e.ContextMap()["error"].(string), tt.log)
				}
				if !found {
					t.Fatalf("no refusal logged with %q: %v", tt.log, tt.pp.logs.All())
				}
			})
		}
		// A second header (a client's own, behind the balancer's) is
		// request bytes: 400, nothing forwarded.
		for _, v := range []byte{1, 2} {
			before := listed.reached.Load()
			pre := append(append([]byte(nil), v2...), ppHeader(t, v, proxyproto.PROXY, "203.0.113.8:4711", "10.0.0.1:80")...)
			if got, _ := listed.exchange(t, listed.plain, false, pre); !strings.HasPrefix(got, "400 ") || listed.reached.Load() != before {
				t.Fatalf("%s: a second v%d header: %q, %d requests reached the backend; want 400 and none",
					engineName(e), v, got, listed.reached.Load()-before)
			}
		}
		// An unlisted source without a header is an ordinary client.
		got, err := unlisted.exchange(t, unlisted.plain, false, nil)
		if err != nil || got != "200 OK 127.0.0.1" {
			t.Fatalf("%s: unlisted client without a header: %q, %v", engineName(e), got, err)
		}
	}
}

// A header sent a byte at a time is read as it comes, and one that does
// not finish within the timeout is refused (a slowloris on the header).
func TestProxyProtocol_slowHeader(t *testing.T) {
	pp := startPPProxy(t, proxy.EngineWebtier, "127.0.0.1/32")
	hdr := ppHeader(t, 1, proxyproto.PROXY, "203.0.113.7:4711", "10.0.0.1:80")
	dial := func() net.Conn {
		c, err := net.Dial("tcp", pp.plain)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	// In pieces, each well within the timeout: served.
	c := dial()
	for _, part := range [][]byte{hdr[:3], hdr[3:10], hdr[10:]} {
		if _, err := c.Write(part); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // separate segments, so the proxy sees a partial header
	}
	io.WriteString(c, ppGet)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "203.0.113.7" {
		t.Fatalf("backend saw %q; want 203.0.113.7", b)
	}
	// Never finished: closed at the timeout.
	c = dial()
	c.Write(hdr[:10])
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes; want the connection closed", n)
	}
	if pp.reached.Load() != 1 {
		t.Fatalf("%d requests reached the backend; want 1", pp.reached.Load())
	}
}

// frameProxy never frames more than it was given or than a header may
// be, and what it frames as a header go-proxyproto reads to the last
// byte or refuses.
func FuzzFrameProxy(f *testing.F) {
	f.Add([]byte("PROXY TCP4 203.0.113.7 10.0.0.1 4711 80\r\nGET / HTTP/1.1\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("PROXY TCP6 ::1 ::1 1 2\r"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xcb\x00\x71\x07\x0a\x00\x00\x01\x12\x67\x00\x50"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		full := len(b) >= maxProxyHeader
		size, err := frameProxy(b, full)
		if err != nil {
			return
		}
		if size <= 0 || size > len(b) || size > maxProxyHeader {
			t.Fatalf("framed %d bytes of %d", size, len(b))
		}
		rd := bytes.NewReader(b[:size])
		br := bufio.NewReaderSize(rd, 256)
		if _, err := proxyproto.Read(br); err == nil && br.Buffered()+rd.Len() != 0 {
			// admit refuses this; the framing and the parser disagree.
			t.Logf("parsed with %d bytes left of %d", br.Buffered()+rd.Len(), size)
		}
	})
}

// With both keys, the PROXY header's address is the peer trusted_proxies
// is checked against: an HTTP proxy behind the NLB that is trusted keeps
// its X-Forwarded-For, and one that is not has it replaced.
func TestProxyProtocol_withTrustedProxies(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Forwarded-For"))
	}))
	t.Cleanup(backend.Close)
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "nlb", Address: "127.0.0.1:0",
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")},
		ProxyProtocol:  &proxy.ProxyProtocolOptions{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}}}
	addr := serve(t, opts)[0].String()
	for _, tc := range []struct{ src, want string }{
		{"203.0.113.7:4711", "198.51.100.1, 203.0.113.7"},
		{"192.0.2.7:4711", "192.0.2.7"},
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.Write(ppHeader(t, 2, proxyproto.PROXY, tc.src, "10.0.0.1:80"))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 198.51.100.1\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		c.Close()
		if string(b) != tc.want {
			t.Errorf("from %s: backend got X-Forwarded-For %q; want %q", tc.src, b, tc.want)
		}
	}
}

// BenchmarkProxyProtocolConn is a connection per request to a plain
// listener (the fast path), without and with a v2 PROXY header from a
// listed source: what proxy_protocol adds to accepting a connection.
func BenchmarkProxyProtocolConn(b *testing.B) {
	_, port := startBenchBackend(b)
	hdr := ppHeader(&testing.T{}, 2, proxyproto.PROXY, "203.0.113.7:4711", "10.0.0.1:80")
	for _, tc := range []struct {
		name string
		pp   *proxy.ProxyProtocolOptions
		pre  []byte
	}{
		{"plain", nil, nil},
		{"proxy_protocol", &proxy.ProxyProtocolOptions{From: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, hdr},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := serveWith(b, proxy.Options{
				Listeners: []proxy.ListenerOptions{{Name: "bench", Address: "127.0.0.1:0", ProxyProtocol: tc.pp}},
				Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
				Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: port, Weight: 1}}}},
			}, zap.NewNop())[0].String()
			req := append(append([]byte(nil), tc.pre...), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"...)
			buf := make([]byte, 4096)
			b.ReportAllocs()
			for b.Loop() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				n := 0
				for {
					m, err := c.Read(buf[n:])
					n += m
					if err != nil {
						break
					}
				}
				c.Close()
				if n < 12 || string(buf[9:12]) != "200" {
					b.Fatalf("answer %q", buf[:n])
				}
			}
		})
	}
}
