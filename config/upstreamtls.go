package config

import (
	"crypto/tls"
	"crypto/x509"
	"strings"

	"github.com/webtier/webtier/proxy/upstream"
)

// This file checks the keys of an upstream that say how webtier talks to
// https:// and HTTP/2 backends: tls (the CA that signs them, the name
// their certificates carry, webtier's client certificate) and protocol.
// The files are read here, so that `webtier validate` and a reload name
// the file and key at fault; the upstream reads them again when it is
// built (proxy/upstream/backendtls.go).

const upstreamTLSExample = "tls: {ca_file: /etc/webtier/backend-ca.pem}"

// targetSchemes reports whether the upstream has http:// and https://
// targets.
func targetSchemes(f field[[]rawTarget]) (hasHTTP, hasHTTPS bool) {
	for _, t := range f.V {
		switch schemeOf(t.URL.V) {
		case "http":
			hasHTTP = true
		case "https":
			hasHTTPS = true
		}
	}
	return hasHTTP, hasHTTPS
}

// backendProtocol checks an upstream's protocol key against its targets.
func (c *checker) backendProtocol(f field[string], targets field[[]rawTarget], proto string) upstream.Protocol {
	if !f.Set {
		return upstream.DefaultProtocol
	}
	hasHTTP, hasHTTPS := targetSchemes(targets)
	p := upstream.Protocol(f.V)
	switch {
	case proto == protoAJP:
		c.errorf(f.loc, "is only read for http:// and https:// targets, and this upstream's are ajp://; remove protocol")
	case p != upstream.ProtocolAuto && p != upstream.ProtocolHTTP1 && p != upstream.ProtocolH2 && p != upstream.ProtocolH2C:
		c.errorf(f.loc, "%q is not a protocol; write auto (the default: HTTP/2 or HTTP/1.1 by ALPN for https://, HTTP/1.1 for http://), http1, h2 (HTTP/2 over TLS) or h2c (cleartext HTTP/2, for http:// targets)", f.V)
	case p == upstream.ProtocolH2 && hasHTTP:
		c.errorf(f.loc, "h2 is HTTP/2 over TLS and this upstream has http:// targets; write h2c for cleartext HTTP/2 (prior knowledge), or make the targets https://")
	case p == upstream.ProtocolH2C && hasHTTPS:
		c.errorf(f.loc, "h2c is cleartext HTTP/2 and this upstream has https:// targets; write h2 (or auto) for HTTP/2 over TLS, or make the targets http://")
	default:
		return p
	}
	return upstream.DefaultProtocol
}

// upstreamTLS checks an upstream's tls key and returns its options with
// the paths resolved, or nil when it is absent or has a problem.
func (c *checker) upstreamTLS(f field[rawUpstreamTLS], targets field[[]rawTarget]) *upstream.TLSOptions {
	if !f.Set {
		return nil
	}
	if _, hasHTTPS := targetSchemes(targets); !hasHTTPS {
		c.errorf(f.loc, "is only read for https:// targets, and this upstream has none; remove tls, or write the targets as https://host:port")
		return nil
	}
	r := &f.V
	o := &upstream.TLSOptions{ServerName: r.ServerName.V, InsecureSkipVerify: r.InsecureSkipVerify.V}
	ok := true
	if s := r.ServerName; s.Set && (s.V == "" || strings.ContainsAny(s.V, " /:*")) {
		c.errorf(s.loc, "%q is not a host name; write the name the backends' certificates carry, like app.internal, or leave server_name out to check each target's host name", s.V)
		ok = false
	}
	if r.CAFile.Set {
		pem, path := c.upstreamTLSFile(r.CAFile, "the CA certificates (PEM) that sign the backends' certificates")
		if pem == nil {
			ok = false
		} else if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			c.errorf(r.CAFile.loc, `%q holds no PEM certificate; write the path of a file with "-----BEGIN CERTIFICATE-----" blocks of the CA that signs the backends' certificates`, path)
			ok = false
		}
		o.CAFile = path
	}
	switch {
	case r.CertFile.Set != r.KeyFile.Set:
		at := r.CertFile.loc
		if r.KeyFile.Set {
			at = r.KeyFile.loc
		}
		c.errorf(at, "cert_file and key_file go together: the client certificate webtier presents to backends that require one, and its private key; write both or neither")
		ok = false
	case r.CertFile.Set:
		cert, certPath := c.upstreamTLSFile(r.CertFile, "webtier's client certificate (PEM), then its intermediates")
		key, keyPath := c.upstreamTLSFile(r.KeyFile, "the private key (PEM, unencrypted) of cert_file's certificate")
		if cert == nil || key == nil {
			ok = false
			break
		}
		if _, err := tls.X509KeyPair(cert, key); err != nil {
			c.errorf(r.KeyFile.loc, "%q and %q do not load together (%v); write in cert_file the client certificate (PEM) and in key_file its unencrypted private key", certPath, keyPath, err)
			ok = false
		}
		o.CertFile, o.KeyFile = certPath, keyPath
	}
	if !ok {
		return nil
	}
	return o
}

// upstreamTLSFile reads the file f names, relative to the config file's
// directory; holds says what it is for. It returns nil contents after
// reporting a problem.
func (c *checker) upstreamTLSFile(f field[string], holds string) ([]byte, string) {
	if f.V == "" {
		c.errorf(f.loc, "is empty; write the path of the file holding %s, like %s", holds, upstreamTLSExample)
		return nil, ""
	}
	path := c.relative(f.V)
	data, err := readLimited(path, maxTLSFile)
	if err != nil {
		c.errorf(f.loc, "cannot read %q: %v; write the path of a file webtier can read that holds %s", path, err, holds)
		return nil, ""
	}
	if len(data) > maxTLSFile {
		c.errorf(f.loc, "%q is larger than %d KiB; write the path of the file holding %s", path, maxTLSFile>>10, holds)
		return nil, ""
	}
	return data, path
}
