//go:build !unix

package frontend

import (
	"errors"
	"syscall"
)

// peekProxy needs MSG_PEEK; proxy_protocol is refused where it is missing.
func peekProxy(syscall.RawConn, []byte, bool) (int, error) {
	return 0, errors.New("proxy_protocol needs a Unix system (MSG_PEEK)")
}
