package frontend

import "syscall"

// deferAccept sets TCP_DEFER_ACCEPT on a listening socket (nginx's
// "listen ... deferred", HAProxy's "defer-accept"): the kernel completes
// the handshake but queues the connection for accept only once its first
// bytes (a request head, a TLS ClientHello) are in, or after about a
// second without any. Then the read right after accept finds the request
// instead of EAGAIN, and the connection is not parked in the idle poller
// first: with a connection per request that is two system calls (a read
// and an epoll_ctl) fewer per request. A client that connects and sends
// nothing is accepted after the second and timed out by
// read_header_timeout as before. It is best effort: where the kernel
// refuses the option, accept works as without it.
func deferAccept(_, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, 1) //nolint:errcheck // best effort
	})
}
