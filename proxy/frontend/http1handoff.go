package frontend

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// handoff gives fc, with the bytes already buffered, to the net/http
// server. It reports false if that server is shut down.
func (s *fastServer) handoff(fc *fastConn, br *bufio.Reader) bool {
	if err := fc.c.SetReadDeadline(time.Time{}); err != nil {
		return false
	}
	withKeepAlive(fc.c)
	buffered, _ := br.Peek(br.Buffered())
	rc := &replayConn{Conn: fc.c, pending: append([]byte(nil), buffered...)}
	return s.hand.give(rc)
}

// replayConn is a connection whose first bytes were already read.
type replayConn struct {
	net.Conn
	pending []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// handoffListener feeds handed-off connections to net/http's Serve.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	closed chan struct{}
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.closed:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }
