package frontend

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/accesslog"
	"github.com/webtier/webtier/proxy/proxytest"
)

// withAccessLog turns the access log on in opts, in format f, writing to
// the returned sink.
func withAccessLog(t *testing.T, opts *proxy.Options, f accesslog.Format) *proxytest.LineSink {
	t.Helper()
	sink := proxytest.NewLineSink()
	w, err := accesslog.New(accesslog.Options{Path: "stdout", Stdout: sink})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	opts.AccessLog, opts.AccessLogFormat = w, f
	return sink
}

// Over TLS, the line names the TLS version and the ALPN protocol, for
// HTTP/2 (webtier's own server) and HTTP/1.1, with the request's protocol
// on the request line.
func TestAccessLog_tls(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "https", Address: "127.0.0.1:0", TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}}}
	sink := withAccessLog(t, &opts, accesslog.FormatJSON)
	addrs := serve(t, opts)
	for _, tt := range []struct {
		tr   *http.Transport
		want []string
	}{
		{&http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, ForceAttemptHTTP2: true},
			[]string{`"proto":"HTTP/2.0"`, `"tls_version":"TLSv1.3"`, `"alpn":"h2"`, `"status":200`, `"bytes":2`}},
		{&http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, NextProtos: []string{"http/1.1"}, MaxVersion: tls.VersionTLS12}},
			[]string{`"proto":"HTTP/1.1"`, `"tls_version":"TLSv1.2"`, `"alpn":"http/1.1"`, `"status":200`, `"bytes":2`}},
	} {
		resp, err := (&http.Client{Transport: tt.tr}).Get("https://" + addrs[0].String() + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		tt.tr.CloseIdleConnections()
		line := sink.Next(t)
		for _, w := range tt.want {
			if !strings.Contains(line, w) {
				t.Errorf("line %s\nlacks %s", line, w)
			}
		}
	}
}

// A WebSocket upgrade (the ReverseProxy path, through a hijacked
// connection) works with the access log on, gets its request id, and is
// logged with 101 once the tunnel ends.
func TestAccessLog_upgrade(t *testing.T) {
	ids := make(chan string, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids <- r.Header.Get("X-Request-Id")
		proxytest.UpgradeEcho(w, r)
	}))
	defer backend.Close()
	opts := oneUpstream(t, backend, nil)
	opts.RequestID = proxy.RequestIDOptions{Header: proxy.DefaultRequestIDHeader}
	sink := withAccessLog(t, &opts, accesslog.FormatJSON)
	fe, _ := startProxy(t, opts)
	c := dialRaw(t, strings.TrimPrefix(fe, "http://"))
	c.send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("answer %v, %v; want 101", resp, err)
	}
	c.send("ping\n")
	if line, err := c.br.ReadString('\n'); line != "echo: ping\n" {
		t.Fatalf("after upgrade read %q, %v", line, err)
	}
	id := <-ids
	if len(id) != 26 { // proxy's generated ids: 26 base32 characters (TestRequestID checks their form)
		t.Errorf("backend got X-Request-Id %q; want a generated id", id)
	}
	line := sink.Next(t)
	if !strings.Contains(line, `"status":101`) || !strings.Contains(line, `"request_id":"`+id+`"`) {
		t.Errorf("line %s; want status 101 and request id %s", line, id)
	}
}

// A request whose body does not come in time is answered 408 by the
// server, not with the handler's 502, and logged with the 408 the client
// got, on the fast path and on net/http's (here after a 100 Continue).
func TestAccessLog_bodyTimeout408(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
	}))
	defer backend.Close()
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "l", BodyTimeout: 100 * time.Millisecond}}
	sink := withAccessLog(t, &opts, accesslog.FormatCommon)
	fe, _ := startProxy(t, opts)
	for _, path := range []string{"fast", "handoff"} {
		c := dialRaw(t, strings.TrimPrefix(fe, "http://"))
		c.send(head(path, "POST /slow HTTP/1.1", "Content-Length: 10"))
		resp, _ := c.readFinal("POST")
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("%s: status %d; want 408", path, resp.StatusCode)
		}
		if line := sink.Next(t); !strings.Contains(line, `"POST /slow HTTP/1.1" 408 `) {
			t.Errorf("%s: line %s; want the 408", path, line)
		}
	}
}

// Requests the server answers itself, before routing, are logged and
// counted too: on the fast path with "-" for a request line it did not
// parse (as httpd logs a 400 or 408), through the guard of net/http's
// path with the request line.
func TestAccessLog_rejected(t *testing.T) {
	backend := httptest.NewServer(http.NotFoundHandler())
	defer backend.Close()
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "l", MaxRequestLine: 100, MaxHeaderFields: 3}}
	reg := prometheus.NewRegistry()
	opts.RequestMetrics = proxy.NewMetrics(reg)
	sink := withAccessLog(t, &opts, accesslog.FormatCommon)
	fe, _ := startProxy(t, opts)
	addr := strings.TrimPrefix(fe, "http://")

	c := dialRaw(t, addr)
	c.send("GET /" + strings.Repeat("a", 200) + " HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := c.read("GET"); resp.StatusCode != http.StatusRequestURITooLong {
		t.Fatalf("long request line: %d; want 414", resp.StatusCode)
	}
	if line := sink.Next(t); !regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "-" 414 \d+$`).MatchString(line) {
		t.Errorf("long request line logged as %q; want \"-\" 414 and the bytes", line)
	}

	c = dialRaw(t, addr)
	c.send(head("handoff", "GET /many HTTP/1.1", "A: 1", "B: 2", "C: 3", "D: 4"))
	if resp, _ := c.read("GET"); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("too many fields: %d; want 431", resp.StatusCode)
	}
	if line := sink.Next(t); !strings.Contains(line, `"GET /many HTTP/1.1" 431 `) {
		t.Errorf("too many fields logged as %q; want the request line and 431", line)
	}
	if got := requestsCounted(t, reg, "l", "4xx"); got != 2 {
		t.Errorf("unrouted 4xx = %v; want 2", got)
	}
}

// requestsCounted reads webtier_http_requests_total for listener and
// code class (unrouted: no route, no upstream) from reg.
func requestsCounted(t *testing.T, reg *prometheus.Registry, listener, class string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "webtier_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["listener"] == listener && labels["code"] == class && labels["route"] == "" && labels["upstream"] == "" {
				return m.GetCounter().GetValue()
			}
		}
	}
	var none dto.Metric
	return none.GetCounter().GetValue()
}
