package frontend

import (
	"github.com/webtier/webtier/proxy"

	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/proxytest"
)

// startBenchBackend starts an HTTP/1.1 backend on 127.0.0.1 that answers
// 100 bytes, closed when the benchmark ends, and returns it and its port.
func startBenchBackend(b *testing.B) (*httptest.Server, uint16) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100))
	}))
	b.Cleanup(backend.Close)
	u, _ := url.Parse(backend.URL)
	port, _ := strconv.Atoi(u.Port())
	return backend, uint16(port)
}

// BenchmarkProxyH2 is a proxied request over HTTP/2 (TLS on 127.0.0.1,
// Go's client) to an HTTP/1.1 backend, several streams at once on one
// connection, as h2load -m drives webtier.
func BenchmarkProxyH2(b *testing.B) {
	_, port := startBenchBackend(b)
	certFile, keyFile, roots := proxytest.WriteCert(b, b.TempDir(), "127.0.0.1")
	addrs := serveWith(b, proxy.Options{
		Listeners: []proxy.ListenerOptions{{Name: "bench", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}}},
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: port}}}},
	}, zap.NewNop())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	fe := "https://" + addrs[0].String() + "/"
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(fe)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.ProtoMajor != 2 {
				b.Fatalf("got %s; want HTTP/2", resp.Proto)
			}
		}
	})
}
