package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"strings"

	"github.com/webtier/webtier/proxy"
)

// This file checks a listener's tls key: that cert_file and key_file are
// both given, readable, and load together as tls.LoadX509KeyPair loads
// them at start-up. Each problem is reported at the key of the file at
// fault. No error quotes a file's contents.

// maxTLSFile bounds what is read of a cert_file or key_file; a certificate
// chain is a few KiB, so anything larger is the wrong file.
const maxTLSFile = 1 << 20

// tlsExample is quoted by the errors that ask for the tls keys.
const tlsExample = "tls: {cert_file: /etc/webtier/tls/cert.pem, key_file: /etc/webtier/tls/key.pem}"

// listenerTLS checks the tls key of a listener and returns its options with
// the file paths resolved, or nil when the key is absent or has a problem.
func (c *checker) listenerTLS(f field[rawTLS]) *proxy.TLSOptions {
	if !f.Set {
		return nil
	}
	r := &f.V
	if !r.CertFile.Set && !r.KeyFile.Set {
		c.errorf(f.loc, "is empty; a TLS listener needs cert_file and key_file, the PEM files of its certificate and private key, like %s", tlsExample)
		return nil
	}
	certPEM, certPath := c.tlsFile(r.CertFile, "certificate (then its intermediates)")
	keyPEM, keyPath := c.tlsFile(r.KeyFile, "private key")
	if certPEM == nil || keyPEM == nil {
		return nil
	}
	certOK := c.certificates(r.CertFile, certPath, certPEM)
	keyOK := c.privateKey(r.KeyFile, keyPath, keyPEM)
	if !certOK || !keyOK {
		return nil
	}
	// The certificates parse and the key file holds a key block: what can
	// still fail is the key itself, or that it belongs to another
	// certificate.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		c.errorf(r.KeyFile.loc, "%q does not load with the certificate in %q (%v); write the key_file that holds the private key of cert_file's certificate",
			keyPath, certPath, err)
		return nil
	}
	return &proxy.TLSOptions{CertFile: certPath, KeyFile: keyPath}
}

// tlsFile reads the file f names, relative to the config file's directory,
// and returns its contents and resolved path. holds says what the file is
// for, in the errors. It returns nil contents after reporting a problem.
func (c *checker) tlsFile(f field[string], holds string) ([]byte, string) {
	key := f.Path[strings.LastIndexByte(f.Path, '.')+1:]
	if f.V == "" {
		c.errorf(f.loc, "%s; a TLS listener needs cert_file and key_file together: write %s: the path of the PEM file holding its %s, like %s",
			missing(f.Set), key, holds, tlsExample)
		return nil, ""
	}
	path := c.relative(f.V)
	data, err := readLimited(path, maxTLSFile)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		c.errorf(f.loc, "cannot read %q: %v; write the path of a PEM file webtier can read that holds the listener's %s", path, err, holds)
		return nil, ""
	}
	if len(data) > maxTLSFile {
		c.errorf(f.loc, "%q is larger than %d KiB; write the path of the PEM file holding the listener's %s", path, maxTLSFile>>10, holds)
		return nil, ""
	}
	return data, path
}

// certificates checks that cert_file holds at least one PEM certificate and
// that every one parses.
func (c *checker) certificates(f field[string], path string, data []byte) bool {
	n, hasKey := 0, false
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch {
		case b.Type == "CERTIFICATE":
			n++
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				c.errorf(f.loc, "%q: certificate %d does not parse (%v); write the path of a PEM file with the listener's certificate, then its intermediates",
					path, n, err)
				return false
			}
		case isPrivateKey(b):
			hasKey = true
		}
	}
	switch {
	case n > 0:
		return true
	case hasKey:
		c.errorf(f.loc, `%q holds a private key but no certificate; are cert_file and key_file swapped? cert_file is the PEM file with "-----BEGIN CERTIFICATE-----"`, path)
	default:
		c.errorf(f.loc, `%q holds no PEM certificate; write the path of a PEM file with "-----BEGIN CERTIFICATE-----", the listener's certificate first, then its intermediates`, path)
	}
	return false
}

// privateKey checks that key_file holds an unencrypted PEM private key, as
// tls.X509KeyPair looks for it: the first block whose type ends in
// "PRIVATE KEY".
func (c *checker) privateKey(f field[string], path string, data []byte) bool {
	hasCert := false
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED"):
			c.errorf(f.loc, "%q holds an encrypted private key; webtier cannot ask for a passphrase: write the path of an unencrypted key (openssl pkey -in KEY -out PLAIN) readable only by webtier's user", path)
			return false
		case isPrivateKey(b):
			return true
		case b.Type == "CERTIFICATE":
			hasCert = true
		}
	}
	if hasCert {
		c.errorf(f.loc, `%q holds a certificate but no private key; are cert_file and key_file swapped? key_file is the PEM file with "-----BEGIN PRIVATE KEY-----" (or RSA/EC PRIVATE KEY)`, path)
	} else {
		c.errorf(f.loc, `%q holds no PEM private key; write the path of the PEM file with "-----BEGIN PRIVATE KEY-----" (or RSA/EC PRIVATE KEY) that belongs to cert_file's certificate`, path)
	}
	return false
}

func isPrivateKey(b *pem.Block) bool {
	return b.Type == "PRIVATE KEY" || strings.HasSuffix(b.Type, " PRIVATE KEY")
}
