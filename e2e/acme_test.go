package e2e

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// acmeConfig is webtier with a plain listener on plain and a TLS listener
// on secure getting a certificate for name from pebble over the given
// challenge, both routing to the backend at backend.
func acmeConfig(pb *peer.Pebble, plain, secure, name, challenge, storage, extra string) string {
	return fmt.Sprintf(`listeners:
  - address: %q
    name: plain
  - address: %q
    name: secure
    tls:
      acme:
        names: [%s]
        directory: %s
        email: ops@webtier.test
        ca_root: %s
        challenges: [%s]
        storage: %s
%s
routes: [{upstream: app}]
upstreams:
  app:
    targets: ["http://%%s"]
logging: {level: info, format: json}
`, plain, secure, name, pb.DirectoryURL(), pb.APICertFile, challenge, storage, extra)
}

// waitCertificate handshakes with addr for name until the certificate
// served verifies for name against roots (webtier serves without one at
// first: ACME runs in the background), and returns it.
func waitCertificate(t *testing.T, addr, name string, roots *x509.CertPool, not *x509.Certificate) *x509.Certificate {
	t.Helper()
	var last error
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
			&tls.Config{ServerName: name, RootCAs: roots})
		if err == nil {
			cert := c.ConnectionState().PeerCertificates[0]
			c.Close()
			if not == nil || !cert.Equal(not) {
				return cert
			}
			err = fmt.Errorf("still serving the certificate with serial %s", cert.SerialNumber)
		}
		last = err
		time.Sleep(100 * time.Millisecond) // polling the handshake: webtier signals nothing else
	}
	t.Fatalf("no certificate for %s verifying against pebble's root within 30 s: %v", name, last)
	return nil
}

// Issue 20, point 1: webtier obtains certificates from a real ACME server
// (pebble, validating for real through its own DNS, which sends every
// name to 127.0.0.1) over HTTP-01, answered on the plain listener, and
// over TLS-ALPN-01, answered on the TLS listener itself; a client
// verifies them against pebble's root. A renewal is served from the next
// handshake while a keep-alive connection opened before it goes on
// working. One pebble serves the subtests, which reuse the two listener
// addresses it validates on, one after the other.
func TestACME(t *testing.T) {
	bin := peer.Build(t)
	backend := peer.StartBackend(t, "127.0.0.1", "app")
	plain, secure := peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
	pb := peer.StartPebble(t, peer.PebbleOptions{HTTPPort: portOf(t, plain), TLSPort: portOf(t, secure), Validity: 30 * time.Second})

	start := func(t *testing.T, name, challenge, extra string) *peer.Webtier {
		t.Helper()
		cfg := fmt.Sprintf(acmeConfig(pb, plain, secure, name, challenge, t.TempDir(), extra), backend.Addr())
		return peer.StartWebtier(t, bin, plain, cfg)
	}
	// The TLS listener of the TLS-ALPN-01 case also requires client
	// certificates, which the CA's validation does not send. (Over TLS 1.3,
	// as pebble validates, the validator has the certificate before the
	// server's verdict on its own; webtier exempts validations from client
	// authentication anyway, for a TLS 1.2 validator.)
	clients := proxytest.NewCA(t)
	_, clientCert := clients.Issue(t, t.TempDir(), "client", x509.ExtKeyUsageClientAuth, "client.webtier.test")
	for _, challenge := range []string{"http-01", "tls-alpn-01"} {
		t.Run(challenge, func(t *testing.T) {
			name := strings.ReplaceAll(challenge, "-", "") + ".webtier.test"
			extra := ""
			if challenge == "tls-alpn-01" {
				extra = "      client_ca_file: " + clients.File + "\n      client_auth: require"
			}
			w := start(t, name, challenge, extra)
			cert := waitCertificate(t, secure, name, pb.Roots, nil)
			if cert.DNSNames[0] != name {
				t.Errorf("certificate for %v; want %s", cert.DNSNames, name)
			}
			// The certificate serves HTTPS, with the request proxied.
			c := &http.Client{Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: pb.Roots, Certificates: []tls.Certificate{clientCert}},
				ForceAttemptHTTP2: true,
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, secure) // name resolves to webtier
				},
			}}
			defer c.CloseIdleConnections()
			req, _ := http.NewRequest("GET", "https://"+name+"/x", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET over the ACME certificate: %v", err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != "app" {
				t.Errorf("GET over the ACME certificate: %d from %q; want 200 from the backend", resp.StatusCode, resp.Header.Get("X-Backend"))
			}
			if !strings.Contains(w.Logs(), challenge) {
				t.Errorf("webtier's log does not mention the %s challenge it answered", challenge)
			}
		})
	}

	t.Run("renewal", func(t *testing.T) {
		// Certificates live 30 s; with renew_window_percent 90 certmagic
		// renews one 3 s after it is issued, checking every second.
		const name = "renew.webtier.test"
		start(t, name, "tls-alpn-01", "        renew_window_percent: 90\n        renew_check_interval: 1s")
		first := waitCertificate(t, secure, name, pb.Roots, nil)

		// A keep-alive connection opened on the first certificate.
		conn, err := tls.Dial("tcp", secure, &tls.Config{ServerName: name, RootCAs: pb.Roots, NextProtos: []string{"http/1.1"}})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		roundTrip := func(step string) {
			t.Helper()
			fmt.Fprintf(conn, "GET /%s HTTP/1.1\r\nHost: %s\r\n\r\n", step, name)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: keep-alive connection: %v", step, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: keep-alive connection: status %d", step, resp.StatusCode)
			}
		}
		roundTrip("before")
		renewed := waitCertificate(t, secure, name, pb.Roots, first)
		if !renewed.NotAfter.After(first.NotAfter) {
			t.Errorf("renewed certificate expires %v, not after the first's %v", renewed.NotAfter, first.NotAfter)
		}
		roundTrip("after")
		if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(first) {
			t.Error("the keep-alive connection's certificate changed: it was not the same connection")
		}
	})
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}
