package proxy

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/webtier/webtier/proxy/rules/access"
	"github.com/webtier/webtier/proxy/rules/errpage"
	"github.com/webtier/webtier/proxy/rules/headers"
)

// ruleBackend echoes what it received: the request header as
// "Name: value" lines in X-Seen and the body length in X-Body-Len.
func ruleBackend(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		n, _ := io.Copy(io.Discard, r.Body)
		w.Header().Set("Server", "Apache-Coyote/1.1")
		w.Header().Set("X-Body-Len", strconv.FormatInt(n, 10))
		w.Header().Set("X-Auth-Seen", r.Header.Get("Authorization"))
		w.Header().Set("X-Rule-Seen", r.Header.Get("X-Rule"))
		w.Header().Set("X-Client-Seen", r.Header.Get("X-Client"))
		w.Header().Set("X-Frame-Options", "DENY")
		switch r.URL.Path {
		case "/fail":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "backend stack trace: java.lang.NullPointerException at 10.0.0.5")
			return
		case "/slow-head":
			time.Sleep(300 * time.Millisecond) // past the route's 50ms timeout
		case "/slow-body":
			w.WriteHeader(200)
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond) // the head came in time; the body may take longer
		}
		io.WriteString(w, "ok\n")
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func get(t *testing.T, url string, hdr http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	return do(t, req)
}

func TestRules_headers(t *testing.T) {
	backend, _ := ruleBackend(t)
	opts := oneUpstream(t, backend, nil)
	opts.RequestID = RequestIDOptions{Header: "X-Request-Id"}
	server := "webtier"
	opts.Listeners = []ListenerOptions{{Name: "test", Rules: &ListenerRules{
		ServerHeader:    &server,
		RequestHeaders:  &headers.Rules{Set: []headers.Field{{Name: "X-Rule", Value: "listener"}}},
		ResponseHeaders: &headers.Rules{Set: []headers.Field{{Name: "X-L", Value: "1"}}},
	}}}
	sec := true
	opts.Routes[0].Rules = &RouteRules{
		RequestHeaders: &headers.Rules{
			Add: []headers.Field{{Name: "X-Client", Value: "{client_ip} {scheme} {host}"}},
		},
		ResponseHeaders: &headers.Rules{
			Unset: []string{"X-Body-Len"},
			Add:   []headers.Field{{Name: "X-Id", Value: "{request_id}"}},
			Edit:  []headers.Edit{{Name: "X-Rule-Seen", Match: regexp.MustCompile("^list"), Replace: "LIST"}},
		},
		SecurityHeaders: &sec,
	}
	url, _ := startProxy(t, opts)
	// The client's own X-Client is dropped as Connection-listed, and its
	// X-Forwarded-For is not believed: the rules run after both are
	// handled, so the backend sees only the rule's values.
	res, _ := get(t, url+"/", http.Header{"X-Rule": {"client"}, "Connection": {"X-Client"},
		"X-Client": {"10.6.6.6 https evil.test"}, "X-Forwarded-For": {"10.6.6.6"}})
	h := res.Header
	checks := map[string]string{
		"Server":                 "webtier",
		"X-L":                    "1",
		"X-Rule-Seen":            "LISTener", // set by the listener (not the client's), edited on the way back
		"X-Client-Seen":          "127.0.0.1 http " + strings.TrimPrefix(url, "http://"),
		"X-Body-Len":             "",
		"X-Frame-Options":        "DENY", // the backend's is kept
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        headers.ReferrerPolicy,
	}
	for k, want := range checks {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	if !regexp.MustCompile(`^[0-9a-z]{26}$`).MatchString(h.Get("X-Id")) {
		t.Errorf("X-Id = %q; want the request id", h.Get("X-Id"))
	}
	if _, ok := h["Strict-Transport-Security"]; ok {
		t.Error("HSTS over plain HTTP")
	}
}

func TestRules_maxBodySize(t *testing.T) {
	backend, hits := ruleBackend(t)
	opts := oneUpstream(t, backend, nil)
	opts.Routes[0].Rules = &RouteRules{Access: &access.Options{MaxBodySize: 10}}
	url, _ := startProxy(t, opts)
	tests := []struct {
		name    string
		body    io.Reader
		length  int64
		status  int
		reached bool
	}{
		{"small with length", strings.NewReader("0123456789"), 10, 200, true},
		{"large with length", strings.NewReader("0123456789x"), 11, 413, false},
		{"small chunked", io.MultiReader(strings.NewReader("0123456789")), -1, 200, true},
		{"large chunked", io.MultiReader(strings.NewReader(strings.Repeat("x", 100000))), -1, 413, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := hits.Load()
			req, _ := http.NewRequest("POST", url+"/", tt.body)
			req.ContentLength = tt.length
			res, _ := do(t, req)
			if res.StatusCode != tt.status {
				t.Errorf("status %d; want %d", res.StatusCode, tt.status)
			}
			if !tt.reached && hits.Load() != before {
				t.Error("the backend was called for a body whose Content-Length is over the limit")
			}
			if res.StatusCode == 200 && res.Header.Get("X-Body-Len") != "10" {
				t.Errorf("backend got %s bytes; want 10", res.Header.Get("X-Body-Len"))
			}
		})
	}
}

func TestRules_timeout(t *testing.T) {
	backend, _ := ruleBackend(t)
	for _, engine := range []Engine{EngineWebtier, EngineStd} {
		t.Run(string(engine), func(t *testing.T) {
			opts := oneUpstream(t, backend, func(uo *UpstreamOptions) { uo.Engine = engine })
			opts.Routes[0].Rules = &RouteRules{Access: &access.Options{Timeout: 50 * time.Millisecond}}
			url, _ := startProxy(t, opts)
			if res, _ := get(t, url+"/slow-head", nil); res.StatusCode != http.StatusGatewayTimeout {
				t.Errorf("slow head: status %d; want 504", res.StatusCode)
			}
			res, body := get(t, url+"/slow-body", nil)
			if res.StatusCode != 200 || body != "ok\n" {
				t.Errorf("slow body after a timely head: %d %q; want 200 \"ok\\n\" (the timeout is for the head only)", res.StatusCode, body)
			}
		})
	}
}

// TestRules_timeoutLonger: a route's timeout longer than its upstream's
// response_header_timeout is the one its requests wait by (issue 21: per-
// route timeouts override the upstream's), while a route without one
// keeps the upstream's. No clock in the test: the backend holds both
// heads; the request of the route without a timeout, sent second, gets
// its 504 first, so the first one has by then waited longer than the
// upstream's timeout, and is answered 200 when the backend lets it go.
func TestRules_timeoutLonger(t *testing.T) {
	for _, engine := range []Engine{EngineWebtier, EngineStd} {
		t.Run(string(engine), func(t *testing.T) {
			arrived, release := make(chan string, 2), make(chan struct{})
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- r.URL.Path
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
				io.WriteString(w, "late but wanted\n")
			}))
			t.Cleanup(backend.Close)
			t.Cleanup(func() { close(release) })
			opts := oneUpstream(t, backend, func(uo *UpstreamOptions) {
				uo.Engine = engine
				uo.ResponseHeaderTimeout = 50 * time.Millisecond
			})
			opts.Routes = append([]RouteOptions{{PathPrefix: "/report/", Upstream: "app",
				Rules: &RouteRules{Access: &access.Options{Timeout: time.Hour}}}}, opts.Routes...)
			url, _ := startProxy(t, opts)

			type result struct {
				status int
				body   string
			}
			long := make(chan result, 1)
			go func() {
				res, err := http.Get(url + "/report/year")
				if err != nil {
					long <- result{0, err.Error()}
					return
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				long <- result{res.StatusCode, string(b)}
			}()
			if p := <-arrived; p != "/report/year" {
				t.Fatalf("backend got %s first", p)
			}
			if res, _ := get(t, url+"/plain", nil); res.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("route without a timeout: status %d; want 504 after the upstream's 50ms", res.StatusCode)
			}
			select {
			case r := <-long:
				t.Fatalf("route with timeout 1h answered %d %q before the backend did", r.status, r.body)
			default:
			}
			release <- struct{}{}
			if r := <-long; r.status != 200 || r.body != "late but wanted\n" {
				t.Errorf("route with timeout 1h: %d %q; want 200 \"late but wanted\\n\"", r.status, r.body)
			}
		})
	}
}

// TestRules_timeoutStdUpload: on the std client, an upstream whose routes
// lengthen the timeout times its other requests itself (net/http has no
// per-request timeout), and starts the clock where net/http does, once
// the request is written: an upload that pauses longer than the
// upstream's response_header_timeout is not cut off. The pause is
// measured by a signal, not a clock: a request sent after the upload's
// first part arrived gets the upstream's 504 first.
func TestRules_timeoutStdUpload(t *testing.T) {
	gotFirst := make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/upload" {
			<-r.Context().Done() // held until the proxy gives up
			return
		}
		first := make([]byte, 5)
		io.ReadFull(r.Body, first)
		close(gotFirst)
		rest, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %d bytes", len(first)+len(rest))
	}))
	t.Cleanup(backend.Close)
	opts := oneUpstream(t, backend, func(uo *UpstreamOptions) {
		uo.Engine = EngineStd
		uo.ResponseHeaderTimeout = 50 * time.Millisecond
	})
	opts.Routes = append([]RouteOptions{{PathPrefix: "/report/", Upstream: "app",
		Rules: &RouteRules{Access: &access.Options{Timeout: time.Hour}}}}, opts.Routes...)
	url, _ := startProxy(t, opts)

	pr, pw := io.Pipe()
	type result struct {
		status int
		body   string
	}
	upload := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("POST", url+"/upload", pr)
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			upload <- result{0, err.Error()}
			return
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		upload <- result{res.StatusCode, string(b)}
	}()
	pw.Write([]byte("first"))
	<-gotFirst
	if res, _ := get(t, url+"/plain", nil); res.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("held request: status %d; want 504 after the upstream's 50ms", res.StatusCode)
	}
	pw.Write([]byte(" and the rest"))
	pw.Close()
	if r := <-upload; r.status != 200 || r.body != "got 18 bytes" {
		t.Errorf("upload that paused longer than response_header_timeout: %d %q; want 200 \"got 18 bytes\"", r.status, r.body)
	}
}

func TestRules_allowDeny(t *testing.T) {
	backend, _ := ruleBackend(t)
	opts := oneUpstream(t, backend, nil)
	opts.Routes[0].Rules = &RouteRules{Access: &access.Options{
		Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("192.0.2.66/32")},
	}}
	tests := []struct {
		name    string
		trusted bool
		xff     string
		status  int
	}{
		{"peer not allowed", false, "", 403},
		{"forged XFF from an untrusted peer", false, "192.0.2.1", 403},
		{"XFF from a trusted peer", true, "192.0.2.1", 200},
		{"client part of the chain not believed", true, "192.0.2.1, 198.51.100.1", 403},
		{"denied inside allowed", true, "192.0.2.66", 403},
		{"garbage", true, "not-an-ip", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := opts
			o.Listeners = []ListenerOptions{{Name: "test"}}
			if tt.trusted {
				o.Listeners[0].TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			}
			url, _ := startProxy(t, o)
			h := http.Header{}
			if tt.xff != "" {
				h.Set("X-Forwarded-For", tt.xff)
			}
			if res, _ := get(t, url+"/", h); res.StatusCode != tt.status {
				t.Errorf("status %d; want %d", res.StatusCode, tt.status)
			}
		})
	}
}

func TestRules_basicAuth(t *testing.T) {
	backend, _ := ruleBackend(t)
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	users := map[string][]byte{"alice": hash}
	cred := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
	for _, forward := range []bool{false, true} {
		opts := oneUpstream(t, backend, nil)
		opts.Routes[0].Rules = &RouteRules{Access: &access.Options{BasicAuth: access.NewBasicAuth("Staff", users, forward)}}
		url, _ := startProxy(t, opts)
		res, _ := get(t, url+"/", nil)
		if res.StatusCode != 401 || res.Header.Get("WWW-Authenticate") != `Basic realm="Staff", charset="UTF-8"` {
			t.Errorf("no credentials: %d %q; want 401 with a Basic challenge", res.StatusCode, res.Header.Get("WWW-Authenticate"))
		}
		bad := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:wrong"))
		if res, _ := get(t, url+"/", http.Header{"Authorization": {bad}}); res.StatusCode != 401 {
			t.Errorf("wrong password: %d; want 401", res.StatusCode)
		}
		res, _ = get(t, url+"/", http.Header{"Authorization": {cred}})
		if res.StatusCode != 200 {
			t.Fatalf("right password: %d; want 200", res.StatusCode)
		}
		want := ""
		if forward {
			want = cred
		}
		if got := res.Header.Get("X-Auth-Seen"); got != want {
			t.Errorf("forward_auth %v: backend saw Authorization %q; want %q", forward, got, want)
		}
	}
}

func TestRules_rateLimit(t *testing.T) {
	backend, hits := ruleBackend(t)
	opts := oneUpstream(t, backend, nil)
	opts.Routes[0].Rules = &RouteRules{Access: &access.Options{RateLimit: &access.RateLimit{Rate: 0.01, Burst: 2}}}
	url, _ := startProxy(t, opts)
	for i := range 2 {
		if res, _ := get(t, url+"/", nil); res.StatusCode != 200 {
			t.Fatalf("request %d: %d; want 200", i+1, res.StatusCode)
		}
	}
	res, _ := get(t, url+"/", nil)
	if res.StatusCode != 429 || res.Header.Get("Retry-After") != "100" {
		t.Errorf("3rd: %d Retry-After %q; want 429 and 100", res.StatusCode, res.Header.Get("Retry-After"))
	}
	if hits.Load() != 2 {
		t.Errorf("backend got %d requests; want 2", hits.Load())
	}
}

func TestRules_errorPages(t *testing.T) {
	backend, _ := ruleBackend(t)
	down := httptest.NewServer(nil)
	down.Close()
	page := writeFile(t, "5xx.html", "<p>Sorry. Quote {request_id}.</p>")
	notFound := writeFile(t, "404.html", "<p>No such page ({request_id})</p>")
	pages := map[int]errpage.Page{
		502: errpage.NewPage(page, []byte("<p>Sorry. Quote {request_id}.</p>")),
		503: errpage.NewPage(page, []byte("<p>Busy. Quote {request_id}.</p>")),
	}
	opts := Options{
		Listeners: []ListenerOptions{{Name: "test", Rules: &ListenerRules{
			ErrorPages:      map[int]errpage.Page{404: errpage.NewPage(notFound, []byte("<p>No such page ({request_id})</p>"))},
			ResponseHeaders: &headers.Rules{Set: []headers.Field{{Name: "X-Route", Value: "1"}}},
		}}},
		Upstreams: []UpstreamOptions{
			{Name: "app", Targets: []TargetOptions{target(t, backend)}},
			{Name: "down", Targets: []TargetOptions{target(t, down)}},
		},
		Routes: []RouteOptions{
			{Host: "a.test", PathPrefix: "/", Upstream: "app", Rules: &RouteRules{ErrorPages: pages, ErrorPagesBackend: true}},
			{Host: "b.test", PathPrefix: "/", Upstream: "app", Rules: &RouteRules{ErrorPages: pages}},
			{Host: "c.test", PathPrefix: "/", Upstream: "down", Rules: &RouteRules{ErrorPages: pages}},
			{Host: "e.test", PathPrefix: "/", Upstream: "down"},
		},
		RequestID: RequestIDOptions{Header: "X-Request-Id"},
	}
	url, _ := startProxy(t, opts)
	id := regexp.MustCompile(`^[0-9a-z]+$`)
	tests := []struct {
		host, path string
		status     int
		body       *regexp.Regexp
	}{
		{"a.test", "/fail", 503, regexp.MustCompile(`^<p>Busy\. Quote ([0-9a-z]+)\.</p>$`)},
		{"b.test", "/fail", 503, regexp.MustCompile(`^backend stack trace`)},
		{"c.test", "/", 502, regexp.MustCompile(`^<p>Sorry\. Quote ([0-9a-z]+)\.</p>$`)},
		{"d.test", "/", 404, regexp.MustCompile(`^<p>No such page \(([0-9a-z]+)\)</p>$`)},
		{"e.test", "/", 502, regexp.MustCompile(`^502 Bad Gateway: no backend could be reached\n$`)},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url+tt.path, nil)
			req.Host = tt.host
			res, body := do(t, req)
			if res.StatusCode != tt.status || !tt.body.MatchString(body) {
				t.Fatalf("got %d %q; want %d matching %s", res.StatusCode, body, tt.status, tt.body)
			}
			if m := tt.body.FindStringSubmatch(body); len(m) > 1 && !id.MatchString(m[1]) {
				t.Errorf("request id %q", m[1])
			}
			if res.Header.Get("X-Route") != "1" && tt.host != "d.test" {
				t.Errorf("X-Route %q; want the route's response header on its error answers too", res.Header.Get("X-Route"))
			}
			if tt.host != "b.test" && tt.host != "e.test" && !strings.Contains(res.Header.Get("Content-Type"), "text/html") {
				t.Errorf("Content-Type %q; want text/html", res.Header.Get("Content-Type"))
			}
		})
	}
}

// BenchmarkServeHTTPRules is BenchmarkServeHTTP/plain on a route with
// typical rules: what they cost a request that uses them.
func BenchmarkServeHTTPRules(b *testing.B) {
	sec := true
	for _, bc := range []struct {
		name  string
		rules *RouteRules
	}{
		{"none", nil},
		{"headers", &RouteRules{SecurityHeaders: &sec,
			RequestHeaders: &headers.Rules{Set: []headers.Field{{Name: "X-Client-IP", Value: "{client_ip}"}}}}},
		{"allow+rate_limit", &RouteRules{Access: &access.Options{
			Allow:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
			RateLimit: &access.RateLimit{Rate: 1e9, Burst: 1 << 20}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchServeHTTP(b, Options{Routes: []RouteOptions{{PathPrefix: "/", Upstream: "app", Rules: bc.rules}}})
		})
	}
}
