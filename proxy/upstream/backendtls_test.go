package upstream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"

	"github.com/webtier/webtier/proxy/proxytest"
)

// startTLSBackend serves HTTPS on 127.0.0.1 with cfg, answering
// with the protocol the request came in and the client certificate's
// name, if any.
func startTLSBackend(t *testing.T, cfg *tls.Config) *httptest.Server {
	t.Helper()
	return startTLSBackendHandler(t, cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		client := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			client = " " + r.TLS.PeerCertificates[0].Subject.CommonName
		}
		io.WriteString(w, r.Proto+client)
	}))
}

// startTLSBackendHandler serves HTTPS (HTTP/2 and HTTP/1.1) with h on
// 127.0.0.1.
func startTLSBackendHandler(t *testing.T, cfg *tls.Config, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = ln
	srv.TLS = cfg
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func TestPool_httpsTrust(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewNamedCA(t, dir, "internal")
	other := proxytest.NewNamedCA(t, dir, "other")
	clientCert, clientKey := ca.IssueFiles(t, "webtier-client", true, "webtier")
	requireClient := func(c *tls.Config) *tls.Config {
		c.ClientAuth, c.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool
		return c
	}
	tests := []struct {
		name     string
		server   *tls.Config
		host     string // the target's host name, resolved to 127.0.0.1
		tls      *TLSOptions
		protocol Protocol
		want     string // the body, or "" for a failed request
		wantErr  string // in the error and the log line
	}{
		{name: "ca_file verifies the target's name", server: ca.Server(t, "app1", []string{"h2", "http/1.1"}, "app.internal"),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File}, want: "HTTP/2.0"},
		{name: "http1 on request", server: ca.Server(t, "app2", []string{"h2", "http/1.1"}, "app.internal"),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File}, protocol: ProtocolHTTP1, want: "HTTP/1.1"},
		{name: "h2 only", server: ca.Server(t, "app3", []string{"h2", "http/1.1"}, "app.internal"),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File}, protocol: ProtocolH2, want: "HTTP/2.0"},
		{name: "server_name checked instead of the target's name", server: ca.Server(t, "app4", nil, "app.internal"),
			host: "elb.internal", tls: &TLSOptions{CAFile: ca.File, ServerName: "app.internal"}, want: "HTTP/2.0"},
		{name: "the target's name is checked", server: ca.Server(t, "app5", nil, "app.internal"),
			host: "elb.internal", tls: &TLSOptions{CAFile: ca.File}, wantErr: "certificate"},
		{name: "wrong CA", server: other.Server(t, "app6", nil, "app.internal"),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File}, wantErr: "certificate"},
		{name: "system roots do not know an internal CA", server: ca.Server(t, "app7", nil, "app.internal"),
			host: "app.internal", wantErr: "certificate"},
		{name: "insecure_skip_verify", server: other.Server(t, "app8", nil, "app.internal"),
			host: "app.internal", tls: &TLSOptions{InsecureSkipVerify: true}, want: "HTTP/2.0"},
		{name: "client certificate presented", server: requireClient(ca.Server(t, "app9", nil, "app.internal")),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File, CertFile: clientCert, KeyFile: clientKey}, want: "HTTP/2.0 webtier-client"},
		{name: "client certificate required and missing", server: requireClient(ca.Server(t, "app10", nil, "app.internal")),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File}, protocol: ProtocolHTTP1, wantErr: "certificate"},
		{name: "client certificate required and missing, HTTP/2", server: requireClient(ca.Server(t, "app11", []string{"h2"}, "app.internal")),
			host: "app.internal", tls: &TLSOptions{CAFile: ca.File}, wantErr: "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startTLSBackend(t, tt.server)
			port := uint16(srv.Listener.Addr().(*net.TCPAddr).Port)
			log, logs := observed()
			res := &pushResolver{}
			o := fastOpts("app", Target{Scheme: "https", Host: tt.host, Port: port})
			o.TLS, o.Protocol, o.RetryTries = tt.tls, tt.protocol, 1
			p, err := New(o, res, log)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			res.push(t, tt.host, "127.0.0.1")
			resp, err := get(t, p, "/")
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("request failed: %v", err)
				}
				if got := body(t, resp); got != tt.want {
					t.Fatalf("backend saw %q; want %q", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("request answered %d (%q); want an error about the %s", resp.StatusCode, body(t, resp), tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %q does not say %q", err, tt.wantErr)
			}
			if !errors.As(err, new(*CertificateError)) {
				t.Fatalf("error %q is not a CertificateError", err)
			}
			// Logged, naming the upstream, and the address not counted.
			found := false
			for _, e := range logs.All() {
				if strings.Contains(e.Message, "certificate") && e.ContextMap()["upstream"] == "app" &&
					strings.Contains(fmt.Sprint(e.ContextMap()["error"]), tt.wantErr) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no log line naming upstream app and the certificate; logged: %v", logs.All())
			}
			if s := stateOf(p, "127.0.0.1"); s != StateRunning {
				t.Fatalf("address is %v after a certificate failure; want running (not ejected)", s)
			}
		})
	}
}

func TestPool_insecureSkipVerifyWarns(t *testing.T) {
	log, logs := observed()
	o := fastOpts("app", Target{Scheme: "https", Host: "127.0.0.1", Port: 443})
	o.TLS = &TLSOptions{InsecureSkipVerify: true}
	p, err := New(o, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if n := logs.FilterMessageSnippet("INSECURE").FilterField(zap.String("upstream", "app")).Len(); n != 1 {
		t.Fatalf("%d warnings naming the upstream; want 1: %v", n, logs.All())
	}
}

// startH2CBackend serves cleartext HTTP/2 (prior knowledge) on ip:port
// with h, recording closed connections.
func startH2CBackend(t *testing.T, ip string, port int, h http.Handler) (*httptest.Server, chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ip, port))
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{}, 100)
	srv := httptest.NewUnstartedServer(h2c.NewHandler(h, &http2.Server{}))
	// h2c hijacks the connection from net/http, whose ConnState then says
	// nothing more: the listener tells when the HTTP/2 server closes it.
	srv.Listener = &closeListener{Listener: ln, closed: closed}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, closed
}

type closeListener struct {
	net.Listener
	closed chan struct{}
}

func (l *closeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &closeConn{Conn: c, closed: l.closed}, nil
}

type closeConn struct {
	net.Conn
	closed chan struct{}
	once   sync.Once
}

func (c *closeConn) Close() error {
	c.once.Do(func() { c.closed <- struct{}{} })
	return c.Conn.Close()
}

// A gRPC-style bidirectional stream over h2c: each request message is
// answered before the request body ends (full duplex), and the trailers
// reach the caller.
func TestPool_h2cFullDuplexAndTrailers(t *testing.T) {
	srv, _ := startH2CBackend(t, "127.0.0.1", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		w.Header().Set("Content-Type", "application/grpc")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				fmt.Fprintf(w, "%s:%s|", r.Proto, buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				break
			}
		}
		w.Header().Set("Grpc-Status", "0")
		w.Header().Set(http.TrailerPrefix+"Grpc-Message", "done")
	}))
	port := uint16(srv.Listener.Addr().(*net.TCPAddr).Port)
	o := fastOpts("grpc", Target{Scheme: "http", Host: "127.0.0.1", Port: port})
	o.Protocol = ProtocolH2C
	p, err := New(o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	pr, pw := io.Pipe()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://grpc/svc/Echo", pr)
	req.Header.Set("Te", "trailers")
	req.Header.Set("Content-Type", "application/grpc")
	go pw.Write([]byte("one"))
	resp, err := p.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	buf := make([]byte, 64)
	n, err := resp.Body.Read(buf)
	if got := string(buf[:n]); err != nil || got != "HTTP/2.0:one|" {
		t.Fatalf("first message answered %q, %v while the request was open; want HTTP/2.0:one|", got, err)
	}
	go func() {
		pw.Write([]byte("two"))
		pw.Close()
	}()
	rest, err := io.ReadAll(resp.Body)
	if err != nil || string(rest) != "HTTP/2.0:two|" {
		t.Fatalf("rest %q, %v; want HTTP/2.0:two|", rest, err)
	}
	if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
		t.Fatalf("trailer grpc-status %q; want 0 (trailers: %v)", got, resp.Trailer)
	}
	if got := resp.Trailer.Get("Grpc-Message"); got != "done" {
		t.Fatalf("unannounced trailer grpc-message %q; want done (trailers: %v)", got, resp.Trailer)
	}
}

// HTTP/2 connections to an address that leaves DNS are closed, as HTTP/1
// ones are, and requests go to the new address.
func TestPool_h2cAddressLeavingDNSCloses(t *testing.T) {
	name := func(n string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, n+" "+r.Proto) })
	}
	a, aClosed := startH2CBackend(t, "127.0.0.2", 0, name("a"))
	aPort := a.Listener.Addr().(*net.TCPAddr).Port
	_, bClosed := startH2CBackend(t, "127.0.0.3", aPort, name("b"))
	res := &pushResolver{}
	o := Options{Name: "grpc", Targets: []Target{{Scheme: "http", Host: "grpc.test", Port: uint16(aPort)}}, Protocol: ProtocolH2C}
	p, err := New(o, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "grpc.test", "127.0.0.2")
	resp, err := get(t, p, "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "a HTTP/2.0" {
		t.Fatalf("answered %q; want a HTTP/2.0", got)
	}
	res.push(t, "grpc.test", "127.0.0.3")
	<-aClosed // the pooled HTTP/2 connection to a closes
	resp, err = get(t, p, "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "b HTTP/2.0" {
		t.Fatalf("after the change answered %q; want b HTTP/2.0", got)
	}
	select {
	case <-bClosed:
		t.Fatal("the connection to b, which stayed in DNS, was closed")
	default:
	}
}

// The active health check of an h2c upstream speaks HTTP/2 too: a gRPC
// server does not answer HTTP/1.1.
func TestPool_healthCheckSpeaksH2C(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	seen := make(chan string, 10)
	h2s := &http2.Server{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case seen <- r.Proto + " " + r.UserAgent():
		default:
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// Prior knowledge only: no HTTP/1.1 fallback, as a gRPC server.
			go h2s.ServeConn(c, &http2.ServeConnOpts{Handler: h})
		}
	}()
	o := fastOpts("grpc", Target{Scheme: "http", Host: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port)})
	o.Protocol = ProtocolH2C
	o.HealthCheck = &HealthCheck{Interval: 10 * time.Millisecond, Timeout: time.Second, Fall: 1, Rise: 1}
	p, err := New(o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 3 {
		select {
		case got := <-seen:
			if got != "HTTP/2.0 webtier-health-check" {
				t.Fatalf("backend saw a check as %q; want HTTP/2.0 webtier-health-check", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no health check reached the h2c-only backend; address %v", stateOf(p, "127.0.0.1"))
		}
	}
	if s := stateOf(p, "127.0.0.1"); s != StateRunning {
		t.Fatalf("address %v after passing checks; want running", s)
	}
}

// Health checks and requests of an h2 upstream share its TLS settings
// without sharing the value net/http adjusts (run with -race).
func TestPool_httpsHealthCheckWithRequests(t *testing.T) {
	ca := proxytest.NewNamedCA(t, t.TempDir(), "internal")
	srv := startTLSBackend(t, ca.Server(t, "app", []string{"h2"}, "app.internal"))
	o := fastOpts("app", Target{Scheme: "https", Host: "127.0.0.1", Port: uint16(srv.Listener.Addr().(*net.TCPAddr).Port)})
	o.TLS = &TLSOptions{CAFile: ca.File, ServerName: "app.internal"}
	o.Protocol = ProtocolH2
	o.HealthCheck = &HealthCheck{Interval: 5 * time.Millisecond, Timeout: time.Second}
	p, err := New(o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for range 20 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "HTTP/2.0" {
			t.Fatalf("backend saw %q; want HTTP/2.0", got)
		}
	}
	if s := stateOf(p, "127.0.0.1"); s != StateRunning {
		t.Fatalf("address %v; want running", s)
	}
}

// An upgrade (WebSocket) to an https:// backend that also speaks HTTP/2
// goes over HTTP/1.1: HTTP/2 has no Upgrade, and protocol auto must not
// break WebSockets to backends that added HTTP/2.
func TestPool_httpsUpgradeUsesHTTP1(t *testing.T) {
	ca := proxytest.NewNamedCA(t, t.TempDir(), "internal")
	srv := startTLSBackendHandler(t, ca.Server(t, "app", []string{"h2", "http/1.1"}, "app.internal"),
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Upgrade") != "websocket" {
				io.WriteString(w, r.Proto)
				return
			}
			c, brw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				t.Errorf("hijack over %s: %v", r.Proto, err)
				return
			}
			defer c.Close()
			brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			brw.Flush()
		}))
	o := fastOpts("app", Target{Scheme: "https", Host: "127.0.0.1", Port: uint16(srv.Listener.Addr().(*net.TCPAddr).Port)})
	o.TLS = &TLSOptions{CAFile: ca.File, ServerName: "app.internal"}
	p, err := New(o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// An HTTP/2 connection first, as a busy upstream has.
	resp, err := get(t, p, "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "HTTP/2.0" {
		t.Fatalf("plain request went over %q; want HTTP/2.0", got)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://upstream/ws", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	resp, err = p.RoundTrip(req)
	if err != nil {
		t.Fatalf("upgrade failed: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %d; want 101", resp.StatusCode)
	}
}

// An ejected address's idle HTTP/2 connection is closed, as an HTTP/1
// one is.
func TestPool_h2cEjectionCloses(t *testing.T) {
	srv, closed := startH2CBackend(t, "127.0.0.1", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	o := fastOpts("grpc", Target{Scheme: "http", Host: "127.0.0.1", Port: uint16(srv.Listener.Addr().(*net.TCPAddr).Port)})
	o.Protocol = ProtocolH2C
	p, err := New(o, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := get(t, p, "/")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "HTTP/2.0" {
		t.Fatalf("answered over %q; want HTTP/2.0", got)
	}
	e := endpointFor(t, p, "127.0.0.1")
	p.mu.Lock()
	p.setStateLocked(e, StateEjected, "test")
	p.mu.Unlock()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle HTTP/2 connection of the ejected address is still open")
	}
}
