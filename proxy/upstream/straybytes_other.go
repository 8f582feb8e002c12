//go:build !linux

package upstream

import "net"

// peekPending finds nothing where a socket cannot be peeked without
// blocking here; bytes the read loop takes before the request is written
// are still caught (strayConn.Read).
func peekPending(net.Conn) ([]byte, bool) { return nil, false }
