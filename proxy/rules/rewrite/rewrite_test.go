package rewrite

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"testing"
)

func TestRemap(t *testing.T) {
	tests := []struct {
		prefix, target, path string
		want                 string // "" : refused
	}{
		{"/shop/", "/shop-app/", "/shop/x", "/shop-app/x"},
		{"/shop/", "/shop-app/", "/shop/", "/shop-app/"},
		{"/shop/", "/shop-app/", "/shop/a%2Fb", "/shop-app/a%2Fb"},
		{"/shop/", "/shop-app/", "/shop/%252e%252e/x", "/shop-app/%252e%252e/x"},
		{"/shop/", "/shop-app/", "/shop/;jsessionid=A1/x", "/shop-app/;jsessionid=A1/x"},
		{"/shop/", "/shop-app/", "/shop%2Fx", ""}, // the router saw "/shop/x"
		{"/shop", "/shop-app", "/shop", "/shop-app"},
		{"/shop", "/shop-app", "/shop/x", "/shop-app/x"},
		{"/shop", "/shop-app", "/shop;jsessionid=A1", "/shop-app;jsessionid=A1"},
		{"/shop", "/shop-app", "/shopping", ""}, // not "/shop-appping"
		{"/shop", "/shop-app", "/shop-admin/", ""},
		{"/", "/app/", "/x/y", "/app/x/y"},
		{"/a b/", "/c/", "/a%20b/x", "/c/x"},
	}
	for _, tt := range tests {
		rs := New(Options{Prefix: tt.prefix, TargetPath: tt.target})
		got, ok := rs.Remap(tt.path)
		if !ok {
			got = ""
		}
		if got != tt.want {
			t.Errorf("%s → %s: Remap(%q) = %q, %v; want %q", tt.prefix, tt.target, tt.path, got, ok, tt.want)
		}
	}
}

func TestRequestRedirects(t *testing.T) {
	re := regexp.MustCompile
	tests := []struct {
		name      string
		opts      Options
		target    string // request URL
		tls       bool
		status    int // 0: not answered
		location  string
		wantPath  string
		wantQuery string
	}{
		{name: "redirect prefix", opts: Options{Prefix: "/old/", Redirect: &Redirect{To: "https://new.example/n/", Status: 301}},
			target: "/old/a/b?q=1", status: 301, location: "https://new.example/n/a/b?q=1"},
		{name: "redirect path keeps scheme and host", opts: Options{Prefix: "/old", Redirect: &Redirect{To: "/new", Status: 308}},
			target: "/old/x", tls: true, status: 308, location: "https://www.example.com/new/x"},
		{name: "redirect whole segments only", opts: Options{Prefix: "/old", Redirect: &Redirect{To: "/new", Status: 302}},
			target: "/older", wantPath: "/older"},
		{name: "redirect with query in to", opts: Options{Prefix: "/", Redirect: &Redirect{To: "/x?a=1", Status: 302}},
			target: "/p?q=2", status: 302, location: "http://www.example.com/x?a=1p"},
		{name: "redirect gone", opts: Options{Prefix: "/gone/", Redirect: &Redirect{Status: 410}},
			target: "/gone/x", status: 410},
		{name: "redirectmatch captures", opts: Options{Prefix: "/", Redirects: []RedirectMatch{
			{Match: re(`^/nomatch$`), To: "/z", Status: 301},
			{Match: re(`^/docs/(.*)\.html$`), To: "/manual/$1", Status: 303}}},
			target: "/docs/a/b.html", status: 303, location: "http://www.example.com/manual/a/b"},
		{name: "redirectmatch keeps escapes", opts: Options{Prefix: "/", Redirects: []RedirectMatch{
			{Match: re(`^/d/(.*)$`), To: "/m/$1", Status: 301}}},
			target: "/d/a%2Fb%20c", status: 301, location: "http://www.example.com/m/a%2Fb%20c"},
		{name: "redirectmatch no match", opts: Options{Prefix: "/", Redirects: []RedirectMatch{
			{Match: re(`^/d/(.*)$`), To: "/m/$1", Status: 301}}},
			target: "/e/x?k", wantPath: "/e/x", wantQuery: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := New(tt.opts)
			r := httptest.NewRequest("GET", "http://www.example.com"+tt.target, nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			res := rs.Request(w, Client{R: r}, r.URL.EscapedPath())
			if tt.status == 0 {
				if res.Answered {
					t.Fatalf("answered %d; want forwarded", w.Code)
				}
				if res.Path != tt.wantPath || res.Query != tt.wantQuery {
					t.Fatalf("path %q query %q; want %q %q", res.Path, res.Query, tt.wantPath, tt.wantQuery)
				}
				return
			}
			if !res.Answered || w.Code != tt.status {
				t.Fatalf("answered %v status %d; want %d", res.Answered, w.Code, tt.status)
			}
			if got := w.Header().Get("Location"); got != tt.location {
				t.Fatalf("Location %q; want %q", got, tt.location)
			}
		})
	}
}

func TestRequestRewrites(t *testing.T) {
	re := regexp.MustCompile
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name     string
		rules    []Rule
		target   string
		header   http.Header
		remote   string
		method   string
		status   int
		location string
		path     string
		query    string
	}{
		{name: "path and query", rules: []Rule{{Match: re(`^/product/([0-9]+)$`), To: "/item?id=$1"}},
			target: "/product/42?x=1", path: "/item", query: "id=42"},
		{name: "QSA", rules: []Rule{{Match: re(`^/product/([0-9]+)$`), To: "/item?id=$1", Flags: Flags{QSA: true}}},
			target: "/product/42?x=1", path: "/item", query: "id=42&x=1"},
		{name: "no ? keeps the query", rules: []Rule{{Match: re(`^/a/(.*)$`), To: "/b/$1"}},
			target: "/a/c?x=1", path: "/b/c", query: "x=1"},
		{name: "trailing ? drops the query", rules: []Rule{{Match: re(`^/a/(.*)$`), To: "/b/$1?"}},
			target: "/a/c?x=1", path: "/b/c", query: ""},
		{name: "rules chain without L", rules: []Rule{
			{Match: re(`^/a/(.*)$`), To: "/b/$1"}, {Match: re(`^/b/(.*)$`), To: "/c/$1"}},
			target: "/a/x", path: "/c/x"},
		{name: "L stops", rules: []Rule{
			{Match: re(`^/a/(.*)$`), To: "/b/$1", Flags: Flags{Last: true}}, {Match: re(`^/b/(.*)$`), To: "/c/$1"}},
			target: "/a/x", path: "/b/x"},
		{name: "R=301 with captures", rules: []Rule{{Match: re(`^/old/(.*)$`), To: "/new/$1", Flags: Flags{Redirect: 301}}},
			target: "/old/p?q=1", status: 301, location: "http://www.example.com/new/p?q=1"},
		{name: "R to an absolute URL", rules: []Rule{{Match: re(`^/(.*)$`), To: "https://other.example/$1", Flags: Flags{Redirect: 302}}},
			target: "/p", status: 302, location: "https://other.example/p"},
		{name: "F", rules: []Rule{{Match: re(`^/admin/`), To: "-", Flags: Flags{Forbidden: true}}},
			target: "/admin/x", status: 403},
		{name: "G", rules: []Rule{{Match: re(`^/gone`), To: "-", Flags: Flags{Gone: true}}},
			target: "/gone", status: 410},
		{name: "client outside CIDR forbidden", rules: []Rule{{Match: re(`^/admin/`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnClient, Client: netip.MustParsePrefix("10.0.0.0/8"), Negate: true}}}},
			target: "/admin/x", remote: "192.0.2.1:1000", status: 403},
		{name: "client inside CIDR passes", rules: []Rule{{Match: re(`^/admin/`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnClient, Client: netip.MustParsePrefix("10.0.0.0/8"), Negate: true}}}},
			target: "/admin/x", remote: "10.1.2.3:1000", path: "/admin/x"},
		{name: "client behind a trusted proxy is the XFF one", rules: []Rule{{Match: re(`^/admin/`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnClient, Client: netip.MustParsePrefix("10.0.0.0/8"), Negate: true}}}},
			target: "/admin/x", remote: "10.9.9.9:1000", header: http.Header{"X-Forwarded-For": {"10.0.0.1, 192.0.2.9"}}, status: 403},
		{name: "host condition and %1", rules: []Rule{{Match: re(`^/(.*)$`), To: "/%1/$1",
			When: []Condition{{On: OnHost, Match: re(`^([a-z]+)\.example\.com$`)}}}},
			target: "/x", path: "/www/x"},
		{name: "%N escaped without NE", rules: []Rule{{Match: re(`^/s$`), To: "/r?q=%1",
			When: []Condition{{On: OnHeader, Header: "X-Q", Match: re(`^(.*)$`)}}}},
			target: "/s", header: http.Header{"X-Q": {"a b&c#d"}}, path: "/r", query: "q=a%20b&c%23d"},
		{name: "%N raw with NE", rules: []Rule{{Match: re(`^/s$`), To: "/r?q=%1", Flags: Flags{NoEscape: true},
			When: []Condition{{On: OnHeader, Header: "X-Q", Match: re(`^(.*)$`)}}}},
			target: "/s", header: http.Header{"X-Q": {"a%20b"}}, path: "/r", query: "q=a%20b"},
		{name: "negated header", rules: []Rule{{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnHeader, Header: "User-Agent", Match: re(`^Mozilla`), Negate: true}}}},
			target: "/x", header: http.Header{"User-Agent": {"curl/8"}}, status: 403},
		{name: "method and query conditions", rules: []Rule{{Match: re(`^/api`), To: "-", Flags: Flags{Gone: true},
			When: []Condition{{On: OnMethod, Match: re(`^POST$`)}, {On: OnQuery, Match: re(`(^|&)v=1(&|$)`)}}}},
			target: "/api?v=1", method: "POST", status: 410},
		{name: "condition fails", rules: []Rule{{Match: re(`^/api`), To: "-", Flags: Flags{Gone: true},
			When: []Condition{{On: OnMethod, Match: re(`^POST$`)}}}},
			target: "/api", path: "/api"},
		{name: "[OR]: the first of a run holds", rules: []Rule{{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnHost, Match: re(`^www\.`), Or: true}, {On: OnMethod, Match: re(`^POST$`)}}}},
			target: "/x", status: 403},
		{name: "[OR]: the last of a run holds", rules: []Rule{{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnHost, Match: re(`^api\.`), Or: true}, {On: OnMethod, Match: re(`^POST$`)}}}},
			target: "/x", method: "POST", status: 403},
		{name: "[OR]: none of a run holds", rules: []Rule{{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnHost, Match: re(`^api\.`), Or: true}, {On: OnMethod, Match: re(`^POST$`)}}}},
			target: "/x", path: "/x"},
		{name: "[OR] run ANDed with the next condition", rules: []Rule{{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnHost, Match: re(`^www\.`), Or: true}, {On: OnMethod, Match: re(`^POST$`)}, {On: OnQuery, Match: re(`^v=1$`)}}}},
			target: "/x?v=2", path: "/x", query: "v=2"},
		{name: "[OR] run ANDed, both hold", rules: []Rule{{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true},
			When: []Condition{{On: OnHost, Match: re(`^www\.`), Or: true}, {On: OnMethod, Match: re(`^POST$`)}, {On: OnQuery, Match: re(`^v=1$`)}}}},
			target: "/x?v=1", status: 403},
		{name: "[OR]: %1 from the condition that held, not a negated one", rules: []Rule{{Match: re(`^/s$`), To: "/r/%1",
			When: []Condition{{On: OnHost, Match: re(`^(www)\.`), Negate: true, Or: true}, {On: OnHeader, Header: "X-Q", Match: re(`^(.*)$`)}}}},
			target: "/s", header: http.Header{"X-Q": {"q"}}, path: "/r/q"},
		{name: "path condition sees earlier rewrites", rules: []Rule{
			{Match: re(`^/a$`), To: "/b"},
			{Match: re(`.`), To: "-", Flags: Flags{Forbidden: true}, When: []Condition{{On: OnPath, Match: re(`^/b$`)}}}},
			target: "/a", status: 403},
		{name: "unsafe bytes in a Location are escaped", rules: []Rule{{Match: re(`^/r$`), To: "/t/%1", Flags: Flags{Redirect: 302, NoEscape: true},
			When: []Condition{{On: OnHeader, Header: "X-Q", Match: re(`^(.*)$`)}}}},
			target: "/r", header: http.Header{"X-Q": {"a\"<b>"}}, status: 302, location: "http://www.example.com/t/a%22%3Cb%3E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := New(Options{Prefix: "/", Rewrites: tt.rules})
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := httptest.NewRequest(method, "http://www.example.com"+tt.target, nil)
			if tt.remote != "" {
				r.RemoteAddr = tt.remote
			}
			for k, v := range tt.header {
				r.Header[k] = v
			}
			w := httptest.NewRecorder()
			res := rs.Request(w, Client{R: r, Trusted: trusted}, r.URL.EscapedPath())
			if tt.status != 0 {
				if !res.Answered || w.Code != tt.status {
					t.Fatalf("answered %v %d; want %d", res.Answered, w.Code, tt.status)
				}
				if got := w.Header().Get("Location"); got != tt.location {
					t.Fatalf("Location %q; want %q", got, tt.location)
				}
				return
			}
			if res.Answered {
				t.Fatalf("answered %d; want forwarded", w.Code)
			}
			if res.Path != tt.path || res.Query != tt.query {
				t.Fatalf("path %q query %q; want %q %q", res.Path, res.Query, tt.path, tt.query)
			}
		})
	}
}

func TestResponse(t *testing.T) {
	remapped := Options{Prefix: "/shop/", TargetPath: "/shop-app/", Reverse: ReverseOptions{Enabled: true,
		Backends:     []string{"tomcat.internal:8080", "app.internal:80"},
		CookieDomain: []Pair{{"tomcat.internal", "www.example.com"}}}}
	plain := Options{Prefix: "/", Reverse: ReverseOptions{Enabled: true, Backends: []string{"tomcat.internal:8080"}}}
	off := remapped
	off.Reverse.Enabled = false
	paths := Options{Prefix: "/", Reverse: ReverseOptions{Enabled: true, CookiePath: []Pair{{"/legacy/", "/"}}}}
	const addr = "10.0.0.5:8080"
	tests := []struct {
		name      string
		opts      Options
		tls       bool
		field, in string
		want      string
	}{
		{"name", remapped, false, "Location", "http://tomcat.internal:8080/shop-app/login?x=1", "http://www.example.com/shop/login?x=1"},
		{"address", remapped, true, "Location", "http://10.0.0.5:8080/shop-app/login", "https://www.example.com/shop/login"},
		{"https and upper case", remapped, true, "Location", "HTTPS://TOMCAT.internal:8080/shop-app/", "https://www.example.com/shop/"},
		{"default port omitted", remapped, false, "Location", "http://app.internal/shop-app/a", "http://www.example.com/shop/a"},
		{"other port not the backend", remapped, false, "Location", "http://tomcat.internal:9090/shop-app/a", "http://tomcat.internal:9090/shop-app/a"},
		{"another host untouched", remapped, false, "Location", "https://login.example.org/shop-app/", "https://login.example.org/shop-app/"},
		{"outside the mapping untouched", remapped, false, "Location", "http://10.0.0.5:8080/other/", "http://10.0.0.5:8080/other/"},
		{"relative path", remapped, false, "Location", "/shop-app/cart", "/shop/cart"},
		{"context root without slash", remapped, false, "Location", "/shop-app", "/shop"},
		{"context root with query", remapped, false, "Location", "http://10.0.0.5:8080/shop-app?a", "http://www.example.com/shop?a"},
		{"not a prefix of a segment", remapped, false, "Location", "/shop-apps/x", "/shop-apps/x"},
		{"content-location", remapped, false, "Content-Location", "http://10.0.0.5:8080/shop-app/a.json", "http://www.example.com/shop/a.json"},
		{"uri", remapped, false, "Uri", "http://10.0.0.5:8080/shop-app/a", "http://www.example.com/shop/a"},
		{"refresh", remapped, false, "Refresh", "5; url=http://10.0.0.5:8080/shop-app/next", "5; url=http://www.example.com/shop/next"},
		{"refresh quoted", remapped, false, "Refresh", "0;URL='/shop-app/next'", "0;URL='/shop/next'"},
		{"cookie path by default", remapped, false, "Set-Cookie", "JSESSIONID=A1; Path=/shop-app; HttpOnly", "JSESSIONID=A1; Path=/shop; HttpOnly"},
		{"cookie domain", remapped, false, "Set-Cookie", "a=1; Domain=.Tomcat.Internal; Path=/shop-app/x", "a=1; Domain=www.example.com; Path=/shop/x"},
		{"cookie elsewhere untouched", remapped, false, "Set-Cookie", "a=1; Domain=example.org; Path=/z", "a=1; Domain=example.org; Path=/z"},
		{"cookie_path map", paths, false, "Set-Cookie", "a=1; path=/legacy/x", "a=1; path=/x"},
		{"not remapped: own address", plain, false, "Location", "http://10.0.0.5:8080/login", "http://www.example.com/login"},
		{"not remapped: own name", plain, true, "Location", "http://tomcat.internal:8080/a/b?c", "https://www.example.com/a/b?c"},
		{"not remapped: relative untouched", plain, false, "Location", "/login", "/login"},
		{"off", off, false, "Location", "http://10.0.0.5:8080/shop-app/login", "http://10.0.0.5:8080/shop-app/login"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := New(tt.opts)
			r := httptest.NewRequest("GET", "http://www.example.com/shop/", nil)
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			h := http.Header{tt.field: {tt.in}}
			rs.Response(h, addr, Client{R: r})
			if got := h.Get(tt.field); got != tt.want {
				t.Fatalf("%s: %q → %q; want %q", tt.field, tt.in, got, tt.want)
			}
		})
	}
}

func TestScheme(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		remote, xfp string
		want        string
	}{
		{"10.0.0.1:1", "https", "https"},
		{"192.0.2.1:1", "https", "http"}, // a client cannot claim https
		{"10.0.0.1:1", "gopher", "http"},
		{"10.0.0.1:1", "", "http"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "http://x/", nil)
		r.RemoteAddr = tt.remote
		if tt.xfp != "" {
			r.Header.Set("X-Forwarded-Proto", tt.xfp)
		}
		if got := (Client{R: r, Trusted: trusted}).Scheme(); got != tt.want {
			t.Errorf("%s with X-Forwarded-Proto %q: %q; want %q", tt.remote, tt.xfp, got, tt.want)
		}
	}
}

// BenchmarkResponse: what reverse (on by default) adds to a response:
// "none" a typical response header without a URL field, "location" a
// redirect to the backend's own address.
func BenchmarkResponse(b *testing.B) {
	rs := New(Options{Prefix: "/", Reverse: ReverseOptions{Enabled: true, Backends: []string{"tomcat.internal:8080"}}})
	r := httptest.NewRequest("GET", "http://www.example.com/", nil)
	c := Client{R: r}
	b.Run("none", func(b *testing.B) {
		h := http.Header{"Content-Type": {"text/html"}, "Content-Length": {"100"}, "Date": {"x"}, "Server": {"Tomcat"}}
		b.ReportAllocs()
		for b.Loop() {
			rs.Response(h, "10.0.0.5:8080", c)
		}
	})
	b.Run("location", func(b *testing.B) {
		loc := []string{""}
		h := http.Header{"Location": loc, "Content-Length": {"0"}}
		b.ReportAllocs()
		for b.Loop() {
			loc[0] = "http://10.0.0.5:8080/login"
			rs.Response(h, "10.0.0.5:8080", c)
		}
	})
}
