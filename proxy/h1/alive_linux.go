package h1

import "syscall"

// alive reports whether a pooled connection is still open: a non-blocking
// peek finds nothing to read. A backend that closed the connection while
// it was idle has sent FIN (the peek reads EOF) or RST (an error); bytes
// that nobody asked for make the connection unusable too. It costs one
// system call, so only requests that could not be sent again on a new
// connection pay for it.
func (pc *persistConn) alive() bool {
	if pc.raw == nil {
		sc, ok := pc.conn.(syscall.Conn)
		if !ok {
			return true
		}
		raw, err := sc.SyscallConn()
		if err != nil {
			return true
		}
		pc.raw = raw
		pc.peekFn = pc.peek
	}
	if err := pc.raw.Read(pc.peekFn); err != nil {
		return false
	}
	return pc.peekErr == syscall.EAGAIN
}

// peek is the raw read of alive: EAGAIN means nothing to read, while
// EOF (no error, no byte), a byte or another error all mean the connection
// cannot carry a request. Returning true tells the runtime not to wait.
func (pc *persistConn) peek(fd uintptr) bool {
	_, _, pc.peekErr = syscall.Recvfrom(int(fd), pc.peekBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return true
}
