package ajp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// persistConn is one connection to the backend. It is owned by exactly
// one of: the pool (t.idle), a RoundTrip/response body in progress, or
// nobody once closed.
type persistConn struct {
	t    *Transport
	conn net.Conn
	br   *bufio.Reader // holds a whole packet, so Close can drain what is buffered
	fr   *Framer
	wbuf []byte // request body packets

	uses int // requests started on this connection
	idle idlepool.Entry

	// Guard: ownership, deadlines, interruption and the reuse check,
	// shared with the h1 client. Its Probe and Unchecked, and the send
	// fields below, are used only by the goroutine that owns pc.
	backendconn.Guard

	closeOnce sync.Once

	// interruptFn is pc.Interrupt, made once: a method value passed to
	// context.AfterFunc would allocate on every request.
	interruptFn func()

	// The send callback is a method value made once: making it per call
	// would allocate.
	sendFn  func(fd uintptr) bool
	out     []byte // what send writes
	sent    bool
	sentN   int
	sendErr error
}

// errStale: a connection taken from the pool was found closed by Tomcat,
// or holding bytes nobody asked for, before anything was written to it.
// The request goes to the next pooled connection, or a new one.
var errStale = errors.New("ajp: pooled connection closed or holding unsolicited bytes")

// fit checks a connection taken from the pool: it may carry a request
// only if nothing is readable on it. Tomcat closing it while idle sends
// FIN or RST; bytes after END_RESPONSE (a broken or hostile container)
// would be read as the answer to this request, so the connection is
// dropped and they are reported.
func (pc *persistConn) fit() bool { return pc.Fit(pc.t.o.OnUnsolicited) }

// write writes p, checking a connection just taken from the pool first
// (sendAwait checks in its own callback where it can).
func (pc *persistConn) write(p []byte) (int, error) {
	if pc.Unchecked && !pc.fit() {
		return 0, errStale
	}
	return pc.conn.Write(p)
}

func newPersistConn(t *Transport, conn net.Conn) *persistConn {
	pc := &persistConn{t: t, conn: conn}
	pc.Init(conn)
	pc.interruptFn = pc.Interrupt
	pc.br = bufio.NewReaderSize(conn, t.o.PacketSize)
	pc.fr = NewFramer(conn, pc.br, t.o.PacketSize)
	t.idle.Track(pc)
	return pc
}

// IdleEntry and Close make pc an idlepool.Conn.
func (pc *persistConn) IdleEntry() *idlepool.Entry { return &pc.idle }
func (pc *persistConn) Close()                     { pc.close() }

func (pc *persistConn) close() {
	pc.closeOnce.Do(func() {
		pc.idle.StopTimer()
		pc.conn.Close()
	})
}

func (pc *persistConn) clearDeadlines() bool { return pc.SetDeadline(time.Time{}) }

// cping sends CPING and waits for CPONG, for at most timeout or until ctx
// ends. The connection stays usable on success.
func (pc *persistConn) cping(ctx context.Context, timeout time.Duration) error {
	stop := backendconn.Watch(ctx, pc.interruptFn)
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	err := pc.cpingLocked(dl)
	if !stop() || ctx.Err() != nil {
		return canceledError(ctx)
	}
	if err != nil {
		return newError(KindCPing, err,
			"Tomcat did not answer CPING with CPONG (CPING timeout %v): the port accepts connections "+
				"but the AJP connector does not work; check Tomcat's log (a Connector with "+
				"secretRequired=\"true\" and no secret fails to start but keeps its port bound)", timeout)
	}
	return nil
}

func (pc *persistConn) cpingLocked(dl time.Time) error {
	if !pc.SetDeadline(dl) {
		return errors.New("interrupted")
	}
	if err := pc.fr.WriteCPing(); err != nil {
		return err
	}
	p, err := pc.fr.ReadPacket()
	if err != nil {
		return err
	}
	if p.Type() != TypeCPong {
		return fmt.Errorf("%w: %v in answer to CPING", ErrProtocol, p.Type())
	}
	if !pc.clearDeadlines() {
		return errors.New("interrupted")
	}
	return nil
}

// isConnGone reports errors that mean the peer closed or reset the
// connection.
func isConnGone(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// persistConn is what the upstream pool's rescue and stall watch act on.
var _ interface {
	interrupt.Target
	interrupt.Staller
} = (*persistConn)(nil)
