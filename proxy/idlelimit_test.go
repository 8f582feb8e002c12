package proxy

import "testing"

// TestNewHandler_sharesOneIdleLimit: every upstream of a handler draws on
// one limit of idle backend connections, MaxIdleBackendConns or its
// default, so that the limit bounds the process and not each upstream.
func TestNewHandler_sharesOneIdleLimit(t *testing.T) {
	up := func(name string) UpstreamOptions {
		return UpstreamOptions{Name: name, Targets: []TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: 9, Weight: 1}}}
	}
	for _, tc := range []struct {
		set, want int
	}{{0, DefaultMaxIdleBackendConns}, {10, 10}} {
		h, err := NewHandler(Options{
			Routes:              []RouteOptions{{PathPrefix: "/", Upstream: "a"}},
			Upstreams:           []UpstreamOptions{up("a"), up("b")},
			MaxIdleBackendConns: tc.set,
		}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		a, b := h.Pool("a").Options().IdleLimit, h.Pool("b").Options().IdleLimit
		if a == nil || a != b {
			t.Errorf("MaxIdleBackendConns %d: upstreams a and b have idle limits %p and %p; want one shared", tc.set, a, b)
		} else if a.Max() != tc.want {
			t.Errorf("MaxIdleBackendConns %d: limit %d; want %d", tc.set, a.Max(), tc.want)
		}
		h.Close()
	}
}
