package e2e

import (
	"strings"
	"syscall"
	"testing"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/internal/sdnotify/sdnotifytest"
)

// Issue 19: under systemd (deploy/systemd/webtier.service, Type=notify),
// the built binary tells the service manager, on $NOTIFY_SOCKET, READY=1
// once it listens, RELOADING=1 (with MONOTONIC_USEC) then READY=1 around a
// real SIGHUP, and STOPPING=1 at SIGTERM, and exits 0. Here the test holds
// the socket systemd would.
func TestSystemdNotify(t *testing.T) {
	sock := sdnotifytest.Listen(t)

	a := peer.StartBackend(t, "127.0.0.1", "a")
	listen := peer.FreeAddr(t, "127.0.0.1")
	t.Setenv("NOTIFY_SOCKET", sock.Name) // inherited by webtier
	w := peer.StartWebtier(t, peer.Build(t), listen, reloadConfig(listen, "upstream", a.Addr()))

	if got := sock.Next(t, "start"); got != "READY=1" {
		t.Fatalf("at start: %q; want READY=1", got)
	}
	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if got := sock.Next(t, "SIGHUP"); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Fatalf("at SIGHUP: %q; want RELOADING=1 and MONOTONIC_USEC", got)
	}
	if got := sock.Next(t, "reloaded"); got != "READY=1" {
		t.Fatalf("after the reload: %q; want READY=1", got)
	}
	w.WaitLog(t, "config reloaded")
	if err := w.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := sock.Next(t, "SIGTERM"); got != "STOPPING=1" {
		t.Fatalf("at SIGTERM: %q; want STOPPING=1", got)
	}
	if err := w.Stop(t); err != nil {
		t.Fatalf("webtier after SIGTERM: %v; want exit 0", err)
	}
}
