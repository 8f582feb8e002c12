package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// This file runs real grpc-go servers behind webtier and a grpc-go client
// in front of it, over HTTP/2 with TLS: gRPC needs HTTP/2 end to end,
// "te: trailers" on the request and the grpc-status trailer on the
// response, and streams both ways at once. The upstreams are HTTP/2 in
// cleartext (protocol: h2c) and HTTP/2 over TLS with an internal CA and a
// client certificate (mTLS), their names resolved through BIND.

// grpcBackend is a grpc-go server with the health service (unary and
// server streaming) and the reflection service (a bidirectional stream).
type grpcBackend struct {
	srv    *grpc.Server
	health *health.Server
	addr   string
}

// startGRPC serves on ln; tlsConf nil: cleartext HTTP/2 (h2c). The health
// service reports service name as SERVING, so that a Check tells which
// backend answered.
func startGRPC(t *testing.T, ln net.Listener, tlsConf *tls.Config, name string) *grpcBackend {
	t.Helper()
	var opts []grpc.ServerOption
	if tlsConf != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsConf)))
	}
	b := &grpcBackend{srv: grpc.NewServer(opts...), health: health.NewServer(), addr: ln.Addr().String()}
	b.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(b.srv, b.health)
	reflection.Register(b.srv)
	go b.srv.Serve(ln)
	t.Cleanup(b.srv.Stop)
	return b
}

// listenPair listens on the same free port of two loopback addresses.
func listenPair(t *testing.T, ipA, ipB string) (net.Listener, net.Listener) {
	t.Helper()
	for range 20 {
		a, err := net.Listen("tcp", ipA+":0")
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.Listen("tcp", fmt.Sprintf("%s:%d", ipB, a.Addr().(*net.TCPAddr).Port))
		if err == nil {
			return a, b
		}
		a.Close()
	}
	t.Fatalf("no free port shared by %s and %s", ipA, ipB)
	return nil, nil
}

func listenerPort(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// grpcStack is BIND, the gRPC backends and webtier with an HTTPS listener
// and one route per upstream, chosen by the request's authority.
type grpcStack struct {
	bind      *peer.BIND
	otherCA   string // the CA file of upstream wrongca
	ca        *proxytest.CA
	webtier   *peer.Webtier
	roots     *tls.Config // the client's TLS config for webtier
	a, b, tls *grpcBackend
}

func startGRPCStack(t *testing.T) *grpcStack {
	t.Helper()
	dir := t.TempDir()
	ca := proxytest.NewNamedCA(t, dir, "internal")
	other := proxytest.NewNamedCA(t, dir, "other")
	clientCert, clientKey := ca.IssueFiles(t, "webtier-client", true, "webtier")

	// Two h2c servers sharing a port, for the DNS change.
	lnA, lnB := listenPair(t, "127.0.20.2", "127.0.20.3")
	s := &grpcStack{otherCA: other.File, ca: ca}
	s.a = startGRPC(t, lnA, nil, "backend-a")
	s.b = startGRPC(t, lnB, nil, "backend-b")
	// An HTTPS server whose certificate names grpc.internal only, signed
	// by the internal CA, requiring a client certificate from that CA.
	srvTLS := ca.Server(t, "grpc-backend", []string{"h2"}, "grpc.internal")
	srvTLS.ClientAuth, srvTLS.ClientCAs = tls.RequireAndVerifyClientCert, ca.Pool
	lnTLS, err := net.Listen("tcp", "127.0.20.4:0")
	if err != nil {
		t.Fatal(err)
	}
	s.tls = startGRPC(t, lnTLS, srvTLS, "backend-tls")

	s.bind = peer.StartBIND(t, peer.BINDOptions{Records: []peer.Record{
		{Name: "grpc", TTL: recordTTL, Type: "A", Value: "127.0.20.2"},
		{Name: "secure", TTL: recordTTL, Type: "A", Value: "127.0.20.4"},
	}})
	// webtier's own certificate names the routes' hosts, which the
	// client sends as SNI and :authority.
	listenCert, listenKey := ca.IssueFiles(t, "webtier", false, "h2c.test", "secure.test", "nocert.test", "wrongca.test", "insecure.test")
	s.roots = &tls.Config{RootCAs: ca.Pool}
	listen := peer.FreeAddr(t, "127.0.0.1")
	grpcName, secureName := strings.TrimSuffix(s.bind.FQDN("grpc"), "."), strings.TrimSuffix(s.bind.FQDN("secure"), ".")
	cfg := fmt.Sprintf(`
listeners:
  - address: %q
    tls: {cert_file: %s, key_file: %s}
routes:
  - {host: h2c.test, upstream: h2c}
  - {host: secure.test, upstream: secure}
  - {host: nocert.test, upstream: nocert}
  - {host: wrongca.test, upstream: wrongca}
  - {host: insecure.test, upstream: insecure}
upstreams:
  h2c:
    targets: [http://%s:%d]
    protocol: h2c
  secure:
    targets: [https://%s:%d]
    tls: {ca_file: %s, server_name: grpc.internal, cert_file: %s, key_file: %s}
  nocert:
    targets: [https://%s:%d]
    tls: {ca_file: %s, server_name: grpc.internal}
  wrongca:
    targets: [https://%s:%d]
    tls: {ca_file: %s, server_name: grpc.internal, cert_file: %s, key_file: %s}
  insecure:
    targets: [https://%s:%d]
    tls: {insecure_skip_verify: true, cert_file: %s, key_file: %s}
resolver:
  nameservers: [%q]
  query_timeout: 500ms
  attempts: 1
logging:
  level: info
  format: json
`, listen, listenCert, listenKey,
		grpcName, listenerPort(lnA),
		secureName, listenerPort(lnTLS), ca.File, clientCert, clientKey,
		secureName, listenerPort(lnTLS), ca.File,
		secureName, listenerPort(lnTLS), other.File, clientCert, clientKey,
		secureName, listenerPort(lnTLS), clientCert, clientKey,
		s.bind.Addr())
	s.webtier = peer.StartWebtier(t, peer.Build(t), listen, cfg)
	return s
}

// dial opens a gRPC client connection to webtier over TLS, naming
// authority (the route) as its :authority.
func (s *grpcStack) dial(t *testing.T, authority string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(s.webtier.Addr(),
		grpc.WithTransportCredentials(credentials.NewTLS(s.roots.Clone())),
		grpc.WithAuthority(authority))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func check(ctx context.Context, cc *grpc.ClientConn, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return resp.Status, nil
}

func TestGRPC_throughWebtier(t *testing.T) {
	s := startGRPCStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	t.Run("unary over h2c, status and trailers", func(t *testing.T) {
		cc := s.dial(t, "h2c.test")
		if st, err := check(ctx, cc, "backend-a"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(backend-a) = %v, %v; want SERVING", st, err)
		}
		// A non-zero grpc-status and its grpc-message come in the
		// trailers: the client sees the backend's code, not a transport
		// error.
		_, err := check(ctx, cc, "no-such-service")
		if status.Code(err) != codes.NotFound || !strings.Contains(status.Convert(err).Message(), "unknown service") {
			t.Fatalf("Check(no-such-service) = %v; want NotFound, unknown service, from the trailers", err)
		}
	})

	t.Run("bidirectional stream is full duplex", func(t *testing.T) {
		cc := s.dial(t, "h2c.test")
		stream, err := reflectpb.NewServerReflectionClient(cc).ServerReflectionInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each request is answered while the request stream stays open.
		for i := range 3 {
			if err := stream.Send(&reflectpb.ServerReflectionRequest{
				MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{ListServices: "*"},
			}); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("receive %d: %v", i, err)
			}
			if got := resp.GetListServicesResponse().GetService(); len(got) < 2 {
				t.Fatalf("answer %d lists %v; want the health and reflection services", i, got)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err == nil || status.Code(err) != codes.OK && !errors.Is(err, context.Canceled) && err.Error() != "EOF" {
			t.Fatalf("end of stream: %v; want EOF with status OK", err)
		}
	})

	t.Run("server stream delivers each message as sent", func(t *testing.T) {
		cc := s.dial(t, "h2c.test")
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		w, err := healthpb.NewHealthClient(cc).Watch(wctx, &healthpb.HealthCheckRequest{Service: "backend-a"})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := w.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("first update %v, %v; want SERVING", r, err)
		}
		s.a.health.SetServingStatus("backend-a", healthpb.HealthCheckResponse_NOT_SERVING)
		defer s.a.health.SetServingStatus("backend-a", healthpb.HealthCheckResponse_SERVING)
		if r, err := w.Recv(); err != nil || r.Status != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("second update %v, %v; want NOT_SERVING while the stream is open", r, err)
		}
	})

	t.Run("https upstream with CA file, server_name and client certificate", func(t *testing.T) {
		cc := s.dial(t, "secure.test")
		if st, err := check(ctx, cc, "backend-tls"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(backend-tls) = %v, %v; want SERVING", st, err)
		}
	})

	for _, tc := range []struct{ authority, upstream, logged string }{
		// The backend's certificate is not from the configured CA.
		{"wrongca.test", "wrongca", "certificate not accepted"},
		// The backend requires a client certificate webtier lacks: under
		// TLS 1.3 and HTTP/2 its refusal comes after the handshake, and
		// webtier knows it from the backend's request for one.
		{"nocert.test", "nocert", "certificate not accepted"},
	} {
		t.Run("certificate refused: "+tc.upstream, func(t *testing.T) {
			cc := s.dial(t, tc.authority)
			_, err := check(ctx, cc, "backend-tls")
			// grpc-go maps HTTP 502 to Unavailable.
			if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "502") {
				t.Fatalf("Check through %s = %v; want Unavailable from a 502", tc.upstream, err)
			}
			line := logLine(s.webtier.Logs(), `"upstream":"`+tc.upstream+`"`, tc.logged)
			if line == "" {
				t.Fatalf("no log line naming upstream %s and the certificate; log:\n%s", tc.upstream, s.webtier.Logs())
			}
		})
	}

	t.Run("insecure_skip_verify accepts any certificate, loudly", func(t *testing.T) {
		cc := s.dial(t, "insecure.test")
		if st, err := check(ctx, cc, "backend-tls"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check(backend-tls) = %v, %v; want SERVING", st, err)
		}
		if logLine(s.webtier.Logs(), `"upstream":"insecure"`, "INSECURE") == "" {
			t.Fatalf("no warning naming upstream insecure at start-up; log:\n%s", s.webtier.Logs())
		}
	})

	t.Run("reload reads the CA file again", func(t *testing.T) {
		// The operator puts the right CA in wrongca's ca_file and reloads.
		pem, err := os.ReadFile(s.ca.File)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.otherCA, pem, 0o644); err != nil {
			t.Fatal(err)
		}
		warned := strings.Count(s.webtier.Logs(), "INSECURE")
		reloaded := strings.Count(s.webtier.Logs(), "config reloaded")
		if err := s.webtier.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLogCount(t, s.webtier, "config reloaded", reloaded+1)
		cc := s.dial(t, "wrongca.test")
		if st, err := check(ctx, cc, "backend-tls"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("Check through wrongca after the reload = %v, %v; want SERVING", st, err)
		}
		if n := strings.Count(s.webtier.Logs(), "INSECURE"); n != warned+1 {
			t.Fatalf("%d insecure_skip_verify warnings after the reload; want %d (one more)", n, warned+1)
		}
	})

	t.Run("h2c upstream follows DNS", func(t *testing.T) {
		cc := s.dial(t, "h2c.test")
		s.bind.SetA(t, "grpc", recordTTL, "127.0.20.3")
		changed := time.Now()
		// Bounded by followBound after the change, polled every 20 ms.
		for {
			st, err := check(ctx, cc, "backend-b")
			if err == nil && st == healthpb.HealthCheckResponse_SERVING {
				break
			}
			if status.Code(err) != codes.NotFound {
				t.Fatalf("Check(backend-b) during the change: %v; want NotFound (from a) or SERVING (from b)", err)
			}
			if time.Since(changed) > followBound {
				t.Fatalf("still answered by a %v after the DNS change", time.Since(changed))
			}
			time.Sleep(20 * time.Millisecond)
		}
		// Every later call reaches b: a's connection is closed.
		for range 10 {
			if st, err := check(ctx, cc, "backend-b"); err != nil || st != healthpb.HealthCheckResponse_SERVING {
				t.Fatalf("Check(backend-b) after the change = %v, %v; want SERVING", st, err)
			}
		}
	})
}

// waitLogCount waits until webtier's log holds substr n times.
func waitLogCount(t *testing.T, w *peer.Webtier, substr string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(w.Logs(), substr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("webtier logged %q fewer than %d times in 30s; log:\n%s", substr, n, w.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logLine returns the first line of logs containing every part, or "".
func logLine(logs string, parts ...string) string {
	for line := range strings.Lines(logs) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return line
		}
	}
	return ""
}
