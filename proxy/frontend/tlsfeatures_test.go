package frontend

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// engines runs f once per engine.
func engines(t *testing.T, f func(t *testing.T, e proxy.Engine)) {
	for _, e := range []proxy.Engine{proxy.EngineWebtier, proxy.EngineStd} {
		t.Run(string(e), func(t *testing.T) { f(t, e) })
	}
}

// okBackend answers "ok" to everything.
func okBackend(t *testing.T) *httptest.Server {
	t.Helper()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	t.Cleanup(b.Close)
	return b
}

// Issue 20: several certificates per listener, chosen by SNI: the exact
// name, else a wildcard, else the default (the first); a reload serves
// the files' new contents.
func TestServer_tlsSNI(t *testing.T) {
	engines(t, func(t *testing.T, e proxy.Engine) {
		ca := proxytest.NewCA(t)
		dir := t.TempDir()
		first, _ := ca.Issue(t, dir, "default", x509.ExtKeyUsageServerAuth, "www.example.com", "example.com")
		wild, _ := ca.Issue(t, dir, "wild", x509.ExtKeyUsageServerAuth, "*.example.net")
		exact, _ := ca.Issue(t, dir, "exact", x509.ExtKeyUsageServerAuth, "api.example.net")
		opts := oneUpstream(t, okBackend(t), nil)
		opts.Listeners = []proxy.ListenerOptions{{Name: "https", Address: "127.0.0.1:0", Engine: e,
			TLS: &proxy.TLSOptions{CertFile: first.CertFile, KeyFile: first.KeyFile, Certificates: []proxy.CertFiles{{CertFile: wild.CertFile, KeyFile: wild.KeyFile}, {CertFile: exact.CertFile, KeyFile: exact.KeyFile}}}}}
		s, err := NewServer(opts, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		serveServer(t, s)
		addr := s.Addrs()[0].String()
		cases := []struct{ sni, want string }{
			{"api.example.net", "api.example.net"},     // exact beats the wildcard
			{"API.Example.NET", "api.example.net"},     // names compare without case
			{"shop.example.net", "*.example.net"},      // wildcard
			{"example.com", "www.example.com"},         // exact, second name of the default
			{"a.b.example.net", "www.example.com"},     // a wildcard covers one label only: default
			{"unknown.example.org", "www.example.com"}, // unknown: default
			{"", "www.example.com"},                    // no SNI: default
		}
		for _, c := range cases {
			roots := ca.Pool
			conf := c.sni
			if c.want == "www.example.com" && c.sni != "example.com" {
				conf = "" // the default does not cover the name: check it by chain only
			}
			if got := servedNameAs(t, addr, c.sni, conf, roots); got != c.want {
				t.Errorf("SNI %q: served %q; want %q", c.sni, got, c.want)
			}
		}

		// A reload reads the files again: the wildcard's file now holds a
		// certificate for another domain, so its old names fall back to
		// the default and the new one is served.
		ca.Issue(t, dir, "wild", x509.ExtKeyUsageServerAuth, "*.example.info")
		if _, err := s.Reload(t.Context(), opts, nil); err != nil {
			t.Fatal(err)
		}
		if got := servedNameAs(t, addr, "shop.example.info", "shop.example.info", ca.Pool); got != "*.example.info" {
			t.Errorf("after the reload, SNI shop.example.info: served %q; want *.example.info", got)
		}
		if got := servedNameAs(t, addr, "shop.example.net", "", ca.Pool); got != "www.example.com" {
			t.Errorf("after the reload, SNI shop.example.net: served %q; want the default www.example.com", got)
		}
	})
}

// servedNameAs handshakes with SNI sni and verifies the served certificate
// for verifyName ("" verifies the chain only) against roots; it returns
// the certificate's common name.
func servedNameAs(t *testing.T, addr, sni, verifyName string, roots *x509.CertPool) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake with SNI %q: %v", sni, err)
	}
	defer c.Close()
	cert := c.ConnectionState().PeerCertificates[0]
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: verifyName}); err != nil {
		t.Fatalf("SNI %q: served certificate does not verify for %q: %v", sni, verifyName, err)
	}
	return cert.Subject.CommonName
}

// Issue 20: client certificates (mTLS). require: a client without a
// certificate, or with one from another CA, is refused in the handshake;
// request: one without is served, one with a bad one refused.
func TestServer_tlsClientAuth(t *testing.T) {
	engines(t, func(t *testing.T, e proxy.Engine) {
		ca, other := proxytest.NewCA(t), proxytest.NewCA(t)
		dir := t.TempDir()
		server, _ := ca.Issue(t, dir, "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
		_, good := ca.Issue(t, dir, "client", x509.ExtKeyUsageClientAuth, "client.example.com")
		_, bad := other.Issue(t, dir, "stranger", x509.ExtKeyUsageClientAuth, "client.example.com")
		opts := oneUpstream(t, okBackend(t), nil)
		for _, mode := range []proxy.ClientAuth{proxy.ClientAuthRequire, proxy.ClientAuthRequest} {
			opts.Listeners = append(opts.Listeners, proxy.ListenerOptions{Name: string(mode), Address: "127.0.0.1:0", Engine: e,
				TLS: &proxy.TLSOptions{CertFile: server.CertFile, KeyFile: server.KeyFile, ClientCAFile: ca.File, ClientAuth: mode}})
		}
		addrs := serve(t, opts)
		// get sends one request over HTTP/1.1 on a new connection. With
		// TLS 1.3 the client's handshake ends before the server's verdict
		// on its certificate, which comes as an alert on the first read.
		get := func(addr string, certs ...tls.Certificate) error {
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool, Certificates: certs, NextProtos: []string{"http/1.1"}})
			if err != nil {
				return err
			}
			defer c.Close()
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		}
		cases := []struct {
			listener int
			name     string
			certs    []tls.Certificate
			ok       bool
		}{
			{0, "require, no certificate", nil, false},
			{0, "require, another CA's", []tls.Certificate{bad}, false},
			{0, "require, good", []tls.Certificate{good}, true},
			{1, "request, no certificate", nil, true},
			{1, "request, another CA's", []tls.Certificate{bad}, false},
			{1, "request, good", []tls.Certificate{good}, true},
		}
		for _, c := range cases {
			err := get(addrs[c.listener].String(), c.certs...)
			if (err == nil) != c.ok {
				t.Errorf("%s: error %v; want ok=%v", c.name, err, c.ok)
			}
			if err != nil && !c.ok && !strings.Contains(err.Error(), "certificate") {
				t.Errorf("%s: refused with %v; want a TLS alert about the certificate", c.name, err)
			}
		}
	})
}

// Issue 20: tls.min_version 1.3 refuses a TLS 1.2 client; the default
// accepts it.
func TestServer_tlsMinVersion(t *testing.T) {
	ca := proxytest.NewCA(t)
	server, _ := ca.Issue(t, t.TempDir(), "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
	opts := oneUpstream(t, okBackend(t), nil)
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "default", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: server.CertFile, KeyFile: server.KeyFile}},
		{Name: "tls13", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: server.CertFile, KeyFile: server.KeyFile, MinVersion: tls.VersionTLS13}},
	}
	addrs := serve(t, opts)
	for i, wantOK := range []bool{true, false} {
		c, err := tls.Dial("tcp", addrs[i].String(), &tls.Config{RootCAs: ca.Pool, MaxVersion: tls.VersionTLS12})
		if err == nil {
			c.Close()
		}
		if (err == nil) != wantOK {
			t.Errorf("listener %s, TLS 1.2 client: %v; want ok=%v", opts.Listeners[i].Name, err, wantOK)
		}
	}
}

// Issue 20: redirect_https on a plain listener answers 308 to https with
// the host (without port), path and query; the health path is answered
// as before. hsts sets Strict-Transport-Security on the TLS listener's
// responses only.
func TestServer_redirectHTTPSAndHSTS(t *testing.T) {
	engines(t, func(t *testing.T, e proxy.Engine) {
		ca := proxytest.NewCA(t)
		server, _ := ca.Issue(t, t.TempDir(), "server", x509.ExtKeyUsageServerAuth, "127.0.0.1")
		opts := oneUpstream(t, okBackend(t), nil)
		opts.Listeners = []proxy.ListenerOptions{
			{Name: "plain", Address: "127.0.0.1:0", Engine: e, RedirectHTTPS: true, HealthPath: "/health"},
			{Name: "https", Address: "127.0.0.1:0", Engine: e, HealthPath: "/health",
				TLS: &proxy.TLSOptions{CertFile: server.CertFile, KeyFile: server.KeyFile, HSTS: 365 * 24 * time.Hour}},
			{Name: "plain2", Address: "127.0.0.1:0", Engine: e},
		}
		addrs := serve(t, opts)
		noFollow := &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}},
		}
		defer noFollow.CloseIdleConnections()
		do := func(method, url, host string) *http.Response {
			t.Helper()
			req, _ := http.NewRequest(method, url, strings.NewReader(""))
			req.Host = host
			resp, err := noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		plain, tlsAddr, plain2 := "http://"+addrs[0].String(), "https://"+addrs[1].String(), "http://"+addrs[2].String()

		resp := do("POST", plain+"/app/x%20y?q=1&r=%2F", "www.example.com:8080")
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != "https://www.example.com/app/x%20y?q=1&r=%2F" {
			t.Errorf("plain POST: %d Location %q; want 308 https://www.example.com/app/x%%20y?q=1&r=%%2F", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp := do("GET", plain+"/health", "www.example.com"); resp.StatusCode != 200 {
			t.Errorf("plain health path: %d; want 200, not redirected", resp.StatusCode)
		}
		if resp := do("GET", plain2+"/", "www.example.com"); resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("listener without redirect_https: %d, HSTS %q; want 200 and none", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
		resp = do("GET", tlsAddr+"/", "www.example.com")
		if resp.StatusCode != 200 || resp.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
			t.Errorf("https: %d, Strict-Transport-Security %q; want 200 and max-age=31536000", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
	})
}

// Issue 20: ACME never holds up the listener. With a CA that cannot be
// reached, Listen and Serve return at once, the file certificate serves
// every name (the ACME one too, until its certificate comes), and the
// failure is logged with its reason, to be retried.
func TestServer_acmeFailureKeepsServing(t *testing.T) {
	ca := proxytest.NewCA(t)
	dir := t.TempDir()
	def, _ := ca.Issue(t, dir, "default", x509.ExtKeyUsageServerAuth, "www.example.com")
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	directory := "https://" + closed.Addr().String() + "/dir" // nothing listens
	closed.Close()
	opts := oneUpstream(t, okBackend(t), nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "https", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{
		CertFile: def.CertFile, KeyFile: def.KeyFile,
		ACME: &proxy.ACMEOptions{Names: []string{"acme.example.com"}, Directory: directory, TLSALPN01: true,
			Storage: t.TempDir(), RenewWindowPercent: 33, RenewCheckInterval: time.Minute},
	}}}
	core, logs := observer.New(zap.InfoLevel)
	addr := serveWith(t, opts, zap.New(core))[0].String()
	if got := servedNameAs(t, addr, "acme.example.com", "", ca.Pool); got != "www.example.com" {
		t.Errorf("ACME name before its certificate: served %q; want the default www.example.com", got)
	}
	deadline := time.Now().Add(20 * time.Second)
	for logs.FilterMessage("could not get certificate from issuer").Len() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no \"could not get certificate from issuer\" logged; logs: %v", logs.All())
		}
		time.Sleep(20 * time.Millisecond) // polling the log: certmagic signals nothing else
	}
	e := logs.FilterMessage("could not get certificate from issuer").All()[0]
	if !strings.Contains(fmt.Sprint(e.ContextMap()), "connection refused") {
		t.Errorf("logged %v; want the reason (connection refused)", e.ContextMap())
	}
	if got := servedNameAs(t, addr, "www.example.com", "www.example.com", ca.Pool); got != "www.example.com" {
		t.Errorf("after the failure: served %q; want www.example.com", got)
	}
}
