package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/webtier/webtier/proxy/proxytest"
)

// reverseProxy runs httputil.ReverseProxy with a Transport in front of a
// net/http backend running h, and returns the proxy's address.
func reverseProxy(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	backend := httptest.NewServer(h)
	t.Cleanup(backend.Close)
	addr := backend.Listener.Addr().String()
	tr := NewTransport(Options{Dial: func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}})
	t.Cleanup(tr.CloseIdleConnections)
	target, _ := url.Parse("http://" + addr)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Transport: tr,
		Rewrite:   func(r *httputil.ProxyRequest) { r.SetURL(target) },
	})
	t.Cleanup(proxy.Close)
	return proxy.Listener.Addr().String()
}

// rawRequest writes raw to addr and returns the connection's reader.
func rawRequest(t *testing.T, addr, raw string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

// TestReverseProxy runs the Transport where webtier runs it: under
// httputil.ReverseProxy, against net/http's server.
func TestReverseProxy(t *testing.T) {
	t.Run("websocket-style-upgrade", func(t *testing.T) {
		addr := reverseProxy(t, proxytest.UpgradeEcho)
		c, br := rawRequest(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("response %v, %v; want 101", resp, err)
		}
		io.WriteString(c, "ping\n")
		if line, err := br.ReadString('\n'); line != "echo: ping\n" {
			t.Errorf("read %q, %v after the upgrade; want \"echo: ping\\n\"", line, err)
		}
	})
	t.Run("expect-continue-once", func(t *testing.T) {
		addr := reverseProxy(t, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, "got "+string(b))
		})
		c, br := rawRequest(t, addr, "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
		if line, _ := br.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 100 ") {
			t.Fatalf("first line %q; want 100 Continue", line)
		}
		br.ReadString('\n')
		io.WriteString(c, "abc")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "got abc" {
			t.Errorf("got %d %q; want 200 \"got abc\" (one 100 Continue only)", resp.StatusCode, b)
		}
	})
	t.Run("early-hints-forwarded", func(t *testing.T) {
		addr := reverseProxy(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Link", "</s.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			w.Header().Del("Link")
			io.WriteString(w, "page")
		})
		_, br := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 103 || resp.Header.Get("Link") == "" {
			t.Fatalf("first response %v, %v; want 103 with Link", resp, err)
		}
		resp, err = http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("final response %v, %v; want 200", resp, err)
		}
	})
	t.Run("chunked-upload-and-trailers", func(t *testing.T) {
		addr := reverseProxy(t, func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Trailer", "X-Length")
			io.WriteString(w, strings.ToUpper(string(b)))
			w.Header().Set("X-Length", string(rune('0'+len(b))))
		})
		_, br := rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTE: trailers\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "ABCDE" || resp.Trailer.Get("X-Length") != "5" {
			t.Errorf("got %q trailer %q; want ABCDE and X-Length 5", b, resp.Trailer.Get("X-Length"))
		}
	})
}
