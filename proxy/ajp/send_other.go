//go:build !linux

package ajp

// sendAwait writes p; the caller's read waits for the answer.
func (pc *persistConn) sendAwait(p []byte) (int, error) { return pc.conn.Write(p) }
