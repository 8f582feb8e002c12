package frontend

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// BenchmarkTLSHandshake is one full TLS handshake (no session resumption)
// against a listener with one certificate from files, then the close:
// what choosing and serving the certificate adds to every new client
// connection. Compare it before and after a change to tls.go.
func BenchmarkTLSHandshake(b *testing.B) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"tls12", tls.VersionTLS12}, {"tls13", tls.VersionTLS13}} {
		b.Run(v.name, func(b *testing.B) {
			backend := httptest.NewServer(http.NotFoundHandler())
			defer backend.Close()
			certFile, keyFile, roots := proxytest.WriteCert(b, b.TempDir(), "webtier test")
			port := backend.Listener.Addr().(*net.TCPAddr).Port
			uo := proxy.UpstreamOptions{Name: "app", Targets: []proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: uint16(port), Weight: 1}}}
			opts := proxy.Options{
				Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
				Upstreams: []proxy.UpstreamOptions{uo},
				Listeners: []proxy.ListenerOptions{{Name: "https", Address: "127.0.0.1:0",
					TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}}},
			}
			addr := serveWith(b, opts, zap.NewNop())[0].String()
			conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: v.max, NextProtos: []string{"h2"}}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				tc := tls.Client(c, conf)
				if err := tc.Handshake(); err != nil {
					b.Fatal(err)
				}
				tc.Close()
			}
		})
	}
}
