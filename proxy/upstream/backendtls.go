package upstream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"

	"go.uber.org/zap"
)

// This file is how webtier talks to https:// backends and to backends that
// speak HTTP/2: which certificates it trusts, which name it checks, which
// client certificate it shows, and which HTTP version it speaks. The TLS
// handshake runs on the connection to the address the Pool picked (so DNS
// following, ejection, retries and rescue apply as to http:// targets), and
// checks the target's configured name, never the address.

// Protocol is the HTTP version spoken to http(s):// targets.
type Protocol string

// The protocols.
const (
	// ProtocolAuto offers HTTP/2 and HTTP/1.1 by ALPN to https://
	// targets and speaks HTTP/1.1 to http:// ones.
	ProtocolAuto Protocol = "auto"
	// ProtocolHTTP1 speaks HTTP/1.1 only.
	ProtocolHTTP1 Protocol = "http1"
	// ProtocolH2 speaks HTTP/2 over TLS only (ALPN h2): https:// targets.
	ProtocolH2 Protocol = "h2"
	// ProtocolH2C speaks cleartext HTTP/2 with prior knowledge (RFC 9113
	// 3.3): http:// targets, such as a gRPC server without TLS.
	ProtocolH2C Protocol = "h2c"
)

// DefaultProtocol is the protocol of an upstream that names none.
const DefaultProtocol = ProtocolAuto

// TLSOptions configure the TLS client of https:// targets. Files are read
// when the Pool is built, so at every config load and reload.
type TLSOptions struct {
	// CAFile is a PEM file of the roots that sign the backends'
	// certificates (an internal CA). Empty: the system's roots.
	CAFile string
	// ServerName is the name checked against the backends' certificates
	// and sent as SNI. Empty: each target's host name.
	ServerName string
	// CertFile and KeyFile are the client certificate (then its
	// intermediates) and its key, presented to backends that ask for one
	// (mTLS). Both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any certificate: encrypted, not
	// authenticated. Logged as a warning at every load.
	InsecureSkipVerify bool
}

// tlsBase builds the TLS client configuration shared by every https://
// address of the pool, without ServerName (set per target). It reads
// the files now.
func (p *Pool) tlsBase() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	o := p.opts.TLS
	if o == nil {
		return cfg, nil
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: tls.ca_file: %w", p.opts.Name, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream %q: tls.ca_file %q holds no PEM certificate", p.opts.Name, o.CAFile)
		}
		cfg.RootCAs = roots
	}
	if o.CertFile != "" || o.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: tls.cert_file and key_file: %w", p.opts.Name, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if o.InsecureSkipVerify {
		p.log.Warn("INSECURE: tls.insecure_skip_verify is true: the backends' certificates are NOT verified; " +
			"anyone on the path can impersonate them. Set tls.ca_file to the CA that signs them instead")
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}

// targetTLS returns the TLS client configuration of tg's addresses: the
// pool's, checking server_name or else the target's host name.
func (p *Pool) targetTLS(tg *target) *tls.Config {
	cfg := p.tlsConf.Clone()
	cfg.ServerName = tg.Host
	if p.opts.TLS != nil && p.opts.TLS.ServerName != "" {
		cfg.ServerName = p.opts.TLS.ServerName
	}
	switch p.opts.Protocol {
	case ProtocolH2:
		cfg.NextProtos = []string{"h2"}
		cfg.VerifyConnection = requireH2
	case ProtocolHTTP1:
		cfg.NextProtos = []string{"http/1.1"}
	default:
		cfg.NextProtos = []string{"h2", "http/1.1"}
	}
	return cfg
}

// warnMissingClientCert makes the endpoint's handshakes log, once per
// address, that a backend asked for a client certificate while the
// upstream has none (no tls.cert_file). Under TLS 1.3 a backend that
// requires one refuses it after the handshake, and over HTTP/2 that
// refusal reaches webtier only as a connection that could not be
// established: this line names the cause.
func (p *Pool) warnMissingClientCert(e *Endpoint, cfg *tls.Config) {
	if len(cfg.Certificates) > 0 {
		return
	}
	cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		if e.askedCert.CompareAndSwap(false, true) {
			p.log.Warn("backend asked for a client certificate and tls.cert_file is not set; "+
				"a backend that requires one refuses webtier's connections (502)",
				zap.String("target", e.target.Host), zap.Stringer("address", e.addr))
		}
		return new(tls.Certificate), nil
	}
}

// refusedClientCert reports whether err is how a backend that asked for a
// client certificate the upstream lacks refused the connection: under TLS
// 1.3 it does so after the handshake, and the client sees the connection
// end (golang.org/x/net/http2: "client conn could not be established",
// its error value unexported; or a reset or broken pipe while it writes)
// rather than the alert. Only an upstream without tls.cert_file whose
// backend asked for one gets here (Endpoint.askedCert).
func refusedClientCert(e *Endpoint, err error) bool {
	return e.askedCert.Load() && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) ||
		strings.Contains(err.Error(), "http2: client conn could not be established"))
}

// errNoH2 fails the handshake with a backend that did not agree to HTTP/2
// when the upstream's protocol is h2.
var errNoH2 = errors.New("upstream: backend did not agree to HTTP/2 (ALPN h2) and protocol is h2; set protocol: auto or http1 for this upstream")

func requireH2(cs tls.ConnectionState) error {
	if cs.NegotiatedProtocol != "h2" {
		return errNoH2
	}
	return nil
}

// CertificateError is a TLS handshake with a backend address that failed
// over a certificate: the backend's was not trusted (wrong CA, wrong name,
// expired), or the backend refused webtier's. It is not a dead address:
// the address is not counted toward ejection (probes connect over TCP and
// would bring it back at once, and every address of a misconfigured
// upstream would be ejected alike, hiding the cause behind "no address").
// Nothing of the request was sent: it is tried on another address, and
// answered 502 when none takes it. Every one is logged with the reason.
type CertificateError struct {
	Addr netip.AddrPort
	Err  error
}

func (e *CertificateError) Error() string {
	return fmt.Sprintf("TLS handshake with %s: certificate not accepted: %v", e.Addr, e.Err)
}

func (e *CertificateError) Unwrap() error { return e.Err }

// isCertificateFailure reports whether a handshake error is about a
// certificate rather than the connection: ours rejected theirs, or
// theirs sent an alert about ours.
func isCertificateFailure(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	if errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) {
		return true
	}
	// An alert from the backend comes as a *net.OpError "remote error"
	// around crypto/tls's unexported alert type: bad_certificate,
	// unsupported_, revoked_, expired_, unknown_certificate, unknown
	// certificate authority, certificate_required (RFC 8446 6.2) all
	// name a certificate.
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error" && op.Err != nil &&
		strings.Contains(op.Err.Error(), "certificate")
}
