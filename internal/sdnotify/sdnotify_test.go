package sdnotify

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/webtier/webtier/internal/sdnotify/sdnotifytest"
)

func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}

func TestStates(t *testing.T) {
	sock := sdnotifytest.Listen(t)
	t.Setenv("NOTIFY_SOCKET", sock.Name)
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
			if got := sock.Next(t, tc.name); got != tc.want {
				t.Errorf("datagram = %q; want %q", got, tc.want)
			}
		})
	}
}

// RELOADING=1 carries the monotonic time at which the reload began, which
// systemd (Type=notify-reload) compares with the time it asked for one.
func TestReloadingCarriesMonotonicTime(t *testing.T) {
	sock := sdnotifytest.Listen(t)
	n := Notifier{socket: sock.Name}
	before := monotonicUsec(t)
	if err := n.Reloading(); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	got := sock.Next(t, "reloading")
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
	sock := sdnotifytest.ListenAt(t, fmt.Sprintf("@webtier-sdnotify-test-%d", os.Getpid()))
	if err := (Notifier{socket: sock.Name}).Ready(); err != nil {
		t.Fatal(err)
	}
	if got := sock.Next(t, "ready"); got != "READY=1" {
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
