//go:build !linux

package h1

// flushAwait writes the buffered request; the caller's read waits for the
// response. A connection taken from the pool is checked by the write
// (persistConn.Write).
func (pc *persistConn) flushAwait() error { return pc.bw.Flush() }
