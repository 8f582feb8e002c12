//go:build !linux

package ajp

// sendAwait writes p, checking a pooled connection first; the caller's
// read waits for the answer.
func (pc *persistConn) sendAwait(p []byte) (int, error) { return pc.write(p) }
