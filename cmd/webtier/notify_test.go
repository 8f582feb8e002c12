package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/internal/sdnotify"
)

// Under systemd (Type=notify) webtier says READY=1 once it listens,
// RELOADING=1 then READY=1 around a SIGHUP reload, and STOPPING=1 as soon
// as it is told to stop: what `systemctl start`, `reload` and `stop` wait
// for.
func TestServeNotifiesSystemd(t *testing.T) {
	dir, err := os.MkdirTemp("", "wtn") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	next := func(step string) string {
		t.Helper()
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%s: no notification: %v", step, err)
		}
		return string(buf[:n])
	}

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
	t.Setenv("NOTIFY_SOCKET", sock)
	hup := make(chan os.Signal, 1)
	rl := reloader{hup: hup, level: zap.NewAtomicLevel(), notify: sdnotify.FromEnv()}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, zap.NewNop(), prometheus.NewRegistry(), rl) }()

	if got := next("start"); got != "READY=1" {
		t.Fatalf("after start: %q; want READY=1", got)
	}
	hup <- syscall.SIGHUP
	if got := next("reload"); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("at SIGHUP: %q; want RELOADING=1 with MONOTONIC_USEC", got)
	}
	if got := next("reloaded"); got != "READY=1" {
		t.Fatalf("after the reload: %q; want READY=1", got)
	}
	stop()
	if got := next("stop"); got != "STOPPING=1" {
		t.Fatalf("at stop: %q; want STOPPING=1", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
