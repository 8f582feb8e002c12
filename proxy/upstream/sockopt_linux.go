package upstream

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// userTimeoutControl sets TCP_USER_TIMEOUT on backend connections: if sent
// bytes stay unacknowledged this long, the kernel breaks the connection.
// A backend that vanished (a black-holed ELB node) never acknowledges, so a
// request on a pooled connection to it fails after d instead of hanging
// until the response timeout; a live but slow backend acknowledges at once
// and is not affected.
func userTimeoutControl(d time.Duration) func(network, address string, c syscall.RawConn) error {
	ms := int(d / time.Millisecond)
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
		})
		if err != nil {
			return err
		}
		return serr
	}
}
