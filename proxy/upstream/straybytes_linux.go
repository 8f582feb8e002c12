package upstream

import (
	"net"
	"syscall"
)

// peekPending returns up to 128 bytes waiting unread on c's socket,
// without taking them, and whether there were any.
func peekPending(c net.Conn) ([]byte, bool) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	var buf [128]byte
	n := 0
	// Control, not Read: the Transport's read loop holds the read lock
	// while it waits on the connection. MSG_DONTWAIT: only what is there
	// now counts.
	rc.Control(func(fd uintptr) { //nolint:errcheck // a failed peek finds nothing
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	if n <= 0 {
		return nil, false
	}
	return append([]byte(nil), buf[:n]...), true
}
