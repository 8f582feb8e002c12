//go:build unix

package frontend

import (
	"errors"
	"io"
	"syscall"

	"golang.org/x/sys/unix"
)

// peekProxy copies the connection's first bytes into buf without
// consuming them (MSG_PEEK). Without wait it returns what is there now
// (EAGAIN: nothing yet); with wait it waits, within the connection's read
// deadline, until they frame a whole PROXY header or show there is none
// (frameProxy).
func peekProxy(rc syscall.RawConn, buf []byte, wait bool) (n int, err error) {
	rerr := rc.Read(func(fd uintptr) bool {
		for {
			m, _, e := unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
			switch {
			case e == unix.EINTR:
				continue
			case e == unix.EAGAIN && wait:
				return false
			case e != nil:
				err = e
				return true
			case m == 0:
				err = io.EOF
				return true
			}
			n = m
			if !wait {
				return true
			}
			_, ferr := frameProxy(buf[:m], m == len(buf))
			// Incomplete: wait for the next bytes (the runtime's
			// poller wakes on each arrival).
			return !errors.Is(ferr, errProxyIncomplete)
		}
	})
	if err == nil {
		err = rerr
	}
	return n, err
}
