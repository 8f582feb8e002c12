//go:build !linux

package h1

// alive cannot peek without blocking on this platform: a pooled
// connection is taken as open, and a closed one is found by the request.
func (pc *persistConn) alive() bool { return true }

// flushAwait writes the buffered request; the caller's read waits for the
// response.
func (pc *persistConn) flushAwait() error { return pc.bw.Flush() }
