package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/internal/sdnotify"
	"github.com/webtier/webtier/internal/sdnotify/sdnotifytest"
)

// Under systemd (Type=notify) webtier says READY=1 once it listens,
// RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1 as soon
// as it is told to stop: what `systemctl start`, `reload` and `stop` wait
// for.
func TestServeNotifiesSystemd(t *testing.T) {
	sock := sdnotifytest.Listen(t)

	// The config wants a port: take a free one.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	file := filepath.Join(t.TempDir(), "webtier.yaml")
	src := `listeners:
  - address: "` + addr + `"
routes:
  - path: /
    upstream: app
upstreams:
  app:
    targets: ["http://127.0.0.1:9"]
`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(file)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", sock.Name)
	hup, term := make(chan os.Signal, 1), make(chan os.Signal, 1)
	rl := reloader{hup: hup, term: term, level: zap.NewAtomicLevel(), notify: sdnotify.FromEnv()}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zap.NewNop(), prometheus.NewRegistry(), rl) }()

	if got := sock.Next(t, "start"); got != "READY=1" {
		t.Fatalf("after start: %q; want READY=1", got)
	}
	hup <- syscall.SIGHUP
	if got := sock.Next(t, "reload"); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("at SIGHUP: %q; want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := sock.Next(t, "reloaded"); got != "READY=1" {
		t.Fatalf("after the reload: %q; want READY=1", got)
	}
	term <- syscall.SIGTERM // starts the drain: STOPPING=1 at once
	if got := sock.Next(t, "stop"); got != "STOPPING=1" {
		t.Fatalf("at SIGTERM: %q; want STOPPING=1", got)
	}
	term <- syscall.SIGTERM // a second one closes the listeners now
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
