package frontend

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// This file is the TLS side of a listener. net/http serves HTTP/2 on a
// *tls.Conn whose ALPN negotiated "h2", provided the server's TLSConfig
// lists "h2" in NextProtos (http.Server.Serve configures HTTP/2 only then:
// golang/go#15908); everything else about HTTP/2 is net/http's.

// listen opens lo's socket. For a TLS listener it loads the certificate
// first, so that a bad one is reported before anything is bound, and
// returns the socket wrapped to do the TLS handshake, with the config the
// http.Server must carry as its TLSConfig and the certificate's source,
// which a reload reads again. Both are nil for a plain listener.
func listen(lo proxy.ListenerOptions, log *zap.Logger) (net.Listener, *tls.Config, *certSource, error) {
	var conf *tls.Config
	var cs *certSource
	if lo.TLS != nil {
		cs = &certSource{files: *lo.TLS}
		if err := cs.load(); err != nil {
			return nil, nil, nil, err
		}
		conf = serverTLSConfig(cs)
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
// certificate: TLS 1.2 or later, Go's default cipher suites, ALPN "h2"
// preferred over "http/1.1".
func serverTLSConfig(cs *certSource) *tls.Config {
	return &tls.Config{
		GetCertificate: cs.get,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}

// certSource is a listener's certificate and key files and what was last
// read from them. A reload (SIGHUP) reads the files again, so that a
// renewed certificate is served without a restart; handshakes already
// done keep the certificate they got.
type certSource struct {
	files proxy.TLSOptions
	cert  atomic.Pointer[tls.Certificate]
}

// read loads the key pair from the files without serving it yet.
func (cs *certSource) read() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(cs.files.CertFile, cs.files.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate %s and key %s: %w", cs.files.CertFile, cs.files.KeyFile, err)
	}
	return &cert, nil
}

// load reads the files and serves what they hold from the next handshake.
func (cs *certSource) load() error {
	cert, err := cs.read()
	if err != nil {
		return err
	}
	cs.cert.Store(cert)
	return nil
}

func (cs *certSource) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cert.Load(), nil
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
