package proxytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// CA is a certificate authority made for one test, as an internal CA
// signs the certificates of servers and of the clients they accept.
type CA struct {
	// File is the CA certificate's PEM file (a tls.ca_file or
	// client_ca_file).
	File string
	// Pool trusts the CA.
	Pool *x509.CertPool

	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	serial atomic.Int64
}

// NewCA makes a CA valid for a day, its certificate in a temporary
// directory.
func NewCA(t testing.TB) *CA {
	t.Helper()
	return NewNamedCA(t, t.TempDir(), "webtier test CA")
}

// NewNamedCA makes a CA named cn and writes its certificate as
// <cn>-ca.pem under dir.
func NewNamedCA(t testing.TB, dir, cn string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &CA{File: filepath.Join(dir, cn+"-ca.pem"), Pool: x509.NewCertPool(), dir: dir, cert: cert, key: key}
	ca.Pool.AddCert(cert)
	ca.serial.Store(1)
	writePEM(t, ca.File, pemBlock("CERTIFICATE", der), 0o644)
	return ca
}

// CertFiles are the paths Issue wrote.
type CertFiles struct{ CertFile, KeyFile string }

// Issue writes a certificate for names (DNS names or IPs; the first is
// also its common name) with the given extended key usage into dir as
// FILE.crt and FILE.key, and returns the paths and the pair.
func (ca *CA) Issue(t testing.TB, dir, file string, usage x509.ExtKeyUsage, names ...string) (CertFiles, tls.Certificate) {
	t.Helper()
	certPEM, keyPEM := ca.sign(t, names[0], usage, names)
	f := CertFiles{CertFile: filepath.Join(dir, file+".crt"), KeyFile: filepath.Join(dir, file+".key")}
	writePEM(t, f.CertFile, certPEM, 0o600)
	writePEM(t, f.KeyFile, keyPEM, 0o600)
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return f, pair
}

// IssueFiles signs a certificate for hosts (DNS names or IP addresses),
// for a server or, with client, for a client, and writes it and its key
// as <name>.pem and <name>-key.pem beside the CA's file.
func (ca *CA) IssueFiles(t testing.TB, name string, client bool, hosts ...string) (certFile, keyFile string) {
	t.Helper()
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	certPEM, keyPEM := ca.sign(t, name, usage, hosts)
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	writePEM(t, certFile, certPEM, 0o644)
	writePEM(t, keyFile, keyPEM, 0o600)
	return certFile, keyFile
}

// sign makes a certificate named cn for hosts and its key, both PEM.
func (ca *CA) sign(t testing.TB, cn string, usage x509.ExtKeyUsage, hosts []string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(ca.serial.Add(1)),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pemBlock("CERTIFICATE", der), pemBlock("PRIVATE KEY", kder)
}

// Server returns a server TLS configuration with a certificate signed by
// ca for hosts, offering ALPN protos.
func (ca *CA) Server(t testing.TB, name string, protos []string, hosts ...string) *tls.Config {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(ca.IssueFiles(t, name, false, hosts...))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writePEM(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}
