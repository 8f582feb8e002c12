// Package sdnotifytest is the service manager's side of sd_notify for
// tests: a unixgram socket, as systemd holds for a Type=notify unit, whose
// name goes in NOTIFY_SOCKET, and the datagrams sent to it.
package sdnotifytest

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Socket is a notification socket. Close it with t.Cleanup (Listen does).
type Socket struct {
	Name string // for NOTIFY_SOCKET
	conn *net.UnixConn
}

// Listen opens a Socket in a new temporary directory, removed at the end of
// the test. The directory is short on purpose: socket paths are limited to
// 108 bytes, which t.TempDir's long names can exceed.
func Listen(t testing.TB) *Socket {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return ListenAt(t, filepath.Join(dir, "notify"))
}

// ListenAt opens a Socket named name, e.g. "@name" in the abstract
// namespace; it is closed at the end of the test.
func ListenAt(t testing.TB, name string) *Socket {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Socket{Name: name, conn: conn}
}

// Next returns the next datagram, failing the test if none comes within
// 30 s; step says in the failure what was awaited.
func (s *Socket) Next(t testing.TB, step string) string {
	t.Helper()
	if err := s.conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := s.conn.Read(buf)
	if err != nil {
		t.Fatalf("%s: no notification on %s: %v", step, s.Name, err)
	}
	return string(buf[:n])
}
