//go:build !linux

package interrupt

import "net"

// StallRetransmits is unused where TCP_INFO is not read.
const StallRetransmits = 1

// Unacknowledged is always false where webtier does not read TCP_INFO:
// such a request waits for the TCP user timeout or a rescue instead.
func Unacknowledged(net.Conn) bool { return false }
