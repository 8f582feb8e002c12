package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/mholt/acmez/v3"
	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// This file is the TLS side of a listener. net/http serves HTTP/2 on a
// *tls.Conn whose ALPN negotiated "h2", provided the server's TLSConfig
// lists "h2" in NextProtos (http.Server.Serve configures HTTP/2 only then:
// golang/go#15908); everything else about HTTP/2 is net/http's.
//
// Certificates are certmagic's: each TLS listener has a certmagic.Cache
// and certmagic.Config of its own (never certmagic.Default, its
// package-level cache or its HTTPS helpers), holding the listener's file
// certificates as unmanaged ones and, with tls.acme, the certificates
// certmagic obtains and renews. Its GetCertificate chooses by SNI (exact,
// then wildcard) and answers TLS-ALPN-01 challenges; certSource.get adds
// the default certificate for names nothing matches.

// listen opens lo's socket. For a TLS listener it loads the certificates
// first, so that a bad one is reported before anything is bound, and
// returns the socket wrapped to do the TLS handshake, with the config the
// http.Server must carry as its TLSConfig and the certificates' source,
// which a reload reads again. Both are nil for a plain listener.
func listen(lo proxy.ListenerOptions, log *zap.Logger) (net.Listener, *tls.Config, *certSource, error) {
	var conf *tls.Config
	var cs *certSource
	if lo.TLS != nil {
		var err error
		if cs, err = newCertSource(lo, log); err != nil {
			return nil, nil, nil, err
		}
		if conf, err = serverTLSConfig(cs, lo.TLS); err != nil {
			cs.stop()
			return nil, nil, nil, err
		}
	}
	// Plain listeners accept without TCP keep-alive probes: Go's default
	// costs four setsockopt calls per accepted connection (11% of the CPU
	// with a connection per request), HAProxy and nginx leave them off,
	// and idle_timeout closes idle clients. Connections that become
	// tunnels (upgrades, handed to net/http) get them then; see
	// withKeepAlive.
	lc := net.ListenConfig{Control: deferAccept}
	if conf == nil {
		lc.KeepAlive = -1
	}
	ln, err := lc.Listen(context.Background(), "tcp", lo.Address)
	if err != nil {
		if cs != nil {
			cs.stop()
		}
		return nil, nil, nil, err
	}
	if lo.ProxyProtocol != nil {
		// The PROXY header comes first, before a TLS handshake.
		ln = newProxyListener(ln, *lo.ProxyProtocol, log)
	}
	if conf != nil {
		if lo.Engine.Std() {
			ln = connLifeListener{ln} // see detach
		}
		ln = tls.NewListener(ln, conf)
	}
	return ln, conf, cs, nil
}

// serverTLSConfig returns a config for HTTPS with HTTP/2 that serves cs's
// certificates: TLS min_version (1.2 by default) or later, Go's default
// cipher suites, ALPN "h2" preferred over "http/1.1", client certificates
// as client_auth says, and "acme-tls/1" when TLS-ALPN-01 is answered.
func serverTLSConfig(cs *certSource, t *proxy.TLSOptions) (*tls.Config, error) {
	conf := &tls.Config{
		GetCertificate: cs.get,
		MinVersion:     cmpOr(t.MinVersion, tls.VersionTLS12),
		NextProtos:     []string{"h2", "http/1.1"},
	}
	if t.ClientAuth != proxy.ClientAuthOff {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", t.ClientCAFile)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.VerifyClientCertIfGiven
		if t.ClientAuth == proxy.ClientAuthRequire {
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	if t.ACME != nil && t.ACME.TLSALPN01 {
		conf.NextProtos = append(conf.NextProtos, acmez.ACMETLS1Protocol)
		if conf.ClientAuth != tls.NoClientCert {
			// The CA's validation sends no client certificate: its
			// handshake gets a config without client authentication
			// (over TLS 1.3 a validator has the certificate before the
			// server's verdict, over TLS 1.2 it would not).
			challenge := conf.Clone()
			challenge.ClientAuth, challenge.ClientCAs = tls.NoClientCert, nil
			conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				if isACMEChallenge(h) {
					return challenge, nil
				}
				return nil, nil
			}
		}
	}
	return conf, nil
}

func cmpOr(v, def uint16) uint16 {
	if v == 0 {
		return def
	}
	return v
}

// isACMEChallenge reports whether h is a TLS-ALPN-01 validation (RFC 8737):
// SNI and "acme-tls/1" as the only protocol.
func isACMEChallenge(h *tls.ClientHelloInfo) bool {
	return h.ServerName != "" && len(h.SupportedProtos) == 1 && h.SupportedProtos[0] == acmez.ACMETLS1Protocol
}

// certSource is a TLS listener's certificates: its certmagic cache and
// config, the names its certificates are for, and the default one. A
// reload (SIGHUP) reads the files again, so that a renewed certificate is
// served without a restart; handshakes already done keep the certificate
// they got.
type certSource struct {
	opts  proxy.TLSOptions
	log   *zap.Logger
	cache *certmagic.Cache
	magic *certmagic.Config
	acme  *certmagic.ACMEIssuer // nil without tls.acme

	names atomic.Pointer[nameSet]         // what cache holds certificates for
	def   atomic.Pointer[tls.Certificate] // the first file certificate; nil: none

	mu     sync.Mutex // serializes use
	hashes []string   // the file certificates in cache

	cancel context.CancelFunc // ends ACME management; nil before manage
}

// nameSet is the names of a listener's certificates, lowercased: DNS
// names (wildcards as "*.example.com") and IP addresses.
type nameSet map[string]struct{}

// matches reports whether a certificate of s is for the SNI name: exactly,
// or by a wildcard for its first label.
func (s nameSet) matches(name string) bool {
	if _, ok := s[name]; ok {
		return true
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		_, ok := s["*"+name[i:]]
		return ok
	}
	return false
}

// certOpLimit bounds what adding the file certificates may take at start
// and on reload: certmagic fetches an OCSP response for a certificate
// that names a responder.
const certOpLimit = 10 * time.Second

// newCertSource builds lo's certmagic cache and config and loads its
// certificate files.
func newCertSource(lo proxy.ListenerOptions, log *zap.Logger) (*certSource, error) {
	t := lo.TLS
	cs := &certSource{opts: *t, log: log.Named("tls").With(zap.String("listener", lo.Name))}
	certs, err := cs.read()
	if err != nil {
		return nil, err
	}
	storage := proxy.DefaultACMEStorage
	ratio := float64(proxy.DefaultACMERenewWindowPercent) / 100
	copts := certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cs.magic, nil },
		Logger:           cs.log,
	}
	if a := t.ACME; a != nil {
		storage = a.Storage
		if a.RenewWindowPercent > 0 {
			ratio = float64(a.RenewWindowPercent) / 100
		}
		copts.RenewCheckInterval = a.RenewCheckInterval
	}
	cs.cache = certmagic.NewCache(copts)
	cs.magic = certmagic.New(cs.cache, certmagic.Config{
		RenewalWindowRatio: ratio,
		Storage:            &certmagic.FileStorage{Path: storage},
		Logger:             cs.log,
		KeySource:          certmagic.StandardKeyGenerator{KeyType: certmagic.P256},
		Issuers:            []certmagic.Issuer{}, // not certmagic.Default's
	})
	if a := t.ACME; a != nil {
		if cs.acme, err = newACMEIssuer(cs.magic, lo, cs.log); err != nil {
			cs.cache.Stop()
			return nil, err
		}
		cs.magic.Issuers = []certmagic.Issuer{cs.acme}
	}
	cs.use(certs)
	return cs, nil
}

// newACMEIssuer is lo's ACME client. Its challenge solvers are told the
// addresses of webtier's own listeners (ListenHost and the ports), which
// are bound before any challenge: certmagic then finds the address in use
// and leaves the answering to them (the plain listeners' handler for
// HTTP-01, GetCertificate for TLS-ALPN-01) instead of binding a port.
func newACMEIssuer(magic *certmagic.Config, lo proxy.ListenerOptions, log *zap.Logger) (*certmagic.ACMEIssuer, error) {
	a := lo.TLS.ACME
	tmpl := certmagic.ACMEIssuer{
		CA:                      a.Directory,
		TestCA:                  a.Directory,
		Email:                   a.Email,
		Agreed:                  true,
		DisableHTTPChallenge:    !a.HTTP01,
		DisableTLSALPNChallenge: !a.TLSALPN01,
		Logger:                  log.Named("acme"),
	}
	if a.Directory == certmagic.LetsEncryptProductionCA {
		// Retries go to the staging CA first, as certmagic does, so that
		// a failing setup does not use up the production rate limits.
		tmpl.TestCA = certmagic.LetsEncryptStagingCA
	}
	if a.CARoot != "" {
		pem, err := os.ReadFile(a.CARoot)
		if err != nil {
			return nil, fmt.Errorf("reading acme.ca_root: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("acme.ca_root %s holds no PEM certificate", a.CARoot)
		}
		tmpl.TrustedRoots = pool
	}
	host, port, err := net.SplitHostPort(lo.Address)
	if err != nil {
		return nil, fmt.Errorf("listener address %q: %w", lo.Address, err)
	}
	tmpl.ListenHost = host
	if tmpl.AltTLSALPNPort, err = strconv.Atoi(port); err != nil {
		return nil, fmt.Errorf("listener address %q: %w", lo.Address, err)
	}
	if a.HTTP01 {
		_, hport, err := net.SplitHostPort(a.HTTPAddress)
		if err == nil {
			tmpl.AltHTTPPort, err = strconv.Atoi(hport)
		}
		if err != nil {
			return nil, fmt.Errorf("plain listener address %q for http-01: %w", a.HTTPAddress, err)
		}
	}
	return certmagic.NewACMEIssuer(magic, tmpl), nil
}

// read loads the key pairs from the files without serving them yet.
func (cs *certSource) read() ([]tls.Certificate, error) {
	files := cs.opts.Certificates
	if cs.opts.CertFile != "" {
		files = append([]proxy.CertFiles{{CertFile: cs.opts.CertFile, KeyFile: cs.opts.KeyFile}}, files...)
	}
	certs := make([]tls.Certificate, 0, len(files))
	for _, f := range files {
		cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("loading certificate %s and key %s: %w", f.CertFile, f.KeyFile, err)
		}
		certs = append(certs, cert)
	}
	return certs, nil
}

// use serves certs, as read, from the next handshake: they are added to
// the cache before the ones they replace leave it, so no handshake finds
// none.
func (cs *certSource) use(certs []tls.Certificate) {
	ctx, cancel := context.WithTimeout(context.Background(), certOpLimit)
	defer cancel()
	cs.mu.Lock()
	defer cs.mu.Unlock()
	names := nameSet{}
	if cs.opts.ACME != nil {
		for _, n := range cs.opts.ACME.Names {
			names[n] = struct{}{}
		}
	}
	hashes := make([]string, 0, len(certs))
	for _, c := range certs {
		h, err := cs.magic.CacheUnmanagedTLSCertificate(ctx, c, nil)
		if err != nil {
			cs.log.Error("certificate not served", zap.Error(err))
			continue
		}
		hashes = append(hashes, h)
		for _, n := range c.Leaf.DNSNames {
			names[strings.ToLower(n)] = struct{}{}
		}
		for _, ip := range c.Leaf.IPAddresses {
			names[ip.String()] = struct{}{}
		}
		if len(c.Leaf.DNSNames) == 0 && len(c.Leaf.IPAddresses) == 0 && c.Leaf.Subject.CommonName != "" {
			names[strings.ToLower(c.Leaf.Subject.CommonName)] = struct{}{}
		}
	}
	cs.names.Store(&names)
	if len(certs) > 0 {
		cs.def.Store(&certs[0])
	}
	var gone []string
	for _, h := range cs.hashes {
		if !slices.Contains(hashes, h) {
			gone = append(gone, h)
		}
	}
	cs.cache.Remove(gone)
	cs.hashes = hashes
}

// errNoCertificate fails a handshake for a name no certificate is for,
// on a listener without a default (ACME only, nothing obtained yet).
var errNoCertificate = errors.New("no certificate for this server name yet")

// get is the listener's GetCertificate: certmagic's choice (exact name,
// then wildcard) for a name a certificate is for, and for a TLS-ALPN-01
// validation; the default certificate (the first file one) for any other
// name, for no SNI, and while an ACME certificate is not obtained yet;
// without file certificates, the first ACME name's.
func (cs *certSource) get(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	def := cs.def.Load()
	if hello.ServerName != "" {
		name := strings.ToLower(hello.ServerName)
		if (*cs.names.Load()).matches(name) || isACMEChallenge(hello) {
			cert, err := cs.magic.GetCertificate(hello)
			if err == nil || def == nil || isACMEChallenge(hello) {
				return cert, err
			}
			return def, nil
		}
	}
	if def != nil {
		return def, nil
	}
	if cs.opts.ACME != nil {
		h := *hello
		h.ServerName = cs.opts.ACME.Names[0]
		return cs.magic.GetCertificate(&h)
	}
	return nil, errNoCertificate
}

// manage starts obtaining and renewing the ACME certificates in the
// background (certmagic's ManageAsync: a certificate that cannot be
// obtained is logged with the CA's reason and retried with backoff),
// once the listeners are bound. It never blocks on the CA.
func (cs *certSource) manage() {
	if cs.acme == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	cs.cancel = cancel
	if err := cs.magic.ManageAsync(ctx, cs.opts.ACME.Names); err != nil {
		cs.log.Error("ACME certificates not managed", zap.Strings("names", cs.opts.ACME.Names), zap.Error(err))
	}
}

// httpChallenge answers an ACME HTTP-01 validation request for a
// certificate of cs and reports whether it did.
func (cs *certSource) httpChallenge(w http.ResponseWriter, r *http.Request) bool {
	return cs.acme != nil && cs.acme.HandleHTTPChallenge(w, r)
}

// stop ends ACME management and the cache's maintenance.
func (cs *certSource) stop() {
	if cs.cancel != nil {
		cs.cancel()
	}
	cs.cache.Stop()
}

// clientKeepAlive is what Go's listeners set by default (net.ListenConfig
// with KeepAlive 0): probes after 15 s idle, every 15 s, 9 of them.
var clientKeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 9}

// withKeepAlive turns TCP keep-alive probes on for a client connection that
// leaves the fast path (net/http serves it, maybe as a long-lived tunnel),
// so that a client that vanished without a FIN is noticed.
func withKeepAlive(c net.Conn) {
	if tc, ok := tcpConn(c); ok {
		tc.SetKeepAliveConfig(clientKeepAlive) //nolint:errcheck // best effort, as net/http's
	}
}

// keepAliveListener turns keep-alive probes on for each accepted
// connection: a plain listener served by net/http's server (no fast path).
type keepAliveListener struct{ net.Listener }

func (l keepAliveListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		withKeepAlive(c)
	}
	return c, err
}
