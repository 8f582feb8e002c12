package frontend

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
)

// This file is the PROXY protocol side of a listener (proxy_protocol):
// an NLB or an L4 balancer in front writes, before the client's first
// byte, a header (v1: one text line; v2: a binary block) naming the
// client's address, which the TCP peer (the balancer) hides. The header
// is read here, below TLS and below both engines' HTTP servers, so that
// every server sees a connection whose RemoteAddr is the client's: the
// fast path, net/http's server (engine std, handed-off connections) and
// the TLS listeners, whose handshake comes after the header.
//
// Only the header's bytes are consumed: they are framed from a peek
// (MSG_PEEK) of the socket, read exactly, and parsed by go-proxyproto,
// so that what follows is still in the socket for the fast path, which
// reads it from the file descriptor (a buffered reader would keep
// request bytes the fast path never sees). The connection handed on is
// the *net.TCPConn itself, wrapped only to change RemoteAddr.
//
// With TCP_DEFER_ACCEPT (deferaccept_linux.go) a connection is accepted
// once its first bytes are in, so the header is read on the accept
// goroutine without waiting, and a connection costs no goroutine of its
// own. A header that came alone (HAProxy writes it at connect, before
// the client has sent anything) leaves nothing in the socket: the fast
// path's first read finds nothing and parks the connection in the idle
// poller, as it does any new connection whose request has not come.

// maxProxyHeader bounds a v2 header (16 bytes and the addresses and
// TLVs): an AWS NLB's, with its VPC endpoint TLV, is under 100 bytes. A
// longer one is refused as a bogus length.
const maxProxyHeader = 1024

// maxProxyV1 is the longest v1 line the specification allows, CRLF
// included.
const maxProxyV1 = 107

// proxyV2Sig is the v2 header's first 12 bytes.
var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

// errProxyIncomplete is a header whose bytes have not all come yet.
var errProxyIncomplete = errors.New("incomplete PROXY header")

// proxyListener reads the PROXY header of each connection from a source
// in from before Accept returns it. A header read that must wait (the
// header is not all in with the connection) runs on a goroutine of its
// own, bounded by timeout, so that a slow source never holds up the
// others; Accept returns connections in the order their headers are done.
type proxyListener struct {
	net.Listener
	from    []netip.Prefix
	timeout time.Duration
	log     *zap.Logger

	results chan acceptResult
	done    chan struct{}
	once    sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

// newProxyListener starts reading headers from ln's connections.
func newProxyListener(ln net.Listener, o proxy.ProxyProtocolOptions, log *zap.Logger) *proxyListener {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("proxy_protocol")
	l := &proxyListener{Listener: ln, from: o.From, timeout: orDefault(o.Timeout, proxy.DefaultProxyHeaderTimeout),
		log: log, results: make(chan acceptResult), done: make(chan struct{})}
	go l.run()
	return l
}

// Accept returns the next connection whose header (if it needs one) has
// been read, or the inner listener's error.
func (l *proxyListener) Accept() (net.Conn, error) {
	select {
	case r := <-l.results:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close closes the inner listener; connections whose headers are still
// being read are closed when their read ends.
func (l *proxyListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// run accepts connections and sends them to Accept. An accept error is
// passed on too, so that the server's own backoff (out of file
// descriptors) paces this loop; after a permanent one it stops.
func (l *proxyListener) run() {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			temporary := errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
			if !l.deliver(acceptResult{err: err}) || !temporary {
				return
			}
			continue
		}
		ac, wait, err := l.admit(c, false)
		switch {
		case wait:
			go l.admitSlow(c)
		case err != nil:
			l.refuse(c, err)
		case !l.deliver(acceptResult{c: ac}):
			c.Close()
		}
	}
}

func (l *proxyListener) deliver(r acceptResult) bool {
	select {
	case l.results <- r:
		return true
	case <-l.done:
		return false
	}
}

// admitSlow reads a header that was not all in at accept, within the
// timeout.
func (l *proxyListener) admitSlow(c net.Conn) {
	if err := c.SetReadDeadline(time.Now().Add(l.timeout)); err != nil {
		c.Close()
		return
	}
	pc, _, err := l.admit(c, true)
	if err == nil {
		err = c.SetReadDeadline(time.Time{})
	}
	if err != nil {
		if errors.Is(err, errProxyIncomplete) || errors.Is(err, syscall.EAGAIN) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w within %s (proxy_protocol.timeout)", errProxyIncomplete, l.timeout)
		}
		l.refuse(c, err)
		return
	}
	if !l.deliver(acceptResult{c: pc}) {
		pc.Close()
	}
}

// refuse closes a connection whose header is missing, malformed or not
// allowed, and logs why with its TCP peer.
func (l *proxyListener) refuse(c net.Conn, err error) {
	l.log.Warn("PROXY protocol: connection refused", zap.Stringer("peer", c.RemoteAddr()), zap.Error(err))
	c.Close()
}

// admit decides about a new connection c. A source in from must open
// with a header: its client address replaces the peer's (but for LOCAL
// and UNKNOWN, which keep it). Any other source must not: a connection
// that opens with the start of a header is refused, one whose first
// bytes have not come is served as it is (a header arriving later fails
// as a malformed request). With wait false, admit looks only at what has
// arrived and reports wait when a listed source's header is incomplete.
func (l *proxyListener) admit(c net.Conn, wait bool) (_ net.Conn, needWait bool, _ error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil, false, fmt.Errorf("PROXY protocol needs a TCP connection, got %T", c)
	}
	peer := tc.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil, false, err
	}
	pb := proxyBufs.Get().(*proxyBuf)
	defer proxyBufs.Put(pb)
	buf := &pb.b
	if !l.listed(peer) {
		n, _ := peekProxy(rc, buf[:len(proxyV2Sig)], false)
		if b := buf[:n]; bytes.HasPrefix(b, []byte("PROXY ")) || bytes.Equal(b, proxyV2Sig) {
			return nil, false, fmt.Errorf("a PROXY header from %s, which is not in proxy_protocol.from", peer)
		}
		return c, false, nil
	}
	n, perr := peekProxy(rc, buf[:], wait)
	size, err := frameProxy(buf[:n], n == maxProxyHeader)
	switch {
	case errors.Is(err, errProxyIncomplete) && !wait:
		return c, true, nil
	case errors.Is(err, errProxyIncomplete):
		return nil, false, fmt.Errorf("%w: %w", err, perr)
	case errors.Is(err, proxyproto.ErrNoProxyProtocol):
		return nil, false, fmt.Errorf("no PROXY header from %s, which is in proxy_protocol.from and must send one", peer)
	case err != nil:
		return nil, false, err
	}
	if _, err := io.ReadFull(tc, buf[:size]); err != nil {
		return nil, false, fmt.Errorf("reading the PROXY header: %w", err)
	}
	rd, br := &pb.rd, pb.br
	rd.Reset(buf[:size])
	br.Reset(rd)
	h, err := proxyproto.Read(br)
	if err != nil {
		return nil, false, fmt.Errorf("malformed PROXY header: %w", err)
	}
	if br.Buffered()+rd.Len() != 0 {
		return nil, false, errors.New("malformed PROXY header: its length does not match its addresses")
	}
	if src, _, ok := h.TCPAddrs(); ok && h.Command.IsProxy() {
		return &proxiedConn{Conn: tc, remote: src}, false, nil
	}
	return c, false, nil // LOCAL (the balancer's health check), UNKNOWN: the peer's own connection
}

func (l *proxyListener) listed(a netip.Addr) bool {
	for _, p := range l.from {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// proxyBuf is what reading one header needs: the peeked bytes, and the
// reader go-proxyproto parses them from. Pooled: a connection costs
// none of it once its header is read.
type proxyBuf struct {
	b  [maxProxyHeader]byte
	rd bytes.Reader
	br *bufio.Reader
}

var proxyBufs = sync.Pool{New: func() any {
	pb := &proxyBuf{}
	pb.br = bufio.NewReaderSize(&pb.rd, 256)
	return pb
}}

// frameProxy finds the length of the PROXY header at the start of b:
// proxyproto.ErrNoProxyProtocol when b does not start with one,
// errProxyIncomplete when b is a header's start, or an error for a
// header that cannot be valid (a v1 line longer than the specification
// allows, a v2 length over maxProxyHeader). full says that no more bytes
// will be looked at.
func frameProxy(b []byte, full bool) (int, error) {
	switch {
	case len(b) == 0:
		return 0, errProxyIncomplete
	case b[0] == 'P':
		const sig = "PROXY "
		if !bytes.HasPrefix([]byte(sig), b[:min(len(b), len(sig))]) {
			return 0, proxyproto.ErrNoProxyProtocol
		}
		if i := bytes.Index(b[:min(len(b), maxProxyV1)], []byte("\r\n")); i >= 0 {
			return i + 2, nil
		}
		if len(b) >= maxProxyV1 {
			return 0, fmt.Errorf("malformed PROXY header: a v1 line longer than %d bytes", maxProxyV1)
		}
	case b[0] == '\r':
		if !bytes.HasPrefix(proxyV2Sig, b[:min(len(b), len(proxyV2Sig))]) {
			return 0, proxyproto.ErrNoProxyProtocol
		}
		if len(b) >= 16 {
			size := 16 + int(b[14])<<8 + int(b[15])
			if size > maxProxyHeader {
				return 0, fmt.Errorf("malformed PROXY header: a v2 length of %d bytes, over %d", size-16, maxProxyHeader-16)
			}
			if len(b) >= size {
				return size, nil
			}
		}
	default:
		return 0, proxyproto.ErrNoProxyProtocol
	}
	if full {
		return 0, errors.New("malformed PROXY header")
	}
	return 0, errProxyIncomplete
}

// proxiedConn is a client connection that came through a balancer
// sending the PROXY protocol: the TCP connection, with the client's
// address from the header as RemoteAddr.
type proxiedConn struct {
	net.Conn // a *net.TCPConn, or engine std's resetOnTimeoutConn
	remote   net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// SyscallConn is the TCP connection's: the fast path reads and writes
// the file descriptor.
func (c *proxiedConn) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("proxy: %T has no raw connection", c.Conn)
	}
	return sc.SyscallConn()
}

// CloseWrite is the TCP connection's: net/http's server half-closes a
// connection before it closes it, so that the client reads the answer
// instead of a reset.
func (c *proxiedConn) CloseWrite() error {
	tc, ok := tcpConn(c.Conn)
	if !ok {
		return fmt.Errorf("proxy: %T cannot half-close", c.Conn)
	}
	return tc.CloseWrite()
}

// tcpConn returns the TCP connection under c: c itself, or the one a
// proxiedConn or a resetOnTimeoutConn wraps.
func tcpConn(c net.Conn) (*net.TCPConn, bool) {
	for {
		switch v := c.(type) {
		case *net.TCPConn:
			return v, true
		case *proxiedConn:
			c = v.Conn
		case resetOnTimeoutConn:
			return v.TCPConn, true
		default:
			return nil, false
		}
	}
}
