package interrupt

import (
	"net"
	"syscall"
	"unsafe"
)

// StallRetransmits is how many retransmission timeouts in a row the
// kernel must have run on bytes a connection sent, none acknowledged since,
// before Unacknowledged calls the peer silent. A backend that is alive
// acknowledges within a round trip even when its application is slow, and
// a retransmission resets the count as soon as it is acknowledged: on a
// live path that lost a packet the count is 1 only for the round trip
// after the timeout. Past it, it is what a black-holed address looks like,
// about 400 ms after the request was sent on a low-latency path (a tail
// loss probe, then an RTO of at least 200 ms), far below TCP_USER_TIMEOUT.
const StallRetransmits = 1

// Unacknowledged reports whether c has sent bytes that its peer has left
// unacknowledged through StallRetransmits retransmission timeouts, from
// the kernel's TCP_INFO (one getsockopt). False for anything that is not
// a TCP socket or cannot be asked.
func Unacknowledged(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// getsockopt(TCP_INFO) by hand: the syscall package has the struct
	// but no wrapper, and this package keeps to the standard library (the
	// AJP and h1 clients import it).
	var info syscall.TCPInfo
	var errno syscall.Errno
	if err := raw.Control(func(fd uintptr) {
		size := uint32(unsafe.Sizeof(info))
		_, _, errno = syscall.Syscall6(syscall.SYS_GETSOCKOPT, fd, syscall.IPPROTO_TCP, syscall.TCP_INFO,
			uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	}); err != nil || errno != 0 {
		return false
	}
	return info.Unacked > 0 && int(info.Retransmits) >= StallRetransmits
}
