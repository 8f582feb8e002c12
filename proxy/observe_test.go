package proxy

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/webtier/webtier/proxy/accesslog"
	"github.com/webtier/webtier/proxy/proxytest"
)

// withAccessLog turns the access log on in opts, in format f, writing to
// the returned sink.
func withAccessLog(t *testing.T, opts *Options, f accesslog.Format) *proxytest.LineSink {
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

type seenHeader struct {
	mu  sync.Mutex
	got []string
}

func (s *seenHeader) handler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, strings.Join(r.Header.Values(name), "|"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "hello world")
	}
}

func (s *seenHeader) last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[len(s.got)-1]
}

var generatedID = regexp.MustCompile(`^[0-9a-v]{26}$`)

// Every proxied request gets a combined line, with the real client from a
// trusted proxy's X-Forwarded-For, and a JSON line names the route,
// upstream, address and request id the backend saw.
func TestAccessLog_lines(t *testing.T) {
	var seen seenHeader
	backend := httptest.NewServer(seen.handler("X-Request-Id"))
	defer backend.Close()
	for _, f := range []accesslog.Format{accesslog.FormatCombined, accesslog.FormatJSON} {
		t.Run(f.String(), func(t *testing.T) {
			opts := oneUpstream(t, backend, nil)
			opts.Routes[0].PathPrefix = "/app"
			opts.Listeners = []ListenerOptions{{Name: "front", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}
			opts.RequestID = RequestIDOptions{Header: DefaultRequestIDHeader}
			sink := withAccessLog(t, &opts, f)
			fe, _ := startProxy(t, opts)
			req, _ := http.NewRequest("GET", fe+"/app/page?q=1", nil)
			req.Header.Set("User-Agent", "test-agent/1")
			req.Header.Set("X-Forwarded-For", "198.51.100.4, 127.0.0.9")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			line := sink.Next(t)
			id := seen.last()
			if !generatedID.MatchString(id) {
				t.Fatalf("backend saw X-Request-Id %q; want a generated id", id)
			}
			if f == accesslog.FormatCombined {
				re := regexp.MustCompile(`^198\.51\.100\.4 - - \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "GET /app/page\?q=1 HTTP/1\.1" 200 11 "-" "test-agent/1"$`)
				if !re.MatchString(line) {
					t.Errorf("line %q\ndoes not match %s", line, re)
				}
				return
			}
			var e map[string]any
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			want := map[string]any{"client": "198.51.100.4", "method": "GET", "uri": "/app/page?q=1", "status": 200.0,
				"bytes": 11.0, "request_id": id, "listener": "front", "route": "*/app", "upstream": "app",
				"upstream_addr": strings.TrimPrefix(backend.URL, "http://"), "user_agent": "test-agent/1"}
			for k, v := range want {
				if e[k] != v {
					t.Errorf("%s = %v; want %v (line %s)", k, e[k], v, line)
				}
			}
			for _, k := range []string{"upstream_header", "upstream_total", "duration"} {
				if v, ok := e[k].(float64); !ok || v <= 0 {
					t.Errorf("%s = %v; want a positive number of seconds", k, e[k])
				}
			}
		})
	}
}

// A request no route takes is logged too, without upstream.
func TestAccessLog_unrouted(t *testing.T) {
	backend := httptest.NewServer(http.NotFoundHandler())
	defer backend.Close()
	opts := oneUpstream(t, backend, nil)
	opts.Routes[0].PathPrefix = "/app"
	sink := withAccessLog(t, &opts, accesslog.FormatJSON)
	fe, _ := startProxy(t, opts)
	resp, err := http.Get(fe + "/other")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	line := sink.Next(t)
	if !strings.Contains(line, `"status":404`) || strings.Contains(line, `"upstream"`) || !strings.Contains(line, `"client":"127.0.0.1"`) {
		t.Errorf("line %s; want status 404, client 127.0.0.1 and no upstream", line)
	}
}

// The request id: generated when the peer is not trusted (a client's own
// X-Request-Id is replaced), kept from a trusted peer, and the client's
// header passes untouched when the feature is off.
func TestRequestID(t *testing.T) {
	var seen seenHeader
	backend := httptest.NewServer(seen.handler("X-Request-Id"))
	defer backend.Close()
	tests := []struct {
		name    string
		trusted bool
		off     bool
		sent    string
		want    *regexp.Regexp
	}{
		{"generated", false, false, "", generatedID},
		{"client's replaced", false, false, "forged-id", generatedID},
		{"trusted kept", true, false, "lb-1234", regexp.MustCompile(`^lb-1234$`)},
		{"trusted but invalid replaced", true, false, "a b", generatedID},
		{"off passes the client's", false, true, "client-id", regexp.MustCompile(`^client-id$`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := oneUpstream(t, backend, nil)
			opts.Listeners = []ListenerOptions{{Name: "l"}}
			if tt.trusted {
				opts.Listeners[0].TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			if !tt.off {
				opts.RequestID = RequestIDOptions{Header: DefaultRequestIDHeader}
			}
			fe, _ := startProxy(t, opts)
			ids := map[string]bool{}
			for range 2 {
				req, _ := http.NewRequest("GET", fe+"/", nil)
				if tt.sent != "" {
					req.Header.Set("X-Request-Id", tt.sent)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				got := seen.last()
				if !tt.want.MatchString(got) {
					t.Errorf("backend saw X-Request-Id %q; want %s", got, tt.want)
				}
				ids[got] = true
			}
			if tt.want == generatedID && len(ids) != 2 {
				t.Errorf("two requests got ids %v; want two different", ids)
			}
		})
	}
}

// A warning about a request names its request id, the one the access log
// line has.
func TestRequestID_inWarnings(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := uint16(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	opts := Options{
		Routes:    []RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []UpstreamOptions{{Name: "app", Targets: []TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: dead}}}},
		RequestID: RequestIDOptions{Header: DefaultRequestIDHeader},
	}
	sink := withAccessLog(t, &opts, accesslog.FormatJSON)
	fe, logs := startProxy(t, opts)
	resp, err := http.Get(fe + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d; want 502", resp.StatusCode)
	}
	var e struct {
		RequestID string `json:"request_id"`
	}
	json.Unmarshal([]byte(sink.Next(t)), &e)
	warns := logs.FilterMessage("upstream request failed").All()
	if len(warns) != 1 {
		t.Fatalf("%d warnings; want 1", len(warns))
	}
	if got := warns[0].ContextMap()["request_id"]; got != e.RequestID || e.RequestID == "" {
		t.Errorf("warning has request_id %v; access log has %q", got, e.RequestID)
	}
}

// Every request metric passes the Prometheus linter, and the counters and
// histograms move as requests flow, under bounded labels.
func TestRequestMetrics(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/app/missing" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "hello world")
	}))
	defer backend.Close()
	reg := prometheus.NewRegistry()
	opts := oneUpstream(t, backend, nil)
	opts.Routes[0].PathPrefix = "/app"
	opts.Listeners = []ListenerOptions{{Name: "front"}}
	opts.RequestMetrics = NewMetrics(reg)
	fe, _ := startProxy(t, opts)
	for _, p := range []string{"/app/a", "/app/b", "/app/missing", "/elsewhere"} {
		resp, err := http.Get(fe + p)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if problems, err := testutil.CollectAndLint(prometheus.Collector(reg)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
	m := opts.RequestMetrics
	checks := []struct {
		name string
		got  float64
		want float64
	}{
		{"2xx on the route", testutil.ToFloat64(m.requests.WithLabelValues("front", "*/app", "app", "2xx")), 2},
		{"4xx on the route", testutil.ToFloat64(m.requests.WithLabelValues("front", "*/app", "app", "4xx")), 1},
		{"4xx unrouted", testutil.ToFloat64(m.requests.WithLabelValues("front", "", "", "4xx")), 1},
		{"body bytes on the route", testutil.ToFloat64(m.bytes.WithLabelValues("front", "*/app", "app")), 22 + float64(len("404 page not found\n"))},
		{"in flight", testutil.ToFloat64(m.inflight.WithLabelValues("front")), 0},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v; want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.duration); n != 2 {
		t.Errorf("%d request duration series; want 2 (the route and unrouted)", n)
	}
	if got := histogramCount(t, m.upstreamHeader.WithLabelValues("app")); got != 3 {
		t.Errorf("upstream header histogram counted %d; want 3", got)
	}
}

func histogramCount(t *testing.T, o prometheus.Observer) uint64 {
	t.Helper()
	h := o.(prometheus.Histogram)
	ch := make(chan prometheus.Metric, 1)
	h.Collect(ch)
	var pb dto.Metric
	if err := (<-ch).Write(&pb); err != nil {
		t.Fatal(err)
	}
	return pb.GetHistogram().GetSampleCount()
}
