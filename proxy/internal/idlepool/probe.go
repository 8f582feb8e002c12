package idlepool

import (
	"bufio"
	"net"
	"syscall"
)

// Unread is what a Probe found on an idle connection.
type Unread uint8

const (
	// Nothing: nothing to read; the connection may carry a request.
	Nothing Unread = iota
	// Closed: the peer closed (EOF) or reset the connection, or it cannot
	// be read.
	Closed
	// Stray: bytes that no request asked for. A backend that sent more
	// than its response (a wrong Content-Length, a body on a 204, 304 or
	// HEAD response, a response split by the application) would have them
	// taken for the answer to the next request, from another client.
	Stray
)

// headLen is how many of the stray bytes a Probe keeps for the log.
const headLen = 64

// Probe looks at an idle connection, before it is reused, for anything to
// read, with one non-blocking peek that consumes nothing. Each connection
// embeds one; only the goroutine that owns the connection uses it. Its
// callback is a method value made once, so a check allocates nothing.
type Probe struct {
	raw   syscall.RawConn
	noRaw bool // the connection has no RawConn
	fn    func(fd uintptr) bool
	found Unread
	n     int // bytes in buf after Stray
	buf   [headLen]byte
}

// Raw returns c's syscall.RawConn, made once; nil if c has none (a
// wrapped net.Conn). c must be the same connection on every call.
func (p *Probe) Raw(c net.Conn) syscall.RawConn {
	if p.raw == nil && !p.noRaw {
		p.noRaw = true
		if sc, ok := c.(syscall.Conn); ok {
			if raw, err := sc.SyscallConn(); err == nil {
				p.raw, p.noRaw = raw, false
				p.fn = p.look
			}
		}
	}
	return p.raw
}

// Check peeks at c: one RawConn round trip and one system call. A
// connection without a RawConn, or on a platform that cannot peek without
// blocking, is taken as Nothing.
func (p *Probe) Check(c net.Conn) Unread {
	raw := p.Raw(c)
	if raw == nil {
		return Nothing
	}
	if err := raw.Read(p.fn); err != nil {
		return Closed // closed, or a deadline already past
	}
	return p.found
}

// look is Check's callback. Returning true tells the runtime not to wait.
func (p *Probe) look(fd uintptr) bool {
	p.found = p.Look(fd)
	return true
}

// Fit reports whether u, a check's result, lets the connection carry a
// request. For Stray it passes the first bytes seen to report, if not
// nil, before the caller drops the connection.
func (p *Probe) Fit(u Unread, report func(head []byte)) bool {
	if u == Stray && report != nil {
		report(p.Head())
	}
	return u == Nothing
}

// Head returns the first stray bytes the last Stray result saw (up to
// 64), for the log. It is valid until the next check.
func (p *Probe) Head() []byte { return p.buf[:p.n] }

// Leftover reports whether br, a connection's read buffer at the end of a
// response, holds more bytes: the connection must then not be pooled. It
// passes up to 64 of them to report, if not nil.
func Leftover(br *bufio.Reader, report func(head []byte)) bool {
	n := br.Buffered()
	if n != 0 && report != nil {
		head, _ := br.Peek(min(n, headLen))
		report(head)
	}
	return n != 0
}
