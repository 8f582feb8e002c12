package proxy

import "testing"

func TestRouter_match(t *testing.T) {
	routes := []RouteOptions{
		{Host: "", PathPrefix: "/", Upstream: "default"},
		{Host: "*", PathPrefix: "/static/", Upstream: "static"},
		{Host: "www.example.com", PathPrefix: "/", Upstream: "www"},
		{Host: "www.example.com", PathPrefix: "/api", Upstream: "api"},
		{Host: "*.example.com", PathPrefix: "/", Upstream: "wild"},
		{Host: "*.eu.example.com", PathPrefix: "/", Upstream: "eu"},
		{Host: "shop.example.com", PathPrefix: "/cart/", Upstream: "cart"},
	}
	index := map[string]int{"default": 0, "static": 1, "www": 2, "api": 3, "wild": 4, "eu": 5, "cart": 6}
	names := []string{"default", "static", "www", "api", "wild", "eu", "cart"}
	r := newRouter(routes, index)
	tests := []struct {
		host, path, want string
	}{
		{"www.example.com", "/", "www"},
		{"WWW.Example.COM:8080", "/index.html", "www"},
		{"www.example.com.", "/", "www"},
		{"www.example.com", "/api/v1", "api"},
		{"www.example.com", "/apiary", "api"}, // plain prefix, as httpd ProxyPass
		{"img.example.com", "/x", "wild"},
		{"a.b.example.com", "/x", "wild"},
		{"x.eu.example.com", "/x", "eu"},
		{"example.com", "/x", "default"}, // the wildcard needs a label in front
		{"other.test", "/static/app.js", "static"},
		{"other.test", "/x", "default"},
		{"shop.example.com", "/cart/1", "cart"},
		{"shop.example.com", "/other", "wild"}, // falls through to less specific hosts
		{"[::1]:8080", "/", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			rt := r.match(tt.host, tt.path)
			if rt == nil {
				t.Fatalf("match(%q, %q) = no route; want %s", tt.host, tt.path, tt.want)
			}
			if got := names[rt.pool]; got != tt.want {
				t.Errorf("match(%q, %q) = %s; want %s", tt.host, tt.path, got, tt.want)
			}
		})
	}
	empty := newRouter([]RouteOptions{{Host: "a.test", PathPrefix: "/", Upstream: "x"}}, map[string]int{"x": 0})
	if rt := empty.match("b.test", "/"); rt != nil {
		t.Errorf("match on an unrouted host = %+v; want nil", rt)
	}
}

func BenchmarkRouterMatch(b *testing.B) {
	r := newRouter([]RouteOptions{
		{Host: "www.example.com", PathPrefix: "/", Upstream: "a"},
		{Host: "www.example.com", PathPrefix: "/api/", Upstream: "b"},
		{PathPrefix: "/", Upstream: "c"},
	}, map[string]int{"a": 0, "b": 1, "c": 2})
	b.ReportAllocs()
	for b.Loop() {
		if r.match("www.example.com:443", "/api/users").pool != 1 {
			b.Fatal("wrong route")
		}
	}
}
