package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/proxy/upstream"
	"github.com/webtier/webtier/resolver"
)

// fakeDrainer records drains; tooLate makes Undrain fail.
type fakeDrainer struct {
	draining atomic.Bool
	tooLate  bool
}

func (d *fakeDrainer) Drain()         { d.draining.Store(true) }
func (d *fakeDrainer) Draining() bool { return d.draining.Load() }
func (d *fakeDrainer) Undrain() bool {
	if d.tooLate {
		return false
	}
	d.draining.Store(false)
	return true
}

// rig is an admin server over a real pool with two backends on loopback:
// target "app.test" (from a hosts file, through a real resolver) and the
// IP literal 127.0.0.1 on another port.
type rig struct {
	s        *Server
	pool     *upstream.Pool
	res      *resolver.Resolver
	drain    *fakeDrainer
	level    zap.AtomicLevel
	reloads  atomic.Int32
	reloadFn func() error
	logs     *observer.ObservedLogs
	named    string // "127.0.0.1:PORT" of app.test
	literal  string // "127.0.0.1:PORT" of the literal target
	token    string // page token
}

func backend(t *testing.T, name string) (port uint16) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, name)
	}))
	t.Cleanup(srv.Close)
	_, p, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

func newRig(t *testing.T, o Options) *rig {
	t.Helper()
	pa, pb := backend(t, "a"), backend(t, "b")
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 app.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := resolver.New(resolver.Options{HostsFile: hosts, Nameservers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	pool, err := upstream.New(upstream.Options{Name: "app", Balance: upstream.BalanceRoundRobin, Targets: []upstream.Target{
		{Scheme: "http", Host: "app.test", Port: pa},
		{Scheme: "http", Host: "127.0.0.1", Port: pb},
	}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := New(o, prometheus.NewRegistry(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{s: s, pool: pool, res: res, drain: &fakeDrainer{}, level: zap.NewAtomicLevel(), logs: logs,
		named: fmt.Sprintf("127.0.0.1:%d", pa), literal: fmt.Sprintf("127.0.0.1:%d", pb)}
	err = s.Control(Controls{
		Pools: func() []*upstream.Pool { return []*upstream.Pool{pool} },
		Names: res,
		Config: func() ConfigInfo {
			return ConfigInfo{File: "/etc/webtier.yaml", Hash: "0123456789abcdef",
				Listeners: []Listener{{Name: ":80", Address: ":80"}}, Routes: []Route{{Path: "/", Upstream: "app"}}}
		},
		Reload: func(context.Context) error {
			r.reloads.Add(1)
			if r.reloadFn != nil {
				return r.reloadFn()
			}
			return nil
		},
		Drainer: r.drain,
		Level:   &r.level,
		Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	// The pool has the hosts-file answer before the first request.
	r.waitState(t, r.named, "running")
	r.token = regexp.MustCompile(`name="webtier-token" content="([0-9a-f]+)"`).FindStringSubmatch(r.do(t, "GET", "/", "", nil).Body.String())[1]
	return r
}

// do sends a request to the admin handler as a browser on the same origin
// would, with extra headers (an empty value deletes one).
func (r *rig) do(t *testing.T, method, path, body string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Host = "127.0.0.1:9180"
	if method == "POST" {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(csrfHeader, r.token)
		req.Header.Set("Origin", "http://127.0.0.1:9180")
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	r.s.ServeHTTP(w, req)
	return w
}

func (r *rig) status(t *testing.T) Status {
	t.Helper()
	w := r.do(t, "GET", "/api/status", "", nil)
	if w.Code != 200 {
		t.Fatalf("GET /api/status: %d %s", w.Code, w.Body)
	}
	var st Status
	if err := json.Unmarshal(w.Body.Bytes(), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, w.Body)
	}
	return st
}

// state returns the state the JSON status shows for addr.
func (r *rig) state(t *testing.T, addr string) string {
	t.Helper()
	for _, u := range r.status(t).Upstreams {
		for _, tg := range u.Targets {
			for _, a := range tg.Addresses {
				if a.Address == addr {
					return a.State
				}
			}
		}
	}
	return ""
}

// waitState waits for the pool to list addr in state want (the first DNS
// answer comes from the resolver's goroutine).
func (r *rig) waitState(t *testing.T, addr, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, e := range r.pool.Endpoints() {
			if e.Addr().String() == addr && e.State().String() == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never %s", addr, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// served sends n requests through the pool and counts the answers by
// backend name.
func (r *rig) served(t *testing.T, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		req, _ := http.NewRequest("GET", "http://app/", nil)
		resp, err := r.pool.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got[string(b)]++
	}
	return got
}

func TestStatusJSON(t *testing.T) {
	r := newRig(t, Options{Address: "127.0.0.1:9180"})
	r.served(t, 4)
	w := r.do(t, "GET", "/api/status", "", nil)
	for k, want := range map[string]string{
		"Content-Type":    "application/json",
		"Cache-Control":   "no-store",
		"X-Frame-Options": "DENY",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s: %q; want %q", k, got, want)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"version", "now", "config", "drain", "log_level", "upstreams", "names", "dns_changes"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status lacks %q:\n%s", k, w.Body)
		}
	}
	st := r.status(t)
	if len(st.Upstreams) != 1 {
		t.Fatalf("upstreams: %+v", st.Upstreams)
	}
	u := st.Upstreams[0]
	if u.Name != "app" || u.Balance != upstream.BalanceRoundRobin || len(u.Targets) != 2 || u.Total != 4 || u.InFlight != 0 {
		t.Errorf("upstream: %+v; want app, round_robin, 2 targets, 4 sent, none in flight", u)
	}
	tg := u.Targets[0]
	if tg.Host != "app.test" || len(tg.Addresses) != 1 || tg.Addresses[0].Address != r.named {
		t.Fatalf("target 0: %+v; want app.test with %s", tg, r.named)
	}
	a := tg.Addresses[0]
	if a.State != "running" || a.Reason != "in dns answer" || a.Since.IsZero() || a.Total != 2 {
		t.Errorf("address: %+v; want running since it joined, 2 sent", a)
	}
	if len(st.Names) != 1 || st.Names[0].Name != "app.test" || st.Names[0].Source != resolver.SourceHosts ||
		st.Names[0].TTLLeft <= 0 || st.Names[0].TTLSeconds < st.Names[0].TTLLeft || len(st.Names[0].Addresses) != 1 {
		t.Errorf("names: %+v; want app.test from the hosts file with TTL left", st.Names)
	}
	if len(st.DNSChanges) != 1 || st.DNSChanges[0].Name != "app.test" || len(st.DNSChanges[0].New) != 1 {
		t.Errorf("dns_changes: %+v; want the first answer of app.test", st.DNSChanges)
	}
	if st.Config == nil || st.Config.Hash != "0123456789abcdef" || len(st.Config.Routes) != 1 || len(st.Config.Listeners) != 1 {
		t.Errorf("config: %+v", st.Config)
	}
	if !st.Drain.Available || st.Drain.Draining || st.LogLevel != "info" {
		t.Errorf("drain %+v, log level %q", st.Drain, st.LogLevel)
	}
}

func TestActions(t *testing.T) {
	r := newRig(t, Options{Address: "127.0.0.1:9180"})
	post := func(path, body string) (int, string) {
		t.Helper()
		w := r.do(t, "POST", path, body, nil)
		return w.Code, w.Body.String()
	}

	// An address to standby: the status shows it, and traffic follows.
	if code, body := post("/api/standby", `{"upstream":"app","address":"`+r.literal+`"}`); code != 200 {
		t.Fatalf("standby: %d %s", code, body)
	}
	if s := r.state(t, r.literal); s != "standby" {
		t.Errorf("after standby: %s", s)
	}
	if got := r.served(t, 6); got["a"] != 6 {
		t.Errorf("with b in standby: %v; want all 6 on a", got)
	}
	if code, body := post("/api/activate", `{"upstream":"app","address":"`+r.literal+`"}`); code != 200 {
		t.Fatalf("activate: %d %s", code, body)
	}
	if got := r.served(t, 6); got["b"] == 0 {
		t.Errorf("after activate: %v; want b back", got)
	}

	// A whole target to standby and back.
	if code, body := post("/api/standby", `{"upstream":"app","target":"app.test"}`); code != 200 {
		t.Fatalf("standby target: %d %s", code, body)
	}
	if s := r.state(t, r.named); s != "standby" {
		t.Errorf("after target standby: %s", s)
	}
	if !r.status(t).Upstreams[0].Targets[0].Standby {
		t.Error("target not shown in standby")
	}
	if got := r.served(t, 4); got["b"] != 4 {
		t.Errorf("with app.test in standby: %v; want all on b", got)
	}
	if code, _ := post("/api/activate", `{"upstream":"app","target":"app.test"}`); code != 200 || r.state(t, r.named) != "running" {
		t.Errorf("activate target: %d, state %s", code, r.state(t, r.named))
	}

	// Balance at runtime.
	if code, body := post("/api/balance", `{"upstream":"app","balance":"least_conn"}`); code != 200 || r.pool.Options().Balance != upstream.BalanceLeastConn {
		t.Errorf("balance: %d %s; pool has %s", code, body, r.pool.Options().Balance)
	}
	if r.status(t).Upstreams[0].Balance != upstream.BalanceLeastConn {
		t.Error("status does not show the new balance")
	}

	// Log level.
	if code, _ := post("/api/log-level", `{"level":"debug"}`); code != 200 || r.level.Level() != zapcore.DebugLevel {
		t.Errorf("log-level: %d, level %s", code, r.level.Level())
	}

	// Drain and undrain.
	if code, _ := post("/api/drain", ""); code != 200 || !r.status(t).Drain.Draining {
		t.Errorf("drain: %d, draining %v", code, r.drain.Draining())
	}
	if code, _ := post("/api/undrain", ""); code != 200 || r.drain.Draining() {
		t.Errorf("undrain: %d, draining %v", code, r.drain.Draining())
	}
	r.drain.tooLate = true
	r.drain.Drain()
	if code, _ := post("/api/undrain", ""); code != http.StatusConflict {
		t.Errorf("undrain after the listeners closed: %d; want 409", code)
	}

	// Reload, and a reload whose file does not load.
	if code, _ := post("/api/reload", ""); code != 200 || r.reloads.Load() != 1 {
		t.Errorf("reload: %d, %d reloads", code, r.reloads.Load())
	}
	r.reloadFn = func() error { return errors.New("webtier.yaml:3: upstreams: bad") }
	if code, body := post("/api/reload", ""); code != http.StatusUnprocessableEntity || !strings.Contains(body, "webtier.yaml:3") {
		t.Errorf("failed reload: %d %s; want 422 with the config error", code, body)
	}

	// Re-resolution of a name webtier resolves, and refusal of another.
	if code, body := post("/api/resolve", `{"name":"app.test"}`); code != 200 {
		t.Errorf("resolve: %d %s", code, body)
	}

	// Bad input: each refused with a message that says what to send.
	for _, tt := range []struct {
		path, body string
		code       int
		says       string
	}{
		{"/api/balance", `{"upstream":"app","balance":"fastest"}`, 400, "least_conn"},
		{"/api/balance", `{"upstream":"nope","balance":"hash"}`, 404, "nope"},
		{"/api/standby", `{"upstream":"app"}`, 400, "address"},
		{"/api/standby", `{"upstream":"app","address":"10.9.9.9:80"}`, 404, "10.9.9.9:80"},
		{"/api/standby", `{"upstream":"app","address":"nonsense"}`, 400, "IP:PORT"},
		{"/api/standby", `{"upstream":"app","target":"other.test"}`, 404, "other.test"},
		{"/api/standby", `{"upstream":"app","bogus":1}`, 400, "bogus"},
		{"/api/resolve", `{"name":"evil.example"}`, 404, "evil.example"},
		{"/api/log-level", `{"level":"fatal"}`, 400, "debug"},
		{"/api/log-level", `{"level":"loud"}`, 400, "debug"},
	} {
		if code, body := post(tt.path, tt.body); code != tt.code || !strings.Contains(body, tt.says) {
			t.Errorf("POST %s %s: %d %s; want %d naming %q", tt.path, tt.body, code, body, tt.code, tt.says)
		}
	}
	if r.level.Level() != zapcore.DebugLevel || r.pool.Options().Balance != upstream.BalanceLeastConn {
		t.Error("a refused action changed something")
	}

	// Every action is logged at info with who did what.
	logged := r.logs.FilterMessage("admin action").FilterField(zap.String("action", "standby")).All()
	if len(logged) == 0 {
		t.Fatal("standby not logged")
	}
	f := logged[0].ContextMap()
	if f["remote"] == "" || f["via"] != "page token" || f["upstream"] != "app" || f["address"] != r.literal {
		t.Errorf("standby logged with %v", f)
	}
	if r.logs.FilterMessage("admin action refused").Len() == 0 {
		t.Error("refused actions not logged")
	}
}

// A page of another site (or a link, or an image) must not change
// anything: actions need POST, the page token, and no cross-site Origin or
// Sec-Fetch-Site; a name that points at 127.0.0.1 (DNS rebinding) is
// refused by its Host.
func TestCrossSiteRefused(t *testing.T) {
	r := newRig(t, Options{Address: "127.0.0.1:9180"})
	standby := `{"upstream":"app","address":"` + r.literal + `"}`
	for _, tt := range []struct {
		name string
		hdr  map[string]string
		code int
	}{
		{"no token", map[string]string{csrfHeader: ""}, 403},
		{"wrong token", map[string]string{csrfHeader: strings.Repeat("0", 32)}, 403},
		{"cross-site origin", map[string]string{"Origin": "http://evil.example"}, 403},
		{"origin of another port", map[string]string{"Origin": "http://127.0.0.1:8080"}, 403},
		{"null origin", map[string]string{"Origin": "null"}, 403},
		{"sec-fetch-site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"sec-fetch-site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}, 403},
		{"rebound host", map[string]string{"Host": "evil.example:9180", "Origin": "http://evil.example:9180"}, 421},
	} {
		w := r.do(t, "POST", "/api/standby", standby, tt.hdr)
		if w.Code != tt.code {
			t.Errorf("%s: %d %s; want %d", tt.name, w.Code, w.Body, tt.code)
		}
		if s := r.state(t, r.literal); s != "running" {
			t.Fatalf("%s: the address went %s", tt.name, s)
		}
	}
	if n := r.logs.FilterMessage("admin request refused").Len(); n != 8 {
		t.Errorf("%d refusals logged; want 8", n)
	}
	// GET on an action (a link, an <img>): 405, nothing changes.
	for _, path := range []string{"/api/standby?upstream=app&address=" + r.literal, "/api/drain", "/api/reload"} {
		w := r.do(t, "GET", path, "", nil)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "POST" {
			t.Errorf("GET %s: %d; want 405 with Allow: POST", path, w.Code)
		}
	}
	if r.state(t, r.literal) != "running" || r.drain.Draining() || r.reloads.Load() != 0 {
		t.Error("a GET changed something")
	}
	// The rebound name cannot read the status either.
	if w := r.do(t, "GET", "/api/status", "", map[string]string{"Host": "evil.example:9180"}); w.Code != 421 {
		t.Errorf("status by a rebound name: %d; want 421", w.Code)
	}
	// curl without a browser's headers, with the token from /api/csrf-token.
	tok := strings.TrimSpace(r.do(t, "GET", "/api/csrf-token", "", nil).Body.String())
	w := r.do(t, "POST", "/api/standby", standby, map[string]string{"Origin": "", "Sec-Fetch-Site": "", csrfHeader: tok})
	if w.Code != 200 || r.state(t, r.literal) != "standby" {
		t.Errorf("curl with the token: %d %s", w.Code, w.Body)
	}
}

// Off loopback the token guards the data and the actions; the page's
// static parts, which hold none, load without it so that the page can ask
// for it.
func TestTokenGuardsAPI(t *testing.T) {
	r := newRig(t, Options{Address: "0.0.0.0:9180", Token: "s3cret"})
	bearer := map[string]string{"Authorization": "Bearer s3cret"}
	for _, tt := range []struct {
		method, path string
		hdr          map[string]string
		code         int
	}{
		{"GET", "/api/status", nil, 401},
		{"GET", "/api/csrf-token", nil, 401},
		{"GET", "/metrics", nil, 401},
		{"POST", "/api/drain", nil, 401},
		{"GET", "/api/status", bearer, 200},
		{"GET", "/", nil, 200},
		{"GET", "/static/app.js", nil, 200},
		{"GET", "/static/style.css", nil, 200},
		// The bearer token is enough for tools: a browser never sends it
		// by itself, so it cannot be forged cross-site.
		{"POST", "/api/drain", map[string]string{"Authorization": "Bearer s3cret", csrfHeader: ""}, 200},
	} {
		if w := r.do(t, tt.method, tt.path, "", tt.hdr); w.Code != tt.code {
			t.Errorf("%s %s: %d; want %d", tt.method, tt.path, w.Code, tt.code)
		}
	}
	if !r.drain.Draining() {
		t.Error("drain with the bearer token did not drain")
	}
}

func TestPage(t *testing.T) {
	r := newRig(t, Options{Address: "127.0.0.1:9180"})
	w := r.do(t, "GET", "/", "", nil)
	csp := w.Header().Get("Content-Security-Policy")
	if w.Code != 200 || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || w.Header().Get("X-Frame-Options") != "DENY" {
		t.Errorf("GET /: %d, CSP %q, XFO %q", w.Code, csp, w.Header().Get("X-Frame-Options"))
	}
	body := w.Body.String()
	if strings.Contains(body, "{{TOKEN}}") || !strings.Contains(body, `src="/static/app.js"`) ||
		regexp.MustCompile(`<script>|<script [^s]|\son[a-z]+="`).MatchString(body) {
		t.Errorf("page has inline script or no token:\n%s", body)
	}
	js := r.do(t, "GET", "/static/app.js", "", nil)
	if js.Code != 200 || !strings.Contains(js.Header().Get("Content-Type"), "javascript") || !strings.Contains(js.Body.String(), "X-Webtier-Token") {
		t.Errorf("app.js: %d %s", js.Code, js.Header().Get("Content-Type"))
	}
	if w := r.do(t, "GET", "/static/index.html", "", nil); w.Code != 404 {
		t.Errorf("/static/index.html: %d; want 404 (the page only at /)", w.Code)
	}
}
