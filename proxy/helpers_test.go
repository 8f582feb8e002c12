package proxy

import (
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The listeners (webtier's own HTTP/1 server, TLS, HTTP/2) are tested in
// proxy/frontend; these helpers serve a Handler's first front with
// net/http's test server, for tests of what the Handler itself does.

func target(t *testing.T, srv *httptest.Server) TargetOptions {
	t.Helper()
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	return TargetOptions{Scheme: "http", Host: u.Hostname(), Port: uint16(port), Weight: 1}
}

func oneUpstream(t *testing.T, backend *httptest.Server, mod func(*UpstreamOptions)) Options {
	t.Helper()
	uo := UpstreamOptions{Name: "app", Targets: []TargetOptions{target(t, backend)}}
	if mod != nil {
		mod(&uo)
	}
	return Options{
		Routes:    []RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []UpstreamOptions{uo},
	}
}

// startProxy serves a Handler for opts (its first listener's front) on
// net/http's test server and returns its URL and the Handler's log.
func startProxy(t *testing.T, opts Options) (string, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	if len(opts.Listeners) == 0 {
		opts.Listeners = []ListenerOptions{{Name: "test"}}
	}
	h, err := NewHandler(opts, nil, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	srv := httptest.NewServer(h.Front(0))
	t.Cleanup(srv.Close)
	return srv.URL, logs
}
