package ajp

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
//
// A connection just taken from the pool is checked in the same callback,
// right before the write: one non-blocking peek (see fit).
func (pc *persistConn) sendAwait(p []byte) (int, error) {
	raw := pc.Probe.Raw(pc.conn)
	if raw == nil {
		return pc.write(p)
	}
	if pc.sendFn == nil {
		pc.sendFn = pc.send
	}
	pc.out, pc.sent, pc.sentN, pc.sendErr = p, false, 0, nil
	err := raw.Read(pc.sendFn)
	pc.out = nil
	if err != nil && !pc.sent {
		// The wait could not start (closed, or a deadline already past):
		// write as usual, so the error is the one a plain write gets.
		return pc.write(p)
	}
	// A wait that ended in an error (deadline, close) is found again by
	// the caller's read.
	return pc.sentN, pc.sendErr
}

// send is sendAwait's callback: the first call checks a pooled
// connection, writes and asks the runtime to wait for readability
// (false), the next one ends the wait. The write goes through the
// net.Conn, which takes the write lock and waits for room in the socket
// buffer if it must.
func (pc *persistConn) send(fd uintptr) bool {
	if pc.sent {
		return true
	}
	pc.sent = true
	if pc.Unchecked {
		pc.Unchecked = false
		if !pc.Probe.Fit(pc.Probe.Look(fd), pc.t.o.OnUnsolicited) {
			pc.sendErr = errStale
			return true
		}
	}
	pc.sentN, pc.sendErr = pc.conn.Write(pc.out)
	return pc.sendErr != nil
}
