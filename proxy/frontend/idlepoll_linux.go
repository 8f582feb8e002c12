package frontend

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// idlePoller parks idle keep-alive connections in an epoll set of its own,
// so that an idle connection costs its socket and a small struct: no
// goroutine, no stack, no buffer (HAProxy and nginx park them the same
// way). When the client sends its next request, the poller hands the
// connection to a worker.
//
// The epoll descriptor is itself registered with Go's network poller (an
// epoll set is readable when it has events), so the poller goroutine
// sleeps like any other reader: no thread is blocked in epoll_wait.
//
// Registration is edge-triggered and lasts as long as the connection: an
// edge that comes while a worker has the connection sets its pending flag
// instead (see fastConn.park).
type idlePoller struct {
	epfd int
	file *os.File
	rc   syscall.RawConn

	mu    sync.Mutex                                 // serialises add and remove
	conns atomic.Pointer[[]atomic.Pointer[fastConn]] // by file descriptor; grows, never shrinks
	gen   atomic.Uint32                              // tells a reused descriptor's events from the old ones

	events [128]syscall.EpollEvent
	ready  func(*fastConn) // runs a connection that became readable
}

func newIdlePoller(ready func(*fastConn)) (*idlePoller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("proxy: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("proxy: epoll set non-blocking: %w", err)
	}
	f := os.NewFile(uintptr(epfd), "idle-connections-epoll")
	// Only a descriptor Go's poller took can have a deadline; without it
	// the poller goroutine could not sleep on the set.
	if err := f.SetReadDeadline(time.Time{}); err != nil {
		f.Close()
		return nil, fmt.Errorf("proxy: epoll descriptor is not pollable: %w", err)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("proxy: epoll descriptor: %w", err)
	}
	p := &idlePoller{epfd: epfd, file: f, rc: rc, ready: ready}
	empty := make([]atomic.Pointer[fastConn], 0)
	p.conns.Store(&empty)
	return p, nil
}

// run delivers readable connections until close.
func (p *idlePoller) run() {
	// f returns false to sleep until the epoll set has events again; it
	// returns true only when the set is gone.
	f := func(uintptr) bool {
		for {
			n, err := syscall.EpollWait(p.epfd, p.events[:], 0)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return true
			}
			for i := range n {
				p.deliver(&p.events[i])
			}
			if n < len(p.events) {
				return false
			}
		}
	}
	// It returns when the epoll set is closed (an error) or failed (f
	// returned true).
	p.rc.Read(f) //nolint:errcheck // either way the poller is done
}

func (p *idlePoller) deliver(ev *syscall.EpollEvent) {
	conns := *p.conns.Load()
	fd := int(ev.Fd)
	if fd < 0 || fd >= len(conns) {
		return
	}
	fc := conns[fd].Load()
	if fc == nil || uint32(ev.Pad) != fc.gen {
		return // an event of a connection that is gone
	}
	if !p.take(fc) {
		return
	}
	if ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && p.gone(fc) {
		// The client closed without a new request: close here rather
		// than wake a worker (clients that leave together would
		// otherwise start a worker each).
		fc.close()
		return
	}
	p.ready(fc)
}

// take makes an idle connection that became readable the poller's to
// dispatch. If a worker has it, take sets its pending flag for park
// instead, and reports false. The worker may park between the failed
// swap and the flag (then park does not see the flag and the connection
// waits for an edge that has come already): so after setting the flag,
// take looks again and takes the connection if it went idle.
func (p *idlePoller) take(fc *fastConn) bool {
	for {
		if fc.state.CompareAndSwap(connIdle, connActive) {
			fc.pending.Store(false) // this edge is being served
			return true
		}
		if fc.state.Load() != connActive {
			return false // closed
		}
		fc.pending.Store(true)
		if fc.state.Load() == connActive {
			// Still the worker's: its park checks the flag after
			// making the connection idle, so the edge is not lost.
			return false
		}
	}
}

// gone reports whether a connection that signalled a hang-up has no
// request waiting (a client may half-close after sending one).
func (p *idlePoller) gone(fc *fastConn) bool {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(fc.fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return false
		case err != nil:
			return true
		}
		return n == 0
	}
}

// add registers a connection for the rest of its life.
func (p *idlePoller) add(fc *fastConn) error {
	fc.gen = p.gen.Add(1)
	p.mu.Lock()
	conns := *p.conns.Load()
	if fc.fd >= len(conns) {
		grown := make([]atomic.Pointer[fastConn], max(2*len(conns), fc.fd+1, 64))
		for i := range conns {
			grown[i].Store(conns[i].Load())
		}
		conns = grown
		p.conns.Store(&conns)
	}
	conns[fc.fd].Store(fc)
	p.mu.Unlock()
	return p.ctl(syscall.EPOLL_CTL_ADD, fc)
}

// remove forgets a connection before its descriptor is closed (a closed
// descriptor leaves the epoll set by itself; the table entry must go).
func (p *idlePoller) remove(fc *fastConn) {
	p.mu.Lock()
	conns := *p.conns.Load()
	if fc.fd < len(conns) {
		conns[fc.fd].CompareAndSwap(fc, nil)
	}
	p.mu.Unlock()
}

// unregister takes a connection that stays open out of the epoll set (one
// handed to net/http), so that its traffic wakes nobody here.
func (p *idlePoller) unregister(fc *fastConn) {
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fc.fd, nil) //nolint:errcheck // not registered is fine
}

func (p *idlePoller) ctl(op int, fc *fastConn) error {
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | -syscall.EPOLLET,
		Fd:     int32(fc.fd),
		Pad:    int32(fc.gen),
	}
	if err := syscall.EpollCtl(p.epfd, op, fc.fd, &ev); err != nil {
		return fmt.Errorf("proxy: epoll_ctl: %w", err)
	}
	return nil
}

func (p *idlePoller) close() error { return p.file.Close() }

// connFD returns the descriptor of a connection's socket.
func connFD(rc syscall.RawConn) (int, error) {
	fd := -1
	if err := rc.Control(func(s uintptr) { fd = int(s) }); err != nil {
		return -1, err
	}
	if fd < 0 {
		return -1, errors.New("proxy: no descriptor")
	}
	return fd, nil
}

// errNotReady: a new connection's first read found no data yet.
var errNotReady = errors.New("proxy: no request yet")

// rawReader reads once from a socket without waiting: errNotReady when
// there is nothing to read yet (the connection then goes to the poller).
// A worker keeps one, so that the function handed to RawConn.Read is made
// once, not per read.
type rawReader struct {
	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (r *rawReader) readFD(fd uintptr) bool {
	for {
		r.n, r.err = syscall.Read(int(fd), r.p)
		if r.err != syscall.EINTR {
			return true // never wait: report what one read found
		}
	}
}

func (r *rawReader) read(rc syscall.RawConn, p []byte) (int, error) {
	if r.fn == nil {
		r.fn = r.readFD
	}
	r.p = p
	rerr := rc.Read(r.fn)
	n, err := r.n, r.err
	r.p, r.n, r.err = nil, 0, nil
	switch {
	case rerr != nil:
		return 0, rerr
	case err == syscall.EAGAIN:
		return 0, errNotReady
	case err != nil:
		return 0, os.NewSyscallError("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// rawWriter writes responses to a client socket. It puts the write
// timeout on the socket only when a write cannot complete at once (the
// socket buffer is full: the client is not reading as fast as the
// response comes), so a response the buffer takes costs no timer
// operation. The timeout counts from the last progress, as nginx's
// send_timeout: each wait that follows some bytes written starts it again.
// A worker keeps one, so that the function handed to RawConn.Write is made
// once, not per write.
type rawWriter struct {
	c        net.Conn
	rc       syscall.RawConn
	timeout  time.Duration
	armed    bool // a write deadline is on the socket
	progress bool // bytes written since it was set

	p   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (w *rawWriter) reset(c net.Conn, rc syscall.RawConn, timeout time.Duration) {
	w.c, w.rc, w.timeout = c, rc, timeout
}

func (w *rawWriter) writeFD(fd uintptr) bool {
	for len(w.p) > 0 {
		n, err := syscall.Write(int(fd), w.p)
		if n > 0 {
			w.n += n
			w.p = w.p[n:]
			w.progress = true
		}
		switch {
		case err == syscall.EINTR:
		case err == syscall.EAGAIN:
			return w.wait()
		case err != nil:
			w.err = os.NewSyscallError("write", err)
			return true
		case n == 0:
			w.err = io.ErrShortWrite
			return true
		}
	}
	return true
}

// wait arms the write timeout for a write that would block, and reports
// whether to stop (the deadline could not be set) instead of waiting.
func (w *rawWriter) wait() (stop bool) {
	if !w.armed || w.progress {
		// The client is behind: the wait that follows is
		// bounded, from now.
		if w.err = w.c.SetWriteDeadline(time.Now().Add(w.timeout)); w.err != nil {
			return true
		}
		w.armed, w.progress = true, false
	}
	return false // wait until writable (or the deadline)
}

// rearm gives a write its own deadline when an earlier wait set one.
func (w *rawWriter) rearm() error {
	if w.armed {
		if err := w.c.SetWriteDeadline(time.Now().Add(w.timeout)); err != nil {
			return err
		}
		w.progress = false
	}
	return nil
}

// timedOut resets the connection when err is the write timeout.
func (w *rawWriter) timedOut(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// write_timeout: the client stopped reading. What is queued for
		// it in the kernel (megabytes, with autotuned buffers) would be
		// kept until the orphaned socket gives up; end the connection
		// with a reset instead, as nginx's reset_timedout_connection.
		if tc, ok := tcpConn(w.c); ok {
			tc.SetLinger(0)
		}
	}
}

func (w *rawWriter) Write(p []byte) (int, error) {
	if w.fn == nil {
		w.fn = w.writeFD
	}
	// A deadline from an earlier wait may have passed; this write gets
	// its own.
	if err := w.rearm(); err != nil {
		return 0, err
	}
	w.p = p
	rerr := w.rc.Write(w.fn)
	n, err := w.n, w.err
	w.p, w.n, w.err = nil, 0, nil
	if err == nil && rerr != nil {
		err = rerr
	}
	w.timedOut(err)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// disarm clears the write deadline if a write set one, and forgets the
// connection. It reports false if the socket failed.
func (w *rawWriter) disarm() bool {
	ok := true
	if w.armed {
		ok = w.c.SetWriteDeadline(time.Time{}) == nil
	}
	*w = rawWriter{fn: w.fn}
	return ok
}
