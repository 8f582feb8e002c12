package config

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/webtier/webtier/proxy"
)

// This file checks a listener's tls key: that every cert_file and
// key_file pair is given, readable, and loads together as
// tls.LoadX509KeyPair loads them at start-up; then acme, min_version,
// client_auth with client_ca_file, hsts, and the listener's
// redirect_https. Each problem is reported at the key at fault. No error
// quotes a file's contents.

// maxTLSFile bounds what is read of a cert_file or key_file; a certificate
// chain is a few KiB, so anything larger is the wrong file.
const maxTLSFile = 1 << 20

// tlsExample is quoted by the errors that ask for the tls keys.
const tlsExample = "tls: {cert_file: /etc/webtier/tls/cert.pem, key_file: /etc/webtier/tls/key.pem}"

// listenerTLS checks the tls key of a listener and returns its options with
// the file paths resolved, or nil when the key is absent.
func (c *checker) listenerTLS(f field[rawTLS]) *proxy.TLSOptions {
	if !f.Set {
		return nil
	}
	r := &f.V
	if !r.CertFile.Set && !r.KeyFile.Set && !r.Certificates.Set && !r.ACME.Set {
		c.errorf(f.loc, "is empty; a TLS listener needs cert_file and key_file, the PEM files of its certificate and private key, like %s; or certificates: [{cert_file, key_file}, ...] for several; or acme: {names: [...]}", tlsExample)
		return nil
	}
	out := &proxy.TLSOptions{
		ACME:       c.acme(r.ACME),
		MinVersion: c.minVersion(r.MinVersion),
	}
	if r.CertFile.Set || r.KeyFile.Set {
		out.CertFile, out.KeyFile = c.certPair(r.CertFile, r.KeyFile)
	}
	if r.Certificates.Set && len(r.Certificates.V) == 0 {
		c.errorf(r.Certificates.loc, "is empty; write one {cert_file, key_file} per certificate, like certificates: [{cert_file: a.pem, key_file: a.key}], or leave the key out")
	}
	for _, rc := range r.Certificates.V {
		cf, kf := c.certPair(rc.CertFile, rc.KeyFile)
		out.Certificates = append(out.Certificates, proxy.CertFiles{CertFile: cf, KeyFile: kf})
	}
	out.ClientAuth, out.ClientCAFile = c.clientAuth(r)
	if r.HSTS.Set {
		if r.HSTS.V < time.Second {
			c.errorf(r.HSTS.loc, "must be 1s or more, got %s; write the max-age browsers keep to https, like 8760h (a year), or leave the key out for no Strict-Transport-Security header", formatDuration(r.HSTS.V))
		} else {
			out.HSTS = r.HSTS.V
		}
	}
	return out
}

// certPair checks one certificate's cert_file and key_file: both given,
// readable, and loading together as tls.LoadX509KeyPair loads them. It
// returns the resolved paths.
func (c *checker) certPair(certF, keyF field[string]) (certPath, keyPath string) {
	certPEM, certPath := c.tlsFile(certF, "certificate (then its intermediates)")
	keyPEM, keyPath := c.tlsFile(keyF, "private key")
	if certPEM == nil || keyPEM == nil {
		return certPath, keyPath
	}
	certOK := c.certificates(certF, certPath, certPEM)
	keyOK := c.privateKey(keyF, keyPath, keyPEM)
	if !certOK || !keyOK {
		return certPath, keyPath
	}
	// The certificates parse and the key file holds a key block: what can
	// still fail is the key itself, or that it belongs to another
	// certificate.
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		c.errorf(keyF.loc, "%q does not load with the certificate in %q (%v); write the key_file that holds the private key of cert_file's certificate",
			keyPath, certPath, err)
	}
	return certPath, keyPath
}

// minVersion checks tls.min_version.
func (c *checker) minVersion(f field[string]) uint16 {
	switch c.oneOf(f, "TLS version webtier accepts as the lowest", "1.2", "1.2", "1.3") {
	case "1.3":
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// clientAuth checks client_auth and client_ca_file, which go together.
func (c *checker) clientAuth(r *rawTLS) (proxy.ClientAuth, string) {
	mode := c.oneOf(r.ClientAuth, "client certificate policy", "off", "off", "request", "require")
	var path string
	if r.ClientCAFile.Set {
		var data []byte
		data, path = c.tlsFile(r.ClientCAFile, "client CA certificates")
		if data != nil {
			c.certificates(r.ClientCAFile, path, data)
		}
		if mode == "off" {
			c.errorf(r.ClientCAFile.loc, "is set but client_auth is off, so no client certificate is asked for; add client_auth: require (or request), or leave client_ca_file out")
		}
	} else if mode != "off" {
		c.errorf(r.ClientAuth.loc, "%q needs client_ca_file, the PEM file of the CAs that sign client certificates; add client_ca_file: /etc/webtier/tls/clients-ca.pem", mode)
	}
	if mode == "off" {
		return proxy.ClientAuthOff, path
	}
	return proxy.ClientAuth(mode), path
}

// ACME challenge names as written in tls.acme.challenges.
const (
	challengeHTTP01    = "http-01"
	challengeTLSALPN01 = "tls-alpn-01"
)

// acme checks tls.acme. HTTPAddress, and the default challenges, are
// filled in by listenersACME, which sees the other listeners.
func (c *checker) acme(f field[rawACME]) *proxy.ACMEOptions {
	if !f.Set {
		return nil
	}
	r := &f.V
	a := &proxy.ACMEOptions{
		Directory:          proxy.DefaultACMEDirectory,
		Storage:            proxy.DefaultACMEStorage,
		Email:              r.Email.V,
		RenewWindowPercent: c.intRange(r.RenewWindowPercent, 1, 99, proxy.DefaultACMERenewWindowPercent),
		RenewCheckInterval: c.duration(r.RenewCheckInterval, proxy.DefaultACMERenewCheckInterval),
	}
	if len(r.Names.V) == 0 {
		c.errorf(r.Names.loc, "%s; write the names to get certificates for, like names: [www.example.com, example.com]", missing(r.Names.Set))
	}
	for _, n := range r.Names.V {
		name := strings.ToLower(strings.TrimSuffix(n.V, "."))
		switch {
		case strings.Contains(name, "*"):
			c.errorf(n.loc, "%q: wildcard names need the DNS-01 challenge, which webtier does not do; list each name, or use a wildcard certificate from files (certificates)", n.V)
		case !validACMEName(name):
			c.errorf(n.loc, "%q is not a DNS name; write a name like www.example.com", n.V)
		default:
			a.Names = append(a.Names, name)
		}
	}
	if r.Directory.Set {
		u, err := url.Parse(r.Directory.V)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			c.errorf(r.Directory.loc, "%q is not an https URL; write the CA's ACME directory, like %s", r.Directory.V, proxy.DefaultACMEDirectory)
		} else {
			a.Directory = r.Directory.V
		}
	}
	if r.Email.Set && !strings.Contains(r.Email.V, "@") {
		c.errorf(r.Email.loc, "%q is not an email address; write the address the CA may write to about the certificates, like ops@example.com", r.Email.V)
	}
	if r.CARoot.Set {
		data, path := c.tlsFile(r.CARoot, "ACME server's CA certificates")
		if data != nil && c.certificates(r.CARoot, path, data) {
			a.CARoot = path
		}
	}
	if r.Storage.Set {
		if r.Storage.V == "" {
			c.errorf(r.Storage.loc, "is empty; write a directory webtier can write to, like %s (the default)", proxy.DefaultACMEStorage)
		} else {
			a.Storage = c.relative(r.Storage.V)
		}
	}
	if r.Challenges.Set && len(r.Challenges.V) == 0 {
		c.errorf(r.Challenges.loc, "is empty; write %s, %s or both, or leave the key out for both", challengeHTTP01, challengeTLSALPN01)
	}
	for _, ch := range r.Challenges.V {
		switch ch.V {
		case challengeHTTP01:
			a.HTTP01 = true
		case challengeTLSALPN01:
			a.TLSALPN01 = true
		default:
			c.errorf(ch.loc, "%q is not a challenge webtier answers; write %s or %s", ch.V, challengeHTTP01, challengeTLSALPN01)
		}
	}
	return a
}

// validACMEName reports whether name is a DNS name a CA may certify:
// letters, digits, hyphens and dots, at least two labels.
func validACMEName(name string) bool {
	if len(name) > 253 || !strings.Contains(name, ".") {
		return false
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, b := range []byte(label) {
			if !(b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-') {
				return false
			}
		}
	}
	return true
}

// listenersACME completes the TLS settings that depend on the other
// listeners: HTTP-01 is answered on the plain listeners, so it needs one
// the CA's connection to port 80 reaches: the first plain listener on the
// TLS listener's host, or on all addresses (certmagic is told its port
// and finds it bound, so it opens none of its own). By default a listener
// offers HTTP-01 when there is such a plain listener, and TLS-ALPN-01
// always. redirect_https is for plain listeners.
func (c *checker) listenersACME(raw []rawListener, out []proxy.ListenerOptions) {
	for i := range out {
		if i >= len(raw) {
			break
		}
		r := raw[i]
		if r.RedirectHTTPS.V {
			if r.TLS.Set {
				c.errorf(r.RedirectHTTPS.loc, "is for a plain listener, which sends its clients to https; this listener has tls: leave redirect_https out here and set it on the plain one")
			} else {
				out[i].RedirectHTTPS = true
			}
		}
		t := out[i].TLS
		if t == nil || t.ACME == nil {
			continue
		}
		a := t.ACME
		ra := r.TLS.V.ACME.V
		plain := http01Listener(raw, out, out[i].Address)
		if !ra.Challenges.Set {
			a.HTTP01, a.TLSALPN01 = plain != "", true
		}
		if a.HTTP01 {
			if plain == "" {
				c.errorf(ra.Challenges.loc, "%s is answered on a plain (non-TLS) listener on this listener's host or on all addresses, and this config has none; add a listener like {address: \":80\"} or write challenges: [%s]",
					challengeHTTP01, challengeTLSALPN01)
			}
			a.HTTPAddress = plain
		}
	}
}

// http01Listener returns the address of the first plain listener that
// shares a host with the TLS listener at tlsAddr (either may have none:
// all addresses), or "".
func http01Listener(raw []rawListener, out []proxy.ListenerOptions, tlsAddr string) string {
	tlsHost, _, _ := net.SplitHostPort(tlsAddr)
	for i, lo := range out {
		if lo.TLS != nil || i >= len(raw) || raw[i].TLS.Set {
			continue
		}
		host, _, err := net.SplitHostPort(lo.Address)
		if err == nil && (host == "" || tlsHost == "" || strings.EqualFold(host, tlsHost)) {
			return lo.Address
		}
	}
	return ""
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
