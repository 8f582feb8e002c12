package admin

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func startAdmin(t *testing.T, o Options) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "webtier_test_total", Help: "A test counter."})
	c.Add(3)
	reg.MustRegister(c)
	s, err := New(o, reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + s.Addr().String()
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestMetricsServed(t *testing.T) {
	base := startAdmin(t, Options{Address: "127.0.0.1:0"})
	code, body := get(t, base+"/metrics", "")
	if code != 200 || !strings.Contains(body, "webtier_test_total 3") {
		t.Errorf("GET /metrics: %d %q; want 200 with webtier_test_total 3", code, body)
	}
	if code, _ := get(t, base+"/other", ""); code != 404 {
		t.Errorf("GET /other: %d; want 404", code)
	}
}

func TestToken(t *testing.T) {
	base := startAdmin(t, Options{Address: "127.0.0.1:0", Token: "s3cret-token"})
	tests := []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer wrong", 401},
		{"Bearer s3cret-toke", 401},
		{"Basic s3cret-token", 401},
		{"Bearer s3cret-token", 200},
		{"bearer s3cret-token", 200},
	}
	for _, tt := range tests {
		if code, _ := get(t, base+"/metrics", tt.auth); code != tt.want {
			t.Errorf("Authorization %q: %d; want %d", tt.auth, code, tt.want)
		}
	}
}

func TestNonLoopbackNeedsToken(t *testing.T) {
	for _, addr := range []string{":9180", "0.0.0.0:9180", "10.0.0.5:9180", "[::]:9180"} {
		if _, err := New(Options{Address: addr}, prometheus.NewRegistry(), nil); err == nil {
			t.Errorf("%s without a token accepted", addr)
		}
		if _, err := New(Options{Address: addr, Token: "t"}, prometheus.NewRegistry(), nil); err != nil {
			t.Errorf("%s with a token: %v", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:9180", "[::1]:9180", "localhost:9180", "127.0.0.2:1"} {
		if _, err := New(Options{Address: addr}, prometheus.NewRegistry(), nil); err != nil {
			t.Errorf("loopback %s: %v", addr, err)
		}
	}
}

func TestOptionsHideToken(t *testing.T) {
	o := Options{Address: "x:1", Token: "s3cret"}
	for _, s := range []string{o.String(), o.GoString()} {
		if strings.Contains(s, "s3cret") {
			t.Errorf("%s shows the token", s)
		}
	}
}
