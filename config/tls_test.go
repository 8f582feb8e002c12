package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsConfig is a config with one TLS listener whose tls mapping is the
// given flow-style YAML.
func tlsConfig(tlsYAML string) string {
	return "listeners:\n  - address: \":8443\"\n    tls: " + tlsYAML + "\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [http://10.0.0.5]}}\n"
}

// validate accepts a cert_file and key_file exactly when
// tls.LoadX509KeyPair, which the listener uses at start-up, loads them;
// otherwise it names the file and the key at fault.
func TestTLSFilesLoadLikeLoadX509KeyPair(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	crt, key := read("tls.crt"), read("tls.key")
	write("cert.pem", crt)
	write("key.pem", key)
	write("other.key", read("tls_other.key"))
	write("encrypted.key", read("tls_encrypted.key"))
	write("combined.pem", append(append([]byte{}, crt...), key...)) // HAProxy's crt form
	write("chain.pem", append(append([]byte{}, crt...), crt...))    // leaf, then an "intermediate"
	write("empty.pem", nil)
	write("bad-der.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not DER")}))
	write("bad-key.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not DER")}))
	// openssl ecparam -genkey writes an EC PARAMETERS block before the
	// SEC 1 key.
	ecCert, ecKey := sec1Pair(t)
	write("ec.crt", ecCert)
	write("ec.key", ecKey)

	tests := []struct {
		name      string
		cert, key string
		badKey    string // "cert_file" or "key_file" when it must fail
	}{
		{name: "pkcs8", cert: "cert.pem", key: "key.pem"},
		{name: "one-file-for-both", cert: "combined.pem", key: "combined.pem"},
		{name: "chain", cert: "chain.pem", key: "key.pem"},
		{name: "sec1-with-ec-parameters", cert: "ec.crt", key: "ec.key"},
		{name: "key-of-another-cert", cert: "cert.pem", key: "other.key", badKey: "key_file"},
		{name: "swapped", cert: "key.pem", key: "cert.pem", badKey: "cert_file"},
		{name: "encrypted-key", cert: "cert.pem", key: "encrypted.key", badKey: "key_file"},
		{name: "empty-cert", cert: "empty.pem", key: "key.pem", badKey: "cert_file"},
		{name: "empty-key", cert: "cert.pem", key: "empty.pem", badKey: "key_file"},
		{name: "cert-not-der", cert: "bad-der.pem", key: "key.pem", badKey: "cert_file"},
		{name: "key-not-der", cert: "cert.pem", key: "bad-key.pem", badKey: "key_file"},
		{name: "missing-key", cert: "cert.pem", key: "no-such.pem", badKey: "key_file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfgPath := filepath.Join(dir, "webtier.yaml")
			write("webtier.yaml", []byte(tlsConfig("{cert_file: "+tt.cert+", key_file: "+tt.key+"}")))
			cfg, err := Load(cfgPath)
			certPath, keyPath := filepath.Join(dir, tt.cert), filepath.Join(dir, tt.key)
			_, loadErr := tls.LoadX509KeyPair(certPath, keyPath)
			if (err == nil) != (loadErr == nil) {
				t.Fatalf("Load error = %v, but tls.LoadX509KeyPair error = %v; want both nil or both set", err, loadErr)
			}
			if tt.badKey == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				got := cfg.Proxy.Listeners[0].TLS
				if got == nil || got.CertFile != certPath || got.KeyFile != keyPath {
					t.Errorf("TLS = %+v; want the paths resolved against the config's directory: %s, %s", got, certPath, keyPath)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load error = %v; want Errors", err)
			}
			wantKey := "listeners[0].tls." + tt.badKey
			wantPath := map[string]string{"cert_file": certPath, "key_file": keyPath}[tt.badKey]
			found := false
			for _, e := range errs {
				found = found || e.Key == wantKey && e.Line == 3 && strings.Contains(e.Msg, wantPath)
			}
			if !found {
				t.Errorf("Load error = %v; want one at line 3, key %s, naming %s", err, wantKey, wantPath)
			}
			// No error quotes key material.
			for _, line := range strings.Split(string(key), "\n") {
				if len(line) > 8 && !strings.HasPrefix(line, "-----") && strings.Contains(err.Error(), line) {
					t.Errorf("error quotes the private key: %v", err)
				}
			}
		})
	}
}

// sec1Pair returns a self-signed certificate and its key as openssl
// ecparam -genkey writes it: EC PARAMETERS, then EC PRIVATE KEY.
func sec1Pair(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "webtier sec1 test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	params := []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07} // OID prime256v1
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: params})
	keyPEM = append(keyPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM
}
