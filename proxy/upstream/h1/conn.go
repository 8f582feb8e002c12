package h1

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/idlepool"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// aLongTimeAgo is a deadline in the past, set to wake a blocked read or
// write at once (net/http and miekg/dns use the same trick).
var aLongTimeAgo = time.Unix(1, 0)

// persistConn is one connection to the backend. It is owned by exactly
// one of: the pool (t.idle), an exchange in progress (RoundTrip, then the
// response body; a request body writer shares it, writing through bw), a
// 101 response's body, or nobody once closed.
type persistConn struct {
	t    *Transport
	conn net.Conn
	br   *bufio.Reader // reads through pc.Read; nil while pooled (see readBufs)
	bw   *bufio.Writer // writes to conn; nil while pooled

	// limit is what Read may still return while a response head is read,
	// -1 otherwise. Only the reading side touches it.
	limit int64

	idle idlepool.Entry

	// interruptFn is pc.interrupt, made once: a method value passed to
	// context.AfterFunc would allocate on every request.
	interruptFn func()

	// Guard: ownership, deadlines, interruption and the reuse check,
	// shared with the AJP client. Its Probe and Unchecked, and the send
	// fields below, are used only by the goroutine that owns pc (out of
	// the pool, no body writer yet).
	backendconn.Guard

	// The send callback is a method value made once: making it per call
	// would allocate.
	sendFn  func(fd uintptr) bool
	sent    bool
	sendErr error

	closed atomic.Bool
}

func newPersistConn(t *Transport, conn net.Conn) *persistConn {
	pc := &persistConn{t: t, conn: conn, limit: -1}
	pc.Init(conn)
	pc.attachBuffers()
	pc.interruptFn = pc.Interrupt
	t.idle.Track(pc)
	return pc
}

// readBufs and writeBufs hold the buffers of connections that are not in
// use: a pooled connection has nothing buffered either way (putIdle checks
// it), so it gives its 16 KiB and 4 KiB back while it waits, and an idle
// connection costs about a sixteenth of what it did (see README, backends).
// Reset empties a buffer before another connection uses it, so no byte
// passes from one connection to another.
var (
	readBufs  = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writeBufs = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
)

// attachBuffers gives pc its read and write buffers, for a connection that
// is new or just taken from the pool.
func (pc *persistConn) attachBuffers() {
	pc.br = readBufs.Get().(*bufio.Reader)
	pc.br.Reset(pc)
	pc.bw = writeBufs.Get().(*bufio.Writer)
	pc.bw.Reset(pc)
}

// detachBuffers gives pc's buffers back, for a connection about to be
// pooled; it reports false, keeping them, if either holds a byte (the
// connection must then be closed, not pooled). Nothing uses pc's buffers
// again until attachBuffers.
func (pc *persistConn) detachBuffers() bool {
	if pc.br.Buffered() != 0 || pc.bw.Buffered() != 0 {
		return false
	}
	pc.br.Reset(nil)
	readBufs.Put(pc.br)
	pc.bw.Reset(nil)
	writeBufs.Put(pc.bw)
	pc.br, pc.bw = nil, nil
	return true
}

// Read reads from the connection for br, enforcing limit.
func (pc *persistConn) Read(p []byte) (int, error) {
	if pc.limit < 0 {
		return pc.conn.Read(p)
	}
	if pc.limit == 0 {
		return 0, errHeadersTooLarge
	}
	if int64(len(p)) > pc.limit {
		p = p[:pc.limit]
	}
	n, err := pc.conn.Read(p)
	pc.limit -= int64(n)
	return n, err
}

// errStale: a connection taken from the pool was found closed by the
// backend, or holding bytes nobody asked for, before anything was written
// to it. The request goes to the next pooled connection, or a new one.
var errStale = errors.New("h1: pooled connection closed or holding unsolicited bytes")

// Write writes to the connection for bw. The first write after pc left
// the pool checks it first (see fit); flushAwait does the same check in
// its own callback, so a request that fits the buffer pays no second
// RawConn round trip. Here it catches a head larger than the buffer,
// which bw writes out in part before the flush.
func (pc *persistConn) Write(p []byte) (int, error) {
	if pc.Unchecked && !pc.fit() {
		return 0, errStale
	}
	return pc.conn.Write(p)
}

// fit checks a connection taken from the pool: it may carry a request
// only if nothing is readable on it. A backend that closed it while idle
// has sent FIN or RST; bytes nobody asked for (a backend that sent more
// than its response) would be read as the answer to this request, so the
// connection is dropped and they are reported.
func (pc *persistConn) fit() bool { return pc.Fit(pc.t.o.OnUnsolicited) }

// alive reports whether a pooled connection has nothing to read, without
// reporting anything (for tests).
func (pc *persistConn) alive() bool { return pc.Probe.Check(pc.conn) == idlepool.Nothing }

// IdleEntry and Close make pc an idlepool.Conn.
func (pc *persistConn) IdleEntry() *idlepool.Entry { return &pc.idle }
func (pc *persistConn) Close()                     { pc.close() }

func (pc *persistConn) close() {
	if pc.closed.CompareAndSwap(false, true) {
		pc.idle.StopTimer()
		pc.conn.Close()
	}
}

// failWrite records that reading the request body failed and interrupts
// pc: the backend waits for bytes that will never come.
func (pc *persistConn) failWrite(w *bodyWriter, err error) {
	pc.BreakWith(func() { w.srcErr = err })
}

// sourceError returns the request body error recorded by failWrite.
func (pc *persistConn) sourceError(w *bodyWriter) (err error) {
	pc.Locked(func() { err = w.srcErr })
	return err
}

// persistConn is what the upstream pool's rescue and stall watch act on.
var _ interface {
	interrupt.Target
	interrupt.Staller
} = (*persistConn)(nil)
