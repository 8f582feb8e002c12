package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/rules/rewrite"
)

// BenchmarkServeHTTPRules is BenchmarkServeHTTP/plain with the rules
// config gives a route: "reverse_default" is a route config loads without
// any rule written (ProxyPassReverse on, nothing to rewrite in the
// response), "remap" a route remapped /app/ → /app-v2/ whose responses
// pass reverse's checks.
func BenchmarkServeHTTPRewrites(b *testing.B) {
	b.Run("reverse_default", func(b *testing.B) {
		benchServeHTTPRules(b, "/", rewrite.Options{Prefix: "/"})
	})
	b.Run("remap", func(b *testing.B) {
		benchServeHTTPRules(b, "/app/", rewrite.Options{Prefix: "/app/", TargetPath: "/app-v2/"})
	})
}

func benchServeHTTPRules(b *testing.B, prefix string, ro rewrite.Options) {
	port := benchBackend(b)
	ro.Reverse = rewrite.ReverseOptions{Enabled: true, Backends: []string{"127.0.0.1:80"}}
	opts := Options{
		Listeners: []ListenerOptions{{Name: "bench", Address: "127.0.0.1:0"}},
		Routes:    []RouteOptions{{PathPrefix: prefix, Upstream: "app", Rewrite: rewrite.New(ro)}},
		Upstreams: []UpstreamOptions{{Name: "app", Targets: []TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: port}}}},
	}
	h, err := NewHandler(opts, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	req := httptest.NewRequest("GET", "http://example.com/app/page?x=1", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	req.Header.Set("User-Agent", "bench/1")
	req.Header.Set("Referer", "http://example.com/")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}
