package ajp

// The container side of AJP13, for tests only: a decoder for what the
// transport writes and encoders for what Tomcat writes, plus an in-process
// fake container on 127.0.0.1:0.

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// decodedRequest is a Forward Request as a container sees it.
type decodedRequest struct {
	Method     string // from the code, or from stored_method
	MethodCode Method
	Protocol   string
	URI        string
	RemoteAddr string
	RemoteHost string
	ServerName string
	ServerPort int
	IsSSL      bool
	Headers    []field // in wire order; coded names in Tomcat's lower case
	Attrs      []attr  // in wire order
}

type field struct{ Name, Value string }

type attr struct {
	Code  AttributeCode
	Name  string // req_attribute only
	Value string // ssl_key_size: decimal
}

func (r *decodedRequest) header(name string) (string, bool) {
	for _, h := range r.Headers {
		if httplex.EqualFold(h.Name, toLower(name)) {
			return h.Value, true
		}
	}
	return "", false
}

func (r *decodedRequest) attr(code AttributeCode) (string, bool) {
	for _, a := range r.Attrs {
		if a.Code == code {
			return a.Value, true
		}
	}
	return "", false
}

func (r *decodedRequest) reqAttr(name string) (string, bool) {
	for _, a := range r.Attrs {
		if a.Code == AttrReqAttr && a.Name == name {
			return a.Value, true
		}
	}
	return "", false
}

func toLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// wireReader reads AJP data types from a payload, container side.
type wireReader struct {
	b   []byte
	off int
	err error
}

func (r *wireReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("bad %s at %d", what, r.off)
	}
}

func (r *wireReader) u8() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.fail("byte")
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *wireReader) u16() int {
	if r.err != nil || r.off+2 > len(r.b) {
		r.fail("int")
		return 0
	}
	r.off += 2
	return int(binary.BigEndian.Uint16(r.b[r.off-2:]))
}

func (r *wireReader) str() string {
	n := r.u16()
	if r.err != nil || n == 0xFFFF {
		return ""
	}
	if r.off+n+1 > len(r.b) || r.b[r.off+n] != 0 {
		r.fail("string")
		return ""
	}
	s := string(r.b[r.off : r.off+n])
	r.off += n + 1
	return s
}

// decodeForwardRequest decodes a whole packet (header included).
func decodeForwardRequest(pkt []byte) (*decodedRequest, error) {
	if len(pkt) < 5 || pkt[0] != 0x12 || pkt[1] != 0x34 {
		return nil, errors.New("bad packet header")
	}
	if n := int(binary.BigEndian.Uint16(pkt[2:])); n != len(pkt)-4 {
		return nil, fmt.Errorf("length %d, payload %d", n, len(pkt)-4)
	}
	r := &wireReader{b: pkt[4:]}
	if t := PacketType(r.u8()); t != TypeForwardRequest {
		return nil, fmt.Errorf("type %v", t)
	}
	d := &decodedRequest{}
	d.MethodCode = Method(r.u8())
	if d.MethodCode != MethodStored {
		d.Method = d.MethodCode.String()
	}
	d.Protocol = r.str()
	d.URI = r.str()
	d.RemoteAddr = r.str()
	d.RemoteHost = r.str()
	d.ServerName = r.str()
	d.ServerPort = r.u16()
	d.IsSSL = r.u8() != 0
	n := r.u16()
	for i := 0; i < n && r.err == nil; i++ {
		var name string
		if r.off < len(r.b) && r.b[r.off] == 0xA0 {
			name = HeaderCode(r.u16()).String()
		} else {
			name = r.str()
		}
		d.Headers = append(d.Headers, field{name, r.str()})
	}
	for r.err == nil {
		code := AttributeCode(r.u8())
		if code == AttrAreDone {
			break
		}
		a := attr{Code: code}
		switch code {
		case AttrReqAttr:
			a.Name = r.str()
			a.Value = r.str()
		case AttrSSLKeySize:
			a.Value = fmt.Sprint(r.u16())
		default:
			a.Value = r.str()
		}
		if code == AttrStoredMeth {
			d.Method = a.Value
		}
		d.Attrs = append(d.Attrs, a)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(r.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	return d, nil
}

// Container-side encoders ("AB" packets).

func startAB(b []byte) ([]byte, int) { return append(b, 'A', 'B', 0, 0), len(b) }

func endAB(b []byte, off int) []byte {
	binary.BigEndian.PutUint16(b[off+2:], uint16(len(b)-off-4))
	return b
}

func abString(b []byte, s string) []byte {
	b = appendU16(b, len(s))
	b = append(b, s...)
	return append(b, 0)
}

// respHeader is a response header; Code, if set, replaces Name on the wire.
type respHeader struct {
	Code        ResponseHeaderCode
	Name, Value string
}

func appendSendHeaders(b []byte, status int, reason string, hs ...respHeader) []byte {
	b, off := startAB(b)
	b = append(b, byte(TypeSendHeaders))
	b = appendU16(b, status)
	b = abString(b, reason)
	b = appendU16(b, len(hs))
	for _, h := range hs {
		if h.Code != 0 {
			b = appendU16(b, int(h.Code))
		} else {
			b = abString(b, h.Name)
		}
		b = abString(b, h.Value)
	}
	return endAB(b, off)
}

// appendBodyChunk writes SEND_BODY_CHUNK the way Tomcat does: length,
// data, and a trailing 0x00 the length does not count.
func appendBodyChunk(b, data []byte) []byte {
	b, off := startAB(b)
	b = append(b, byte(TypeSendBodyChunk))
	b = appendU16(b, len(data))
	b = append(b, data...)
	b = append(b, 0)
	return endAB(b, off)
}

func appendEndResponse(b []byte, reuse bool) []byte {
	r := byte(0)
	if reuse {
		r = 1
	}
	return append(b, 'A', 'B', 0, 2, byte(TypeEndResponse), r)
}

func appendGetBodyChunk(b []byte, n int) []byte {
	return append(b, 'A', 'B', 0, 3, byte(TypeGetBodyChunk), byte(n>>8), byte(n))
}

func appendCPong(b []byte) []byte { return append(b, 'A', 'B', 0, 1, byte(TypeCPong)) }

// cconn is the container end of one connection.
type cconn struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader

	// firstBodyPending: the request announced a body, so the transport sent
	// its first packet unasked; if the handler does not read it, it is
	// swallowed after the response, as Tomcat's finishResponse does.
	firstBodyPending bool
}

// readPacket reads one web-server packet (0x12 0x34) and returns it whole.
func (c *cconn) readPacket() ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return nil, err
	}
	if h[0] != 0x12 || h[1] != 0x34 {
		return nil, fmt.Errorf("bad magic %x", h[:2])
	}
	n := int(binary.BigEndian.Uint16(h[2:]))
	p := make([]byte, 4+n)
	copy(p, h[:])
	if _, err := io.ReadFull(c.br, p[4:]); err != nil {
		return nil, err
	}
	return p, nil
}

// readBody reads one request body packet and returns its data; empty
// means the end of the body.
func (c *cconn) readBody() ([]byte, error) {
	c.firstBodyPending = false
	p, err := c.readPacket()
	if err != nil {
		return nil, err
	}
	if len(p) == 4 {
		return nil, nil
	}
	if len(p) < 6 {
		return nil, fmt.Errorf("short body packet % x", p)
	}
	n := int(binary.BigEndian.Uint16(p[4:]))
	if n != len(p)-6 {
		return nil, fmt.Errorf("body length %d in a %d-byte packet", n, len(p))
	}
	return p[6:], nil
}

func (c *cconn) write(b []byte) error {
	_, err := c.conn.Write(b)
	return err
}

// respond sends a complete response: headers, body in chunks of at most
// chunk bytes, END_RESPONSE.
func (c *cconn) respond(status int, hs []respHeader, body []byte, chunk int, reuse bool) error {
	b := appendSendHeaders(nil, status, fmt.Sprint(status), hs...)
	for len(body) > 0 {
		n := min(chunk, len(body))
		b = appendBodyChunk(b, body[:n])
		body = body[n:]
	}
	b = appendEndResponse(b, reuse)
	return c.write(b)
}

// fakeContainer accepts connections on 127.0.0.1:0 and runs serve for
// each Forward Request; it answers CPING itself unless noCPong.
type fakeContainer struct {
	t       testing.TB
	ln      net.Listener
	accepts atomic.Int32
	cpings  atomic.Int32
	noCPong atomic.Bool

	mu    sync.Mutex
	conns []net.Conn

	// serve handles one request; returning an error closes the connection.
	// Returning errCloseConn closes it silently.
	serve func(c *cconn, req *decodedRequest, raw []byte) error

	wg sync.WaitGroup
}

var errCloseConn = errors.New("close connection")

func newFakeContainer(t testing.TB, serve func(c *cconn, req *decodedRequest, raw []byte) error) *fakeContainer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeContainer{t: t, ln: ln, serve: serve}
	fc.wg.Add(1)
	go fc.acceptLoop()
	t.Cleanup(fc.close)
	return fc
}

func (fc *fakeContainer) acceptLoop() {
	defer fc.wg.Done()
	for {
		conn, err := fc.ln.Accept()
		if err != nil {
			return
		}
		fc.accepts.Add(1)
		fc.mu.Lock()
		fc.conns = append(fc.conns, conn)
		fc.mu.Unlock()
		fc.wg.Add(1)
		go fc.handle(conn)
	}
}

func (fc *fakeContainer) handle(conn net.Conn) {
	defer fc.wg.Done()
	defer conn.Close()
	c := &cconn{t: fc.t, conn: conn, br: bufio.NewReader(conn)}
	for {
		p, err := c.readPacket()
		if err != nil {
			return
		}
		switch PacketType(p[4]) {
		case TypeCPing:
			fc.cpings.Add(1)
			if fc.noCPong.Load() {
				continue
			}
			if c.write(appendCPong(nil)) != nil {
				return
			}
		case TypeForwardRequest:
			req, err := decodeForwardRequest(p)
			if err != nil {
				fc.t.Errorf("fake container: decoding Forward Request: %v", err)
				return
			}
			cl, _ := req.header("content-length")
			c.firstBodyPending = cl != "" && cl != "0"
			if err := fc.serve(c, req, p); err != nil {
				if err != errCloseConn {
					fc.t.Errorf("fake container: %v", err)
				}
				return
			}
			if c.firstBodyPending {
				if _, err := c.readBody(); err != nil {
					return
				}
			}
		default:
			fc.t.Errorf("fake container: unexpected packet % x", p)
			return
		}
	}
}

func (fc *fakeContainer) close() {
	fc.ln.Close()
	fc.mu.Lock()
	for _, c := range fc.conns {
		c.Close()
	}
	fc.mu.Unlock()
	fc.wg.Wait()
}

func (fc *fakeContainer) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", fc.ln.Addr().String())
}

// transport returns a Transport for fc with o's non-zero fields.
func (fc *fakeContainer) transport(o Options) *Transport {
	if o.Dial == nil {
		o.Dial = fc.dial
	}
	t := NewTransport(o)
	fc.t.Cleanup(t.CloseIdleConnections)
	return t
}
