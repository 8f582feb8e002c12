package peer

import (
	"slices"
	"testing"
)

func TestConfigAddrs(t *testing.T) {
	cfg := `listeners:
  - address: "127.0.0.1:8080"
  - address: ":8443"
    tls: {cert_file: a, key_file: b}
  - {address: "[::1]:9000", redirect_https: true}
admin: {address: 127.0.0.2:9901}
upstreams:
  app:
    max_idle_per_address: 64
    targets: ["http://127.0.0.1:1"]
`
	got := configAddrs(cfg)
	want := []string{"127.0.0.1:8080", "127.0.0.1:8443", "[::1]:9000", "127.0.0.2:9901"}
	if !slices.Equal(got, want) {
		t.Errorf("configAddrs = %q; want %q", got, want)
	}
}
