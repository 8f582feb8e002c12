package frontend

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// BenchmarkTLSHandshake is one full TLS handshake (no session resumption)
// against a listener with one certificate from files, then the close:
// what choosing and serving the certificate adds to every new client
// connection. Compare it before and after a change to tls.go. The -sni
// variants ask for a name one of three certificates is for (certmagic's
// choice); the others send no SNI (a client by address: the default).
func BenchmarkTLSHandshake(b *testing.B) {
	for _, v := range []struct {
		name string
		max  uint16
		sni  bool
	}{{"tls12", tls.VersionTLS12, false}, {"tls13", tls.VersionTLS13, false}, {"tls13-sni", tls.VersionTLS13, true}} {
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
			conf := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", MaxVersion: v.max, NextProtos: []string{"h2"}}
			if v.sni {
				ca, dir := proxytest.NewCA(b), b.TempDir()
				var files []proxy.CertFiles
				for _, n := range []string{"a.example.com", "b.example.com", "*.example.net"} {
					f, _ := ca.Issue(b, dir, strings.TrimPrefix(n, "*."), x509.ExtKeyUsageServerAuth, n)
					files = append(files, proxy.CertFiles{CertFile: f.CertFile, KeyFile: f.KeyFile})
				}
				opts.Listeners[0].TLS = &proxy.TLSOptions{Certificates: files}
				conf.RootCAs, conf.ServerName = ca.Pool, "x.example.net"
			}
			addr := serveWith(b, opts, zap.NewNop())[0].String()
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
