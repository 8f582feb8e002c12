package e2e

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// Issue 19: under systemd (deploy/systemd/webtier.service, Type=notify),
// the built binary tells the service manager, on $NOTIFY_SOCKET, READY=1
// once it listens, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
// real SIGHUP, and STOPPING=1 at SIGTERM, and exits 0. Here the test holds
// the socket systemd would.
func TestSystemdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "wtsd") // socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	next := func(step string) string {
		t.Helper()
		if err := conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%s: no notification on NOTIFY_SOCKET: %v", step, err)
		}
		return string(buf[:n])
	}

	a := peer.StartBackend(t, "127.0.0.1", "a")
	listen := peer.FreeAddr(t, "127.0.0.1")
	t.Setenv("NOTIFY_SOCKET", sock) // inherited by webtier
	w := peer.StartWebtier(t, peer.Build(t), listen, reloadConfig(listen, "upstream", a.Addr()))

	if got := next("start"); got != "READY=1" {
		t.Fatalf("at start: %q; want READY=1", got)
	}
	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := next("SIGHUP"); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("at SIGHUP: %q; want RELOADING=1 and MONOTONIC_USEC", got)
	}
	if got := next("reloaded"); got != "READY=1" {
		t.Fatalf("after the reload: %q; want READY=1", got)
	}
	w.WaitLog(t, "config reloaded")
	if err := w.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := next("SIGTERM"); got != "STOPPING=1" {
		t.Fatalf("at SIGTERM: %q; want STOPPING=1", got)
	}
	if err := w.Stop(t); err != nil {
		t.Fatalf("webtier after SIGTERM: %v; want exit 0", err)
	}
}
