package frontend

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// serve runs a Server for opts on real sockets until the test ends and
// returns its listener addresses.
func serve(t *testing.T, opts proxy.Options) []net.Addr {
	t.Helper()
	return serveWith(t, opts, zap.NewNop())
}

func serveWith(t testing.TB, opts proxy.Options, log *zap.Logger) []net.Addr {
	t.Helper()
	s, err := NewServer(opts, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	serveServer(t, s)
	return s.Addrs()
}

// serveServer listens and serves s until the test ends.
func serveServer(t testing.TB, s *Server) {
	t.Helper()
	if err := s.Listen(); err != nil {
		s.Handler().Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// Issue: TLS listeners. One listener serves HTTP/2 and HTTP/1.1 over TLS,
// chosen by ALPN, and the backend learns from X-Forwarded-Proto that the
// client used HTTPS.
func TestServer_tlsListener(t *testing.T) {
	protos := make(chan string, 1) // X-Forwarded-Proto of the last request
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.Header.Get("X-Forwarded-Proto")
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "https", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
		{Name: "http", Address: "127.0.0.1:0"},
	}
	addrs := serve(t, opts)
	httpsURL, httpURL := "https://"+addrs[0].String(), "http://"+addrs[1].String()

	tests := []struct {
		name      string
		url       string
		transport *http.Transport
		wantProto string // resp.Proto
		wantALPN  string // negotiated by TLS; "" for plain HTTP
		wantXFP   string
	}{
		{
			name:      "h2",
			url:       httpsURL,
			transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true},
			wantProto: "HTTP/2.0", wantALPN: "h2", wantXFP: "https",
		},
		{
			name:      "http1.1-over-tls",
			url:       httpsURL,
			transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}}},
			wantProto: "HTTP/1.1", wantALPN: "http/1.1", wantXFP: "https",
		},
		{
			name:      "plain-listener",
			url:       httpURL,
			transport: &http.Transport{},
			wantProto: "HTTP/1.1", wantXFP: "http",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer tt.transport.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tt.transport}).Get(tt.url + "/")
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || string(body) != "ok" {
				t.Fatalf("GET %s: %s %q, %v; want 200 ok", tt.url, resp.Status, body, err)
			}
			if resp.Proto != tt.wantProto {
				t.Errorf("Proto = %s; want %s", resp.Proto, tt.wantProto)
			}
			var alpn string
			if resp.TLS != nil {
				alpn = resp.TLS.NegotiatedProtocol
			}
			if alpn != tt.wantALPN {
				t.Errorf("ALPN protocol = %q; want %q", alpn, tt.wantALPN)
			}
			if got := <-protos; got != tt.wantXFP {
				t.Errorf("backend got X-Forwarded-Proto %q; want %q", got, tt.wantXFP)
			}
		})
	}

	t.Run("plain-http-to-tls-listener", func(t *testing.T) {
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://" + addrs[0].String() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS listener: %s; want 400 (net/http's answer to HTTP on an HTTPS port)", resp.Status)
		}
		select {
		case p := <-protos:
			t.Errorf("the request reached the backend (X-Forwarded-Proto %q); want it refused", p)
		default:
		}
	})

	// MinVersion is TLS 1.2: the same client that connects with TLS 1.2
	// is refused when it offers at most TLS 1.1.
	for _, tt := range []struct {
		name    string
		max     uint16
		wantErr bool
	}{
		{name: "tls1.2-accepted", max: tls.VersionTLS12},
		{name: "tls1.1-refused", max: tls.VersionTLS11, wantErr: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := tls.Dial("tcp", addrs[0].String(), &tls.Config{
				RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tt.max,
			})
			if tt.wantErr {
				if err == nil {
					v := conn.ConnectionState().Version
					conn.Close()
					t.Fatalf("handshake with TLS %s succeeded; want it refused", tls.VersionName(v))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if v := conn.ConnectionState().Version; v != tt.max {
				t.Errorf("negotiated %s; want %s", tls.VersionName(v), tls.VersionName(tt.max))
			}
		})
	}
}

// A certificate that does not load fails Listen, naming the listener and
// the files, and nothing stays bound.
func TestServer_listenBadCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := proxytest.WriteCert(t, dir, "webtier test")
	_, otherKey, _ := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	tests := []struct {
		name string
		tls  proxy.TLSOptions
	}{
		{name: "missing-cert", tls: proxy.TLSOptions{CertFile: filepath.Join(dir, "no-such.pem"), KeyFile: keyFile}},
		{name: "key-of-another-cert", tls: proxy.TLSOptions{CertFile: certFile, KeyFile: otherKey}},
		{name: "cert-as-key", tls: proxy.TLSOptions{CertFile: certFile, KeyFile: certFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The first listener binds; the second fails. Listen must
			// close the first again.
			free, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := free.Addr().String()
			free.Close()
			backend := httptest.NewServer(http.NotFoundHandler())
			defer backend.Close()
			opts := oneUpstream(t, backend, nil)
			opts.Listeners = []proxy.ListenerOptions{
				{Name: "plain", Address: addr},
				{Name: "secure", Address: "127.0.0.1:0", TLS: &tt.tls},
			}
			s, err := NewServer(opts, nil, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Handler().Close()
			err = s.Listen()
			if err == nil {
				t.Fatal("Listen succeeded; want an error")
			}
			for _, want := range []string{`listener "secure"`, tt.tls.CertFile, tt.tls.KeyFile} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Listen error %q does not name %s", err, want)
				}
			}
			if n := len(s.Addrs()); n != 0 {
				t.Errorf("Addrs() has %d listeners after a failed Listen; want 0", n)
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatalf("%s is still bound after a failed Listen: %v", addr, err)
			}
			ln.Close()
		})
	}
}

// TestServer_reloadCertificate: a reload serves the certificate now in the
// listener's files from the next handshake, as after a renewal; files that
// do not load fail the reload, and the certificate served stays the last
// good one.
func TestServer_reloadCertificate(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	dir := t.TempDir()
	certFile, keyFile, firstRoots := proxytest.WriteCert(t, dir, "first")
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "https", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
	}
	s, err := NewServer(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	serveServer(t, s)
	url := "https://" + s.Addrs()[0].String() + "/"

	// fetch GETs url on a new connection that trusts only roots.
	fetch := func(roots *x509.CertPool) (string, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(url)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.TLS.PeerCertificates[0].Subject.CommonName + " " + string(b), err
	}
	if got, err := fetch(firstRoots); got != "first ok" || err != nil {
		t.Fatalf("before the reload: %q, %v; want first ok", got, err)
	}

	_, _, renewedRoots := proxytest.WriteCert(t, dir, "renewed") // same file names
	if got, err := fetch(firstRoots); got != "first ok" || err != nil {
		t.Errorf("files replaced, no reload yet: %q, %v; want the first certificate still", got, err)
	}
	if _, err := s.Reload(context.Background(), opts, nil); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got, err := fetch(renewedRoots); got != "renewed ok" || err != nil {
		t.Errorf("after the reload: %q, %v; want renewed ok", got, err)
	}

	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Reload(context.Background(), opts, nil)
	if err == nil {
		t.Fatal("Reload with a broken key file succeeded; want an error")
	}
	for _, want := range []string{`listener "https"`, certFile, keyFile} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Reload error %q does not name %s", err, want)
		}
	}
	if got, err := fetch(renewedRoots); got != "renewed ok" || err != nil {
		t.Errorf("after the failed reload: %q, %v; want the renewed certificate still", got, err)
	}
}
