package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// Issue 20: the webtier binary with several certificates from files on
// one listener, chosen by SNI (exact, wildcard, default for an unknown
// name), a second listener requiring client certificates, and a plain one
// redirecting to https; HSTS on the TLS responses.
func TestTLSFilesSNIAndClientAuth(t *testing.T) {
	ca := proxytest.NewCA(t)
	dir := t.TempDir()
	def, _ := ca.Issue(t, dir, "default", x509.ExtKeyUsageServerAuth, "www.example.com")
	wild, _ := ca.Issue(t, dir, "wild", x509.ExtKeyUsageServerAuth, "*.example.net")
	exact, _ := ca.Issue(t, dir, "exact", x509.ExtKeyUsageServerAuth, "api.example.net")
	_, client := ca.Issue(t, dir, "client", x509.ExtKeyUsageClientAuth, "client.example.com")
	backend := peer.StartBackend(t, "127.0.0.1", "app")
	plain, sni, mtls := peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners:
  - address: %q
    redirect_https: true
  - address: %q
    tls:
      certificates:
        - {cert_file: %s, key_file: %s}
        - {cert_file: %s, key_file: %s}
        - {cert_file: %s, key_file: %s}
      hsts: 1h
  - address: %q
    tls:
      cert_file: %s
      key_file: %s
      client_ca_file: %s
      client_auth: require
routes: [{upstream: app}]
upstreams:
  app:
    targets: ["http://%s"]
`, plain, sni, def.CertFile, def.KeyFile, wild.CertFile, wild.KeyFile, exact.CertFile, exact.KeyFile,
		mtls, def.CertFile, def.KeyFile, ca.File, backend.Addr())
	peer.StartWebtier(t, peer.Build(t), plain, cfg)

	for _, c := range []struct{ sni, want string }{
		{"api.example.net", "api.example.net"},
		{"shop.example.net", "*.example.net"},
		{"www.example.com", "www.example.com"},
		{"unknown.example.org", "www.example.com"},
	} {
		conn, err := tls.Dial("tcp", sni, &tls.Config{ServerName: c.sni, InsecureSkipVerify: true})
		if err != nil {
			t.Fatalf("SNI %s: %v", c.sni, err)
		}
		got := conn.ConnectionState().PeerCertificates[0]
		conn.Close()
		if got.Subject.CommonName != c.want {
			t.Errorf("SNI %s: served %q; want %q", c.sni, got.Subject.CommonName, c.want)
		}
		if _, err := got.Verify(x509.VerifyOptions{Roots: ca.Pool}); err != nil {
			t.Errorf("SNI %s: served certificate does not verify: %v", c.sni, err)
		}
	}

	get := func(url, serverName string, certs ...tls.Certificate) (*http.Response, error) {
		c := &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{ForceAttemptHTTP2: true,
				TLSClientConfig: &tls.Config{RootCAs: ca.Pool, ServerName: serverName, Certificates: certs}},
		}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	resp, err := get("https://"+sni+"/", "api.example.net")
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=3600" {
		t.Errorf("https with SNI: %v %v; want 200 with Strict-Transport-Security: max-age=3600", resp, err)
	}
	// Without a client certificate: with TLS 1.3 the client's handshake
	// ends before the server's verdict, which comes as an alert on the
	// first read.
	conn, err := tls.Dial("tcp", mtls, &tls.Config{RootCAs: ca.Pool, ServerName: "www.example.com"})
	if err == nil {
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "certificate required") {
		t.Errorf("mTLS without a client certificate: %v; want the handshake refused (certificate required)", err)
	}
	if resp, err := get("https://"+mtls+"/", "www.example.com", client); err != nil || resp.StatusCode != 200 {
		t.Errorf("mTLS with a client certificate: %v, %v; want 200", resp, err)
	}
	resp, err = get("http://"+plain+"/a?b=c", "")
	if err != nil || resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://127.0.0.1/a?b=c" {
		t.Errorf("plain listener: %v, %v; want 308 to https://127.0.0.1/a?b=c", resp, err)
	}
}
