package proxy

import (
	"testing"

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
	ro.Reverse = rewrite.ReverseOptions{Enabled: true, Backends: []string{"127.0.0.1:80"}}
	benchServeHTTP(b, Options{Routes: []RouteOptions{{PathPrefix: prefix, Upstream: "app", Rewrite: rewrite.New(ro)}}})
}
