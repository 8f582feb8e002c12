package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"testing"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// Issue 20, from the attacker's side of the TLS handshake (certificates
// chosen by certmagic, ACME TLS-ALPN-01 answered in the handshake):
//   - a forged TLS-ALPN-01 validation ("acme-tls/1" as the only protocol)
//     for a name with no challenge pending is refused, and reveals no
//     certificate;
//   - the same for a name webtier does serve: no challenge pending, no
//     certificate (a validation handshake never gets the real one);
//   - SNI names that match nothing (random, very long, mixed case, with
//     a trailing dot) get the default certificate and never an error;
//   - after all of it, an ordinary client is served.
func TestAttackTLSHandshake(t *testing.T) {
	ca := proxytest.NewCA(t)
	dir := t.TempDir()
	def, _ := ca.Issue(t, dir, "default", x509.ExtKeyUsageServerAuth, "www.example.com")
	backend := peer.StartBackend(t, "127.0.0.1", "app")
	secure := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners:
  - address: %q
    tls:
      cert_file: %s
      key_file: %s
      acme:
        names: [acme.example.com]
        directory: https://127.0.0.1:1/dir
        challenges: [tls-alpn-01]
        storage: %s
routes: [{upstream: app}]
upstreams:
  app:
    targets: ["http://%s"]
`, secure, def.CertFile, def.KeyFile, t.TempDir(), backend.Addr())
	peer.StartWebtier(t, peer.Build(t), secure, cfg)

	for _, name := range []string{"evil.example.org", "acme.example.com", "www.example.com"} {
		c, err := tls.Dial("tcp", secure, &tls.Config{ServerName: name, NextProtos: []string{"acme-tls/1"}, InsecureSkipVerify: true})
		if err == nil {
			got := c.ConnectionState().PeerCertificates[0].Subject.CommonName
			c.Close()
			t.Errorf("forged TLS-ALPN-01 validation for %s: handshake done, certificate %q; want it refused", name, got)
		}
	}
	for _, name := range []string{"x" + strings.Repeat(".a", 100) + ".example.org", "WWW.EXAMPLE.ORG", "www.example.org.", "*.example.com", "-"} {
		c, err := tls.Dial("tcp", secure, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			t.Errorf("SNI %.40q: %v; want the default certificate", name, err)
			continue
		}
		if got := c.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "www.example.com" {
			t.Errorf("SNI %.40q: certificate %q; want the default www.example.com", name, got)
		}
		c.Close()
	}
	c, err := tls.Dial("tcp", secure, &tls.Config{ServerName: "www.example.com", RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("an ordinary client after the attacks: %v", err)
	}
	c.Close()
}
