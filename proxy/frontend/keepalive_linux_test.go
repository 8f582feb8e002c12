package frontend

import (
	"net"
	"syscall"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// Plain listeners accept without TCP keep-alive probes (no setsockopt per
// connection); a connection handed to net/http gets them, as Go's own
// listeners would have set them.
func TestListen_keepAliveOnlyForHandedOffConnections(t *testing.T) {
	ln, _, _, err := listen(proxy.ListenerOptions{Address: "127.0.0.1:0"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := soKeepAlive(t, c); got != 0 {
		t.Errorf("accepted connection: SO_KEEPALIVE = %d; want 0", got)
	}
	withKeepAlive(c)
	if got := soKeepAlive(t, c); got != 1 {
		t.Errorf("after withKeepAlive: SO_KEEPALIVE = %d; want 1", got)
	}
}

func soKeepAlive(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// Listeners defer accept until the client's first bytes (TCP_DEFER_ACCEPT;
// TLS listeners get the same socket).
func TestListen_deferAccept(t *testing.T) {
	ln, _, _, err := listen(proxy.ListenerOptions{Address: "127.0.0.1:0"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	})
	if gerr != nil || v == 0 {
		t.Errorf("TCP_DEFER_ACCEPT = %d, %v; want it set", v, gerr)
	}
}
