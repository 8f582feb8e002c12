package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// The rules tests: path remapping, ProxyPassReverse, redirects and
// rewrites (issue 21, proxy/rules/rewrite), against the real binary and a
// real backend on 127.0.0.61 that redirects to its own address, as a
// Tomcat that knows no public name does. They check what the client sees
// (status, Location, Set-Cookie, body) and the request line the backend
// received. TestAttackRemap sends the path attacks on raw sockets.

// selfRedirectBackend is an HTTP/1.1 server on 127.0.0.61 that records the
// request target of every request and answers:
//
//   - .../login-redirect: 302 to its own http://127.0.0.61:PORT/shop-app/login,
//     with a session cookie for Path=/shop-app and Domain=127.0.0.61;
//   - /own: 302 to http://127.0.0.61:PORT/login (its own address, no remap);
//   - /shop-app/relative: 302 to /shop-app/next (a path only, as Tomcat's
//     relative redirects);
//   - anything else: 200 with the request target as the body.
type selfRedirectBackend struct {
	ln  net.Listener
	srv *http.Server

	mu      sync.Mutex // guards targets
	targets []string
}

func startSelfRedirectBackend(t *testing.T) *selfRedirectBackend {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.61:0")
	if err != nil {
		t.Fatalf("listen on 127.0.0.61: %v", err)
	}
	b := &selfRedirectBackend{ln: ln}
	own := "http://" + ln.Addr().String()
	b.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.targets = append(b.targets, r.RequestURI)
		b.mu.Unlock()
		switch {
		case strings.HasSuffix(r.URL.Path, "/login-redirect"):
			w.Header().Set("Location", own+"/shop-app/login")
			w.Header().Add("Set-Cookie", "JSESSIONID=S1; Path=/shop-app; Domain=127.0.0.61; HttpOnly")
			w.WriteHeader(http.StatusFound)
		case r.URL.Path == "/own":
			w.Header().Set("Location", own+"/login")
			w.Header().Set("Refresh", "0; url="+own+"/login")
			w.WriteHeader(http.StatusFound)
		case r.URL.Path == "/shop-app/relative":
			w.Header().Set("Location", "/shop-app/next")
			w.WriteHeader(http.StatusFound)
		default:
			io.WriteString(w, r.RequestURI) //nolint:errcheck
		}
	})}
	go b.srv.Serve(ln) //nolint:errcheck // ErrServerClosed at Close
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *selfRedirectBackend) addr() string { return b.ln.Addr().String() }

// seen returns the request targets received since mark, and the new mark.
func (b *selfRedirectBackend) seen(mark int) ([]string, int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.targets[mark:]...), len(b.targets)
}

func (b *selfRedirectBackend) mark() int {
	_, m := b.seen(0)
	return m
}

// rulesWebtier starts the backend and a webtier with the rules of
// README's example.
func rulesWebtier(t *testing.T) (*peer.Webtier, *selfRedirectBackend) {
	t.Helper()
	b := startSelfRedirectBackend(t)
	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners:
  - address: %q
routes:
  - path: /shop/
    upstream: shop
    reverse: {cookie_domain: {127.0.0.61: www.example.com}}
  - path: /shop
    upstream: shopnoslash
  - path: /off/
    upstream: shop
    reverse: {enabled: false}
  - path: /old/
    redirect: {to: "https://new.example/n/", status: 301}
  - path: /
    upstream: app
    reverse: {enabled: true}
    redirects:
      - {match: '^/docs/(.*)\.html$', to: '/manual/$1', status: 308}
    rewrites:
      - {match: '^/product/([0-9]+)$', to: '/item?id=$1', flags: [QSA, L]}
      - {match: '^/admin/', to: '-', when: [{client: 10.0.0.0/8, negate: true}], flags: [F]}
      - {match: '^/legacy/(.*)$', to: '/new/$1', flags: [R=301]}
      - {match: '^/api/', to: '-', when: [{header: X-Version, match: '^1$'}], flags: [G]}
upstreams:
  shop: {targets: ["http://%s/shop-app/"]}
  shopnoslash: {targets: ["http://%s/shop-app"]}
  app: {targets: ["http://%s"]}
logging: {level: info, format: json}
`, listen, b.addr(), b.addr(), b.addr())
	w := peer.StartWebtier(t, peer.Build(t), listen, cfg)
	return w, b
}

func noRedirectClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestRules checks each rule as the client sees it, and what the backend
// received.
func TestRules(t *testing.T) {
	w, b := rulesWebtier(t)
	client := noRedirectClient(t)
	base := w.URL()
	tests := []struct {
		name      string
		path      string
		header    map[string]string
		status    int
		location  string
		cookie    string // the Set-Cookie the client gets, when not ""
		refresh   string
		body      string
		backendGo []string // request targets the backend received; nil: none
	}{
		{name: "remap", path: "/shop/x?q=1", status: 200, body: "/shop-app/x?q=1", backendGo: []string{"/shop-app/x?q=1"}},
		{name: "remap without trailing slash", path: "/shop?q", status: 200, body: "/shop-app?q", backendGo: []string{"/shop-app?q"}},
		{name: "remap keeps escapes", path: "/shop/a%20b%2Fc", status: 200, body: "/shop-app/a%20b%2Fc", backendGo: []string{"/shop-app/a%20b%2Fc"}},
		{name: "reverse: backend redirects to its own address", path: "/shop/login-redirect", status: 302,
			location: base + "/shop/login", cookie: "JSESSIONID=S1; Path=/shop; Domain=www.example.com; HttpOnly",
			backendGo: []string{"/shop-app/login-redirect"}},
		{name: "reverse: relative redirect", path: "/shop/relative", status: 302, location: "/shop/next",
			backendGo: []string{"/shop-app/relative"}},
		{name: "reverse off", path: "/off/login-redirect", status: 302, location: "http://" + b.addr() + "/shop-app/login",
			cookie: "JSESSIONID=S1; Path=/shop-app; Domain=127.0.0.61; HttpOnly", backendGo: []string{"/shop-app/login-redirect"}},
		{name: "reverse on a route without remapping", path: "/own", status: 302, location: base + "/login",
			refresh: "0; url=" + base + "/login", backendGo: []string{"/own"}},
		{name: "reverse on the answer to an upgrade request", path: "/own",
			header: map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-Websocket-Version": "13", "Sec-Websocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="},
			status: 302, location: base + "/login", backendGo: []string{"/own"}},
		{name: "redirect", path: "/old/a/b?q=1", status: 301, location: "https://new.example/n/a/b?q=1"},
		{name: "redirectmatch", path: "/docs/guide/intro.html", status: 308, location: base + "/manual/guide/intro"},
		{name: "rewrite QSA", path: "/product/42?ref=x", status: 200, body: "/item?id=42&ref=x", backendGo: []string{"/item?id=42&ref=x"}},
		{name: "rewrite F by client address", path: "/admin/users", status: 403},
		{name: "rewrite R=301", path: "/legacy/page?a=1", status: 301, location: base + "/new/page?a=1"},
		{name: "rewrite G by header", path: "/api/v", header: map[string]string{"X-Version": "1"}, status: 410},
		{name: "rewrite condition not met", path: "/api/v", header: map[string]string{"X-Version": "2"}, status: 200,
			body: "/api/v", backendGo: []string{"/api/v"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := b.mark()
			req, err := http.NewRequest("GET", base+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, body := peer.Fetch(t, client, req)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d; want %d (body %q)", resp.StatusCode, tt.status, body)
			}
			if got := resp.Header.Get("Location"); got != tt.location {
				t.Errorf("Location %q; want %q", got, tt.location)
			}
			if tt.cookie != "" {
				if got := resp.Header.Get("Set-Cookie"); got != tt.cookie {
					t.Errorf("Set-Cookie %q; want %q", got, tt.cookie)
				}
			}
			if tt.refresh != "" {
				if got := resp.Header.Get("Refresh"); got != tt.refresh {
					t.Errorf("Refresh %q; want %q", got, tt.refresh)
				}
			}
			if tt.body != "" && string(body) != tt.body {
				t.Errorf("body %q; want %q", body, tt.body)
			}
			got, _ := b.seen(mark)
			if strings.Join(got, " ") != strings.Join(tt.backendGo, " ") {
				t.Errorf("backend received %q; want %q", got, tt.backendGo)
			}
		})
	}
}

// TestAttackRemap: path attacks on a remapped route (/shop/ → /shop-app/,
// /shop → /shop-app), sent on raw sockets so that nothing normalises them
// on the way: the backend must receive only paths under the mapping, with
// every escape as it was sent, or nothing.
func TestAttackRemap(t *testing.T) {
	w, b := rulesWebtier(t)
	tests := []struct {
		name    string
		target  string
		status  int
		backend string // the request target the backend received; "": none
	}{
		{"encoded dot segments are cleaned before routing", "/shop/%2e%2e/%2e%2e/etc/passwd", 400, ""},
		{"encoded dot segments inside the route", "/shop/a/%2e%2e/b", 200, "/shop-app/b"},
		{"dot segments leave the route, not the mapping", "/shop/%2e%2e/item", 200, "/item"},
		{"encoded slash stays one segment", "/shop/..%2f..%2fmanager/html", 200, "/shop-app/..%2f..%2fmanager/html"},
		{"encoded slash in the prefix is not the prefix", "/shop%2fx", 404, ""},
		{"encoded slash in the prefix, upper case", "/shop%2Fx", 404, ""},
		{"double encoding passes as it is", "/shop/%252e%252e/%252fadmin", 200, "/shop-app/%252e%252e/%252fadmin"},
		{"path parameters", "/shop/;jsessionid=ABC/x", 200, "/shop-app/;jsessionid=ABC/x"},
		{"dot segment with parameters", "/shop/..;x=1/admin", 400, ""},
		{"prefix without slash ends inside a segment", "/shopping", 404, ""},
		{"prefix without slash, another context", "/shop-admin/", 404, ""},
		{"prefix without slash, parameters", "/shop;jsessionid=A", 200, "/shop-app;jsessionid=A"},
		{"prefix without slash, below", "/shop2/../shop/x", 200, "/shop-app/x"},
		{"backslash is escaped, not a separator", "/shop/..\\..\\admin", 200, "/shop-app/..%5C..%5Cadmin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mark := b.mark()
			c, err := net.Dial("tcp", w.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(attackRead)) //nolint:errcheck
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n", tt.target)
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("reading the answer to %q: %v", tt.target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("GET %s: status %d (%q); want %d", tt.target, resp.StatusCode, body, tt.status)
			}
			got, _ := b.seen(mark)
			want := []string{}
			if tt.backend != "" {
				want = []string{tt.backend}
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("GET %s: backend received %q; want %q", tt.target, got, want)
			}
		})
	}
}

// TestRulesAJPRemap: a remapped ajp:// target (/echo → /echo.jsp), and a
// Tomcat that answers it: echo.jsp reports the request URI it got.
func TestRulesAJPRemap(t *testing.T) {
	tc := startTomcat(t, peer.TomcatOptions{})
	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners: [{address: %q}]
routes:
  - {path: /echo, upstream: tomcat}
upstreams:
  tomcat:
    ajp: {secret: %q}
    targets: ["ajp://%s/echo.jsp"]
logging: {level: info, format: json}
`, listen, tc.Secret(), tc.AJPAddr())
	w := peer.StartWebtier(t, peer.Build(t), listen, cfg)
	client := noRedirectClient(t)
	resp, body := peer.Fetch(t, client, newRequest(t, "GET", w.URL()+"/echo?a=1", nil))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d; want 200 (body %q)", resp.StatusCode, body)
	}
	var echo struct {
		RequestURI  string  `json:"requestURI"`
		QueryString *string `json:"queryString"`
	}
	if err := json.Unmarshal(body, &echo); err != nil {
		t.Fatalf("echo.jsp: %v: %q", err, body)
	}
	if echo.RequestURI != "/echo.jsp" || echo.QueryString == nil || *echo.QueryString != "a=1" {
		t.Errorf("Tomcat got %q with query %v; want /echo.jsp with a=1", echo.RequestURI, echo.QueryString)
	}
	resp, body = peer.Fetch(t, client, newRequest(t, "GET", w.URL()+"/echoes", nil))
	if resp.StatusCode != 404 || strings.Contains(string(body), "requestURI") {
		t.Errorf("/echoes: status %d (%q); want webtier's 404, nothing forwarded", resp.StatusCode, body)
	}
}
