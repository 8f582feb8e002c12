package config

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/webtier/webtier/proxy/rules/rewrite"
)

// TestRewriteRules: the route rules config builds from the keys behave as
// README says: remapping from the target path, reverse on by default for a remapped route (off
// when asked, and on when asked for a plain one), redirect without upstream, redirects and rewrites.
func TestRewriteRules(t *testing.T) {
	cfg, err := Parse("webtier.yaml", []byte(`listeners: [{address: ":8080"}]
routes:
  - path: /shop/
    upstream: shop
    reverse: {cookie_domain: {tomcat.internal: www.example.com}}
  - path: /plain/
    upstream: app
  - path: /off/
    upstream: shop
    reverse: {enabled: false}
  - path: /old/
    redirect: {to: "https://new.example/", status: 301}
  - path: /
    upstream: app
    redirects: [{match: '^/docs/(.*)$', to: '/manual/$1'}]
    rewrites:
      - match: '^/p/([0-9]+)$'
        to: '/item?id=$1'
        flags: [QSA, L]
        when: [{method: '^GET$'}, {client: 127.0.0.1, negate: true}]
  - path: /on/
    upstream: app
    reverse: {enabled: true}
upstreams:
  app: {targets: [http://10.0.0.5:8080/]}
  shop: {targets: [http://tomcat.internal:8080/shop-app/, "http://10.0.0.9:8080/shop-app/"]}
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := func(i int) *rewrite.Rules { return cfg.Proxy.Routes[i].Rewrite }
	if got, ok := rs(0).Remap("/shop/a%2Fb?"); !ok || got != "/shop-app/a%2Fb?" {
		t.Errorf("shop remap: %q %v", got, ok)
	}
	if rs(1) != nil {
		t.Error("a route without rules (target path \"/\", reverse not enabled) has rules; want none, so that it costs a nil check")
	}
	if rs(4).Remaps() || rs(5).Remaps() {
		t.Error(`a target path "/" remaps; want no remapping, as before`)
	}
	if cfg.Proxy.Routes[3].Upstream != "" || !rs(3).AnswersAll() {
		t.Error("the redirect route: want no upstream and every request answered")
	}
	r := httptest.NewRequest("GET", "http://www.example.com/shop/", nil)
	for _, tt := range []struct {
		route     int
		field, in string
		want      string
	}{
		{0, "Location", "http://tomcat.internal:8080/shop-app/x", "http://www.example.com/shop/x"},
		{0, "Set-Cookie", "a=1; Domain=tomcat.internal; Path=/shop-app", "a=1; Domain=www.example.com; Path=/shop"},
		{5, "Location", "http://10.0.0.5:8080/login", "http://www.example.com/login"},
		{2, "Location", "http://tomcat.internal:8080/shop-app/x", "http://tomcat.internal:8080/shop-app/x"},
	} {
		h := http.Header{tt.field: {tt.in}}
		rs(tt.route).Response(h, "10.0.0.9:8080", rewrite.Client{R: r})
		if got := h.Get(tt.field); got != tt.want {
			t.Errorf("route %d %s %q: %q; want %q", tt.route, tt.field, tt.in, got, tt.want)
		}
	}
	w := httptest.NewRecorder()
	r = httptest.NewRequest("GET", "http://www.example.com/p/7?x=1", nil)
	r.RemoteAddr = "192.0.2.1:5000"
	res := rs(4).Request(w, rewrite.Client{R: r}, "/p/7")
	if res.Answered || res.Path != "/item" || res.Query != "id=7&x=1" {
		t.Errorf("rewrite: %+v", res)
	}
	w = httptest.NewRecorder()
	res = rs(4).Request(w, rewrite.Client{R: r}, "/docs/a")
	if !res.Answered || w.Code != 302 || w.Header().Get("Location") != "http://www.example.com/manual/a?x=1" {
		t.Errorf("redirects: %d %q", w.Code, w.Header().Get("Location"))
	}
}

// TestRewriteConditionOr: or: true joins a condition with the next, as
// RewriteCond's [OR]: (host www or method POST) and query v=1.
func TestRewriteConditionOr(t *testing.T) {
	cfg, err := Parse("webtier.yaml", []byte(`listeners: [{address: ":8080"}]
routes:
  - path: /
    upstream: app
    rewrites:
      - match: '.'
        to: '-'
        flags: [F]
        when: [{host: '^www\.', or: true}, {method: '^POST$'}, {query: '^v=1$'}]
upstreams:
  app: {targets: [http://10.0.0.5:8080/]}
`))
	if err != nil {
		t.Fatal(err)
	}
	rs := cfg.Proxy.Routes[0].Rewrite
	for _, tt := range []struct {
		method, url string
		want        int // 0: forwarded
	}{
		{"GET", "http://www.example.com/x?v=1", 403},
		{"POST", "http://api.example.com/x?v=1", 403},
		{"GET", "http://api.example.com/x?v=1", 0},
		{"POST", "http://www.example.com/x?v=2", 0},
	} {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(tt.method, tt.url, nil)
		res := rs.Request(w, rewrite.Client{R: r}, r.URL.EscapedPath())
		got := 0
		if res.Answered {
			got = w.Code
		}
		if got != tt.want {
			t.Errorf("%s %s: %d; want %d (0: forwarded)", tt.method, tt.url, got, tt.want)
		}
	}
}
