// Package sdnotify tells systemd how the service is doing, for units of
// Type=notify: READY=1 once webtier listens (so that units ordered after it,
// and systemctl start, wait for a proxy that accepts connections),
// RELOADING=1 and READY=1 around a reload, STOPPING=1 when it starts to stop.
//
// The protocol is one datagram of newline-separated VAR=value lines sent to
// the unix socket named by $NOTIFY_SOCKET (sd_notify(3)); a name that starts
// with '@' is in the abstract namespace, which Go's net package handles. When
// the variable is unset (not run by systemd, or not Type=notify), every call
// does nothing, so the same binary runs in a container or a terminal.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notifier sends states to the socket it was made for. Its zero value sends
// nothing. It is safe for concurrent use: each send is one datagram on a
// socket of its own.
type Notifier struct {
	socket string // $NOTIFY_SOCKET; "" sends nothing
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or the zero Notifier when
// it is unset.
func FromEnv() Notifier {
	return Notifier{socket: os.Getenv("NOTIFY_SOCKET")}
}

// Enabled reports whether n sends anything.
func (n Notifier) Enabled() bool { return n.socket != "" }

// Ready says the service is up: listening, or done reloading.
func (n Notifier) Ready() error { return n.Send("READY=1") }

// Reloading says a reload has started. systemd wants the CLOCK_MONOTONIC
// time with it (MONOTONIC_USEC) to tell this reload from an earlier one;
// Ready ends it.
func (n Notifier) Reloading() error {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return fmt.Errorf("sdnotify: reading the monotonic clock: %w", err)
	}
	usec := ts.Nano() / int64(time.Microsecond)
	return n.Send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", usec))
}

// Stopping says the service has begun to stop (a drain may follow), so
// that systemctl shows "deactivating" at once.
func (n Notifier) Stopping() error { return n.Send("STOPPING=1") }

// Send sends state, one or more VAR=value lines, as one datagram.
func (n Notifier) Send(state string) error {
	if n.socket == "" {
		return nil
	}
	if strings.TrimSpace(state) == "" {
		return fmt.Errorf("sdnotify: empty state")
	}
	addr := &net.UnixAddr{Name: n.socket, Net: "unixgram"}
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sdnotify: connecting to NOTIFY_SOCKET %s: %w", n.socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sdnotify: sending %q to %s: %w", firstLine(state), n.socket, err)
	}
	return nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
