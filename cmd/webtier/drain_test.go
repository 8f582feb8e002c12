package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/frontend"
)

// drainProcess runs a frontend.Server with stopOnSignals, as runProxy does,
// with a drain wait longer than any test: what ends the wait is a signal.
type drainProcess struct {
	srv    *frontend.Server
	health string
	term   chan os.Signal
	served chan error // Serve's result
}

func startDrainProcess(t *testing.T) *drainProcess {
	t.Helper()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(backend.Close)
	u, _ := url.Parse(backend.URL)
	port, _ := strconv.Atoi(u.Port())
	opts := proxy.Options{
		Listeners: []proxy.ListenerOptions{{Name: "http", Address: "127.0.0.1:0", HealthPath: proxy.DefaultHealthPath}},
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: uint16(port), Weight: 1}}}},
		Drain:     proxy.DrainOptions{Wait: time.Hour},
	}
	srv, err := frontend.NewServer(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	p := &drainProcess{srv: srv, health: "http://" + srv.Addrs()[0].String() + proxy.DefaultHealthPath,
		term: make(chan os.Signal, 2), served: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		stopOnSignals(ctx, p.term, srv, zap.NewNop(), nil)
	}()
	go func() { p.served <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-stopped
	})
	return p
}

func (p *drainProcess) healthStatus(t *testing.T) int {
	t.Helper()
	resp, err := http.Get(p.health)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitHealth polls the health endpoint until it answers want (the drain
// starts on the signal goroutine); a hang guard bounds it.
func (p *drainProcess) waitHealth(t *testing.T, want int) {
	t.Helper()
	for i := 0; p.healthStatus(t) != want; i++ {
		if i == 1000 {
			t.Fatalf("health endpoint never answered %d", want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Issue 19, drain: SIGTERM fails the health endpoint and keeps serving;
// a second SIGTERM ends the wait and Serve returns.
func TestStopOnSignals_secondSIGTERMSkipsTheWait(t *testing.T) {
	p := startDrainProcess(t)
	if got := p.healthStatus(t); got != 200 {
		t.Fatalf("health before SIGTERM: %d; want 200", got)
	}
	p.term <- syscall.SIGTERM
	p.waitHealth(t, 503)
	p.term <- syscall.SIGTERM
	if err := <-p.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// Issue 19, drain: SIGINT stops without the drain wait.
func TestStopOnSignals_SIGINTStopsAtOnce(t *testing.T) {
	p := startDrainProcess(t)
	p.term <- os.Interrupt
	if err := <-p.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if p.srv.Draining() {
		t.Error("SIGINT drained; want a stop without the wait")
	}
}

// Issue 19, undrain: Undrain during the wait keeps webtier serving, and
// the next SIGTERM drains again.
func TestStopOnSignals_undrain(t *testing.T) {
	p := startDrainProcess(t)
	p.term <- syscall.SIGTERM
	p.waitHealth(t, 503)
	if err := p.srv.Undrain(); err != nil {
		t.Fatal(err)
	}
	if got := p.healthStatus(t); got != 200 {
		t.Fatalf("health after Undrain: %d; want 200", got)
	}
	p.term <- syscall.SIGTERM
	p.waitHealth(t, 503)
	p.term <- syscall.SIGINT
	if err := <-p.served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
