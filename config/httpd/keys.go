package httpd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Feature names a group of config keys that a webtier build may not have
// yet: the route rules of issue 21 and the listener and upstream keys of
// session 16 came on branches of their own. The importer writes a key of
// a feature only when the running webtier's config package accepts it;
// otherwise it writes the block as a comment and reports it as left, so the
// output always loads.
type Feature string

const (
	Main       Feature = ""                 // in every build
	Remap      Feature = "remap"            // targets[].url with a path
	Reverse    Feature = "reverse"          // routes[].reverse
	Redirect   Feature = "redirect"         // routes[].redirect, routes[].redirects
	Rewrites   Feature = "rewrites"         // routes[].rewrites
	Headers    Feature = "headers"          // routes[].request_headers, response_headers
	BodyLimit  Feature = "max_body_size"    // routes[].max_body_size
	Access     Feature = "access"           // routes[].allow, deny
	BasicAuth  Feature = "basic_auth"       // routes[].basic_auth
	ErrorPages Feature = "error_pages"      // routes[].error_pages
	Static     Feature = "static"           // routes[].static
	Compress   Feature = "compress"         // listeners[].compress
	TLSMin     Feature = "tls.min_version"  // listeners[].tls.min_version
	HTTPSOnly  Feature = "redirect_https"   // listeners[].redirect_https
	Certs      Feature = "tls.certificates" // listeners[].tls.certificates
	ProxyProto Feature = "proxy_protocol"   // listeners[].proxy_protocol
	UpTLS      Feature = "upstream tls"     // upstreams.<name>.tls
	UpProto    Feature = "protocol"         // upstreams.<name>.protocol
)

// probes are the smallest config fragments that use each feature: the
// feature is there when the config package accepts one of them. {dir}
// is a scratch directory holding index.html, 404.html and htpasswd.
var probes = map[Feature][]string{
	Remap:      {"upstreams: {a: {targets: ['http://127.0.0.1:9/app/']}}\nroutes: [{path: /x/, upstream: a}]"},
	Reverse:    {routeProbe("reverse: {enabled: true}")},
	Redirect:   {routeProbe("redirect: {to: 'https://example.com/', status: 301}"), "upstreams: {a: {targets: ['http://127.0.0.1:9']}}\nroutes: [{path: /, upstream: a}, {path: /old, redirect: {to: 'https://example.com/', status: 301}}]"},
	Rewrites:   {routeProbe("rewrites: [{match: '^/a$', to: /b}]")},
	Headers:    {routeProbe("request_headers: {set: {X-A: b}}")},
	BodyLimit:  {routeProbe("max_body_size: 1024"), routeProbe("max_body_size: 1KiB")},
	Access:     {routeProbe("allow: [127.0.0.1/32]")},
	BasicAuth:  {routeProbe("basic_auth: {realm: r, htpasswd_file: '{dir}/htpasswd'}")},
	ErrorPages: {routeProbe("error_pages: {404: '{dir}/404.html'}")},
	Static:     {"upstreams: {a: {targets: ['http://127.0.0.1:9']}}\nroutes: [{path: /, upstream: a}, {path: /s/, static: {root: '{dir}'}}]"},
	Compress:   {listenerProbe("compress: {types: [text/html]}")},
	HTTPSOnly:  {listenerProbe("redirect_https: true")},
	TLSMin:     {listenerProbe("tls: {cert_file: '{dir}/cert.pem', key_file: '{dir}/key.pem', min_version: '1.2'}")},
	Certs:      {listenerProbe("tls: {certificates: [{cert_file: '{dir}/cert.pem', key_file: '{dir}/key.pem'}]}")},
	ProxyProto: {listenerProbe("proxy_protocol: {from: [10.0.0.0/8]}")},
	UpTLS:      {"upstreams: {a: {targets: ['https://127.0.0.1:9'], tls: {insecure_skip_verify: true}}}\nroutes: [{path: /, upstream: a}]"},
	UpProto:    {"upstreams: {a: {targets: ['http://127.0.0.1:9'], protocol: h2c}}\nroutes: [{path: /, upstream: a}]"},
}

func routeProbe(keys string) string {
	return "upstreams: {a: {targets: ['http://127.0.0.1:9']}}\nroutes: [{path: /, upstream: a, " + keys + "}]"
}

func listenerProbe(keys string) string {
	return "listeners: [{address: '127.0.0.1:9', " + keys + "}]\nupstreams: {a: {targets: ['http://127.0.0.1:9']}}\nroutes: [{path: /, upstream: a}]"
}

// ParseFunc is config.Parse's shape: the importer takes it as a value so
// that it does not import the config package it writes for.
type ParseFunc func(file string, data []byte) error

// Probe returns a function that says whether the config package behind
// parse accepts a feature's keys. It asks once per feature.
func Probe(parse ParseFunc) func(Feature) bool {
	var mu sync.Mutex
	known := map[Feature]bool{Main: true}
	return func(f Feature) bool {
		mu.Lock()
		defer mu.Unlock()
		if v, ok := known[f]; ok {
			return v
		}
		known[f] = probe(parse, probes[f])
		return known[f]
	}
}

func probe(parse ParseFunc, snippets []string) bool {
	dir, err := os.MkdirTemp("", "webtier-import-probe")
	if err != nil {
		return false
	}
	defer os.RemoveAll(dir)
	// A bcrypt hash of "x", for the basic_auth probe.
	_ = os.WriteFile(filepath.Join(dir, "htpasswd"), []byte("u:$2y$05$uTEa/mBmjN8JCRX6Rhyf9exQ0ehBsvp2mBxvYmBcr.3QJf4dL0E8a\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "index.html"), []byte("x"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "404.html"), []byte("x"), 0o600)
	if cert, key, err := selfSigned(); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "cert.pem"), cert, 0o600)
		_ = os.WriteFile(filepath.Join(dir, "key.pem"), key, 0o600)
	}
	for _, s := range snippets {
		s = strings.ReplaceAll(s, "{dir}", dir)
		if !strings.Contains(s, "listeners:") {
			s = "listeners: [{address: '127.0.0.1:9'}]\n" + s
		}
		if parse(filepath.Join(dir, "probe.yaml"), []byte(s)) == nil {
			return true
		}
	}
	return false
}

// Features lists every feature the importer may write, for tests and for
// the lead's check after a merge.
var Features = []Feature{Remap, Reverse, Redirect, Rewrites, Headers, BodyLimit, Access, BasicAuth, ErrorPages,
	Static, Compress, TLSMin, HTTPSOnly, Certs, ProxyProto, UpTLS, UpProto}

// selfSigned makes a throwaway certificate for the TLS probe.
func selfSigned() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "probe.invalid"},
		DNSNames: []string{"probe.invalid"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
