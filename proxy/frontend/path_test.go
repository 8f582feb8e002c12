package frontend

import (
	"net/http"
	"strings"
	"testing"

	"github.com/webtier/webtier/proxy"
)

// A path is routed as the backend receives it, on real sockets: the router
// picks the upstream by the cleaned path and that upstream's backend gets
// exactly that path.
func TestCleanPath_routedAsForwarded(t *testing.T) {
	public := newRawBackend(t, func(string) string { return okAnswer })
	other := newRawBackend(t, func(string) string { return okAnswer })
	opts := public.options(t)
	po := other.options(t)
	opts.Upstreams[0].Name = "public"
	po.Upstreams[0].Name = "other"
	opts.Upstreams = append(opts.Upstreams, po.Upstreams[0])
	opts.Routes = []proxy.RouteOptions{{PathPrefix: "/public/", Upstream: "public"}, {PathPrefix: "/", Upstream: "other"}}
	addr := rawProxy(t, opts, nil)
	tests := []struct {
		target  string
		backend *rawBackend // nil: 400
		line    string
	}{
		{"/public/%2e%2e/admin", other, "GET /admin HTTP/1.1"},
		{"/public/../admin", other, "GET /admin HTTP/1.1"},
		{"/%70ublic/x", public, "GET /public/x HTTP/1.1"},
		{"/public/..%2fadmin", public, "GET /public/..%2fadmin HTTP/1.1"},
		{`/public/x\/..%2fadmin`, public, "GET /public/x%5C/..%2fadmin HTTP/1.1"},
		{"/public/a/./b?q=/../", public, "GET /public/a/b?q=/../ HTTP/1.1"},
		{"/%2e%2e/admin", nil, ""},
		{"/public/..;/admin", nil, ""},
		{"/public/../../admin", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.send("GET " + tt.target + " HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, _ := c.read("GET")
			if tt.backend == nil {
				if resp.StatusCode != http.StatusBadRequest {
					t.Errorf("client got %d; want 400", resp.StatusCode)
				}
				public.noMore(t)
				other.noMore(t)
				return
			}
			line, _, _ := strings.Cut(tt.backend.head(t), "\r\n")
			if line != tt.line {
				t.Errorf("the backend received %q; want %q", line, tt.line)
			}
			public.noMore(t)
			other.noMore(t)
		})
	}
}
