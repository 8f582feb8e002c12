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

	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// aLongTimeAgo is a deadline in the past, set to wake a blocked read or
// write at once (net/http and miekg/dns use the same trick).
var aLongTimeAgo = time.Unix(1, 0)

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

	dmu    sync.Mutex // guards broken, owner and every deadline change
	broken bool       // a past deadline was set to interrupt it: never reuse
	owner  *exchange  // the exchange using it; nil while pooled

	closeOnce sync.Once

	// For the reuse check and sendAwait, which run only on the goroutine
	// that owns pc. The callback is a method value made once: making it
	// per call would allocate.
	probe     idlepool.Probe
	unchecked bool // taken from the pool: check before the request goes out
	sendFn    func(fd uintptr) bool
	out       []byte // what send writes
	sent      bool
	sentN     int
	sendErr   error
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
func (pc *persistConn) fit() bool {
	pc.unchecked = false
	return pc.probe.Fit(pc.probe.Check(pc.conn), pc.t.o.OnUnsolicited)
}

// write writes p, checking a connection just taken from the pool first
// (sendAwait checks in its own callback where it can).
func (pc *persistConn) write(p []byte) (int, error) {
	if pc.unchecked && !pc.fit() {
		return 0, errStale
	}
	return pc.conn.Write(p)
}

func newPersistConn(t *Transport, conn net.Conn) *persistConn {
	pc := &persistConn{t: t, conn: conn}
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

// interrupt wakes any blocked read or write and marks pc broken.
func (pc *persistConn) interrupt() {
	pc.dmu.Lock()
	pc.broken = true
	pc.conn.SetDeadline(aLongTimeAgo)
	pc.dmu.Unlock()
}

// Interrupt is interrupt, for an interrupt.Interrupt (an
// interrupt.Target).
func (pc *persistConn) Interrupt() { pc.interrupt() }

// Stalled reports whether Tomcat left the bytes sent on pc unacknowledged
// (an interrupt.Staller; see the h1 client's).
func (pc *persistConn) Stalled() bool { return interrupt.Unacknowledged(pc.conn) }

// setOwner records which exchange uses pc (nil: none).
func (pc *persistConn) setOwner(ex *exchange) {
	pc.dmu.Lock()
	pc.owner = ex
	pc.dmu.Unlock()
}

// interruptFor interrupts pc only if ex still uses it: a response body
// closed late must not break the connection after it went back to the
// pool and on to another request.
func (pc *persistConn) interruptFor(ex *exchange) {
	pc.dmu.Lock()
	if pc.owner == ex {
		pc.broken = true
		pc.conn.SetDeadline(aLongTimeAgo)
	}
	pc.dmu.Unlock()
}

// watch interrupts pc when ctx ends, until the returned stop is called.
// stop reports false if the interruption happened (or is happening).
func (pc *persistConn) watch(ctx context.Context) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, pc.interrupt)
}

// setDeadline sets the read and write deadline unless pc was interrupted;
// it reports whether it did. Guarding it keeps a late deadline change from
// undoing an interruption.
func (pc *persistConn) setDeadline(t time.Time) bool {
	pc.dmu.Lock()
	defer pc.dmu.Unlock()
	if pc.broken {
		return false
	}
	pc.conn.SetDeadline(t)
	return true
}

func (pc *persistConn) setReadDeadline(t time.Time) bool {
	pc.dmu.Lock()
	defer pc.dmu.Unlock()
	if pc.broken {
		return false
	}
	pc.conn.SetReadDeadline(t)
	return true
}

func (pc *persistConn) clearDeadlines() bool { return pc.setDeadline(time.Time{}) }

// cping sends CPING and waits for CPONG, for at most timeout or until ctx
// ends. The connection stays usable on success.
func (pc *persistConn) cping(ctx context.Context, timeout time.Duration) error {
	stop := pc.watch(ctx)
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
	if !pc.setDeadline(dl) {
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
