package sdnotify

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen opens a unixgram socket as systemd's notification socket and
// returns its name for NOTIFY_SOCKET. Socket paths are limited to 108
// bytes, so it lives in a short temporary directory, not t.TempDir.
func listen(t *testing.T) (name string, conn *net.UnixConn) {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	name = filepath.Join(dir, "notify")
	conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return name, conn
}

// receive reads one datagram, as systemd does.
func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram on the notification socket: %v", err)
	}
	return string(buf[:n])
}

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestStates(t *testing.T) {
	name, conn := listen(t)
	t.Setenv("NOTIFY_SOCKET", name)
	n := FromEnv()
	if !n.Enabled() {
		t.Fatal("FromEnv with NOTIFY_SOCKET set is not enabled")
	}
	for _, tc := range []struct {
		name string
		send func() error
		want string
	}{
		{name: "ready", send: n.Ready, want: "READY=1"},
		{name: "stopping", send: n.Stopping, want: "STOPPING=1"},
		{name: "status", send: func() error { return n.Send("STATUS=draining\nREADY=1") }, want: "STATUS=draining\nREADY=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.send(); err != nil {
				t.Fatal(err)
			}
			if got := receive(t, conn); got != tc.want {
				t.Errorf("datagram = %q; want %q", got, tc.want)
			}
		})
	}
}

// RELOADING=1 carries the monotonic time at which the reload began, which
// systemd (Type=notify-reload) compares with the time it asked for one.
func TestReloadingCarriesMonotonicTime(t *testing.T) {
	name, conn := listen(t)
	n := Notifier{socket: name}
	before := monotonicUsec(t)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	got := receive(t, conn)
	lines := strings.Split(got, "\n")
	if len(lines) != 2 || lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[1], "MONOTONIC_USEC=") {
		t.Fatalf("datagram = %q; want RELOADING=1 then MONOTONIC_USEC=N", got)
	}
	usec, err := strconv.ParseInt(strings.TrimPrefix(lines[1], "MONOTONIC_USEC="), 10, 64)
	if err != nil {
		t.Fatalf("MONOTONIC_USEC in %q: %v", got, err)
	}
	if usec < before || usec > after {
		t.Errorf("MONOTONIC_USEC = %d; want between %d and %d (CLOCK_MONOTONIC in µs)", usec, before, after)
	}
}

// systemd may hand out an abstract socket ("@name").
func TestAbstractSocket(t *testing.T) {
	name := fmt.Sprintf("@webtier-sdnotify-test-%d", os.Getpid())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := (Notifier{socket: name}).Ready(); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != "READY=1" {
		t.Errorf("datagram = %q; want READY=1", got)
	}
}

// Without NOTIFY_SOCKET (a terminal, a container, Type=simple) nothing is
// sent and nothing fails.
func TestUnsetSendsNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	n := FromEnv()
	if n.Enabled() {
		t.Fatal("FromEnv without NOTIFY_SOCKET is enabled")
	}
	for _, send := range []func() error{n.Ready, n.Reloading, n.Stopping} {
		if err := send(); err != nil {
			t.Errorf("send without NOTIFY_SOCKET: %v; want nil", err)
		}
	}
}

// A socket that is gone is an error naming it, for the log.
func TestMissingSocket(t *testing.T) {
	name := filepath.Join(os.TempDir(), fmt.Sprintf("webtier-no-such-socket-%d", os.Getpid()))
	err := Notifier{socket: name}.Ready()
	if err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("Ready to a missing socket: %v; want an error naming %s", err, name)
	}
}
