package ajp

import "syscall"

// sendAwait writes p (a Forward Request, with the first body packet if
// any) and returns once the connection has something to read, has failed,
// or its read deadline has passed, leaving the read to the caller. It
// returns what the write returns.
//
// Go's netpoller tries a read before it waits, and a read right after a
// request is written nearly always finds nothing: one system call per
// request that returns EAGAIN. Writing inside RawConn.Read's callback puts
// the write after the poller has reset its readiness state for this wait,
// so the answer cannot be missed, and waiting before the first read skips
// the empty one (the h1 client does the same, in its flushAwait).
func (pc *persistConn) sendAwait(p []byte) (int, error) {
	if pc.raw == nil && !pc.noRaw {
		pc.noRaw = true
		if sc, ok := pc.conn.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				pc.raw, pc.noRaw = raw, false
				pc.sendFn = pc.send
			}
		}
	}
	if pc.raw == nil {
		return pc.conn.Write(p)
	}
	pc.out, pc.sent, pc.sentN, pc.sendErr = p, false, 0, nil
	err := pc.raw.Read(pc.sendFn)
	pc.out = nil
	if err != nil && !pc.sent {
		// The wait could not start (closed, or a deadline already past):
		// write as usual, so the error is the one a plain write gets.
		return pc.conn.Write(p)
	}
	// A wait that ended in an error (deadline, close) is found again by
	// the caller's read.
	return pc.sentN, pc.sendErr
}

// send is sendAwait's callback: the first call writes and asks the
// runtime to wait for readability (false), the next one ends the wait.
// The write goes through the net.Conn, which takes the write lock and
// waits for room in the socket buffer if it must.
func (pc *persistConn) send(uintptr) bool {
	if pc.sent {
		return true
	}
	pc.sent = true
	pc.sentN, pc.sendErr = pc.conn.Write(pc.out)
	return pc.sendErr != nil
}
