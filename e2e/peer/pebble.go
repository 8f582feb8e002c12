package peer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Pebble is Let's Encrypt's test ACME server (../shared/PEERS.md §2) with
// pebble-challtestsrv as its DNS, which answers every A query with
// 127.0.0.1: pebble validates challenges for any name against webtier's
// listeners on loopback, for real (PEBBLE_VA_ALWAYS_VALID is off).
type Pebble struct {
	p, dns    *proc
	dir       string
	api, mgmt string
	// APICertFile is the PEM certificate of pebble's own HTTPS API: the
	// ca_root webtier needs to talk to it.
	APICertFile string
	// Roots holds pebble's issuing root, which is new at every start:
	// clients verify webtier's ACME certificates against it.
	Roots *x509.CertPool
}

// PebbleOptions say where pebble validates challenges and how long its
// certificates live.
type PebbleOptions struct {
	// HTTPPort and TLSPort are the ports on 127.0.0.1 pebble connects to
	// for HTTP-01 and TLS-ALPN-01: webtier's plain and TLS listeners.
	HTTPPort, TLSPort int
	// Validity is the certificates' lifetime; 0: pebble's default (5 years).
	Validity time.Duration
}

// StartPebble starts pebble-challtestsrv and pebble on free ports and
// returns once pebble's directory answers and its root is fetched. In
// t.Cleanup it stops both with SIGTERM; if the test failed, it logs their
// last lines.
func StartPebble(t testing.TB, o PebbleOptions) *Pebble {
	t.Helper()
	RequireTools(t, "pebble", "pebble-challtestsrv")
	pb := &Pebble{dir: t.TempDir()}
	fail := func(err error) { t.Helper(); t.Fatalf("StartPebble: %v", err) }
	apiCert, err := pb.writeAPICert()
	if err != nil {
		fail(err)
	}
	pb.APICertFile = filepath.Join(pb.dir, "pebble-cert.pem")
	pb.api, pb.mgmt = FreeAddr(t, "127.0.0.1"), FreeAddr(t, "127.0.0.1")
	dnsAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(freeUDPTCPPort(t, "127.0.0.1")))
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  pb.api,
		"managementListenAddress":        pb.mgmt,
		"certificate":                    pb.APICertFile,
		"privateKey":                     filepath.Join(pb.dir, "pebble-key.pem"),
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        o.TLSPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
	}}
	if o.Validity > 0 {
		conf["pebble"].(map[string]any)["certificateValidityPeriod"] = int(o.Validity.Seconds())
	}
	confJSON, _ := json.Marshal(conf)
	confPath := filepath.Join(pb.dir, "pebble-config.json")
	if err := os.WriteFile(confPath, confJSON, 0o644); err != nil {
		fail(err)
	}
	if pb.dns, err = startProc(filepath.Join(pb.dir, "challtestsrv.log"), "pebble-challtestsrv",
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", "", "-dns01", dnsAddr,
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-management", FreeAddr(t, "127.0.0.1")); err != nil {
		fail(err)
	}
	t.Cleanup(func() { pb.dns.stop(stopGrace) }) //nolint:errcheck // its exit status says nothing about the test
	// PEBBLE_VA_NOSLEEP: no random wait before validating (seconds per
	// order); PEBBLE_WFE_NONCEREJECT=0: no bad nonces on purpose;
	// PEBBLE_AUTHZREUSE=0: every order is validated again.
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0"}
	if pb.p, err = startProcEnv(filepath.Join(pb.dir, "pebble.log"), env, "pebble", "-config", confPath, "-dnsserver", dnsAddr); err != nil {
		fail(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble log, last 40 lines:\n%s", tailLines(pb.p.logs(), 40))
		}
	})
	t.Cleanup(func() { pb.p.stop(stopGrace) }) //nolint:errcheck // its exit status says nothing about the test

	pool := x509.NewCertPool()
	pool.AddCert(apiCert)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	var root []byte
	ready := poll(readyTimeout, func() bool {
		if pb.p.exited() {
			return true
		}
		if _, err := get(client, pb.DirectoryURL()); err != nil {
			return false
		}
		root, err = get(client, "https://"+pb.mgmt+"/roots/0")
		return err == nil
	})
	if pb.p.exited() || !ready {
		t.Fatalf("StartPebble: pebble not ready within %v; log:\n%s", readyTimeout, tailLines(pb.p.logs(), 30))
	}
	pb.Roots = x509.NewCertPool()
	if !pb.Roots.AppendCertsFromPEM(root) {
		t.Fatalf("StartPebble: /roots/0 holds no PEM certificate: %q", root)
	}
	return pb
}

// DirectoryURL is pebble's ACME directory.
func (pb *Pebble) DirectoryURL() string { return "https://" + pb.api + "/dir" }

// Logs returns pebble's log so far.
func (pb *Pebble) Logs() string { return pb.p.logs() }

func get(c *http.Client, url string) ([]byte, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// writeAPICert writes a self-signed certificate and key for pebble's API
// listener on 127.0.0.1 (the Debian package ships none).
func (pb *Pebble) writeAPICert() (*x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "pebble"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pb.dir, "pebble-cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(pb.dir, "pebble-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
