//go:build unix

package idlepool

import "syscall"

// Look peeks at the socket fd without blocking and without consuming,
// for a caller already inside a RawConn callback of the connection (one
// system call, no second RawConn round trip). Go's sockets are
// non-blocking, so an empty socket answers EAGAIN at once.
func (p *Probe) Look(fd uintptr) Unread {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		return Nothing
	case err != nil || n <= 0:
		return Closed // EOF (no error, no byte), a reset, another error
	}
	p.n = n
	return Stray
}
