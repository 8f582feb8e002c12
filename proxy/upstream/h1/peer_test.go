package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// peer is a raw HTTP/1.1 backend on 127.0.0.1: it hands each accepted
// connection to serve, which reads and writes exact bytes. accepts counts
// connections, requests the requests read by readRequest.
type peer struct {
	t        testing.TB
	ln       net.Listener
	serve    func(c *peerConn)
	accepts  atomic.Int32
	requests atomic.Int32

	mu    sync.Mutex // guards conns
	conns []*peerConn
	wg    sync.WaitGroup
}

// peerConn is one backend connection. got holds the bytes read from it
// that readRequest has not returned yet.
type peerConn struct {
	net.Conn
	p   *peer
	n   int // 1 for the first connection accepted
	br  *bufio.Reader
	got []byte
}

type recorder struct{ c *peerConn }

func (r recorder) Read(b []byte) (int, error) {
	n, err := r.c.Conn.Read(b)
	r.c.got = append(r.c.got, b[:n]...)
	return n, err
}

func newPeer(t testing.TB, serve func(c *peerConn)) *peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, ln: ln, serve: serve}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *peer) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		pc := &peerConn{Conn: c, p: p, n: int(p.accepts.Add(1))}
		pc.br = bufio.NewReader(recorder{pc})
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer c.Close()
			p.serve(pc)
		}()
	}
}

func (p *peer) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// transport returns a Transport dialing p.
func (p *peer) transport(o Options) *Transport {
	addr := p.ln.Addr().String()
	o.Dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	tr := NewTransport(o)
	p.t.Cleanup(tr.CloseIdleConnections)
	return tr
}

// readRequest reads one request, body included, and returns it with its
// body and its exact bytes on the wire.
func (c *peerConn) readRequest() (req *http.Request, body []byte, raw string, err error) {
	req, err = http.ReadRequest(c.br)
	if err != nil {
		return nil, nil, "", err
	}
	body, err = io.ReadAll(req.Body)
	used := len(c.got) - c.br.Buffered()
	raw = string(c.got[:used])
	c.got = append([]byte(nil), c.got[used:]...)
	if err == nil {
		c.p.requests.Add(1)
	}
	return req, body, raw, err
}

func (c *peerConn) write(s string) error {
	_, err := io.WriteString(c.Conn, s)
	return err
}

// waitEOF reads until the client closes the connection (or 5s pass) and
// reports whether it did.
func (c *peerConn) waitEOF() bool {
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c.br)
	return err == nil
}

// serveAll answers every request on every connection with resp.
func serveAll(resp string) func(c *peerConn) {
	return func(c *peerConn) {
		for {
			if _, _, _, err := c.readRequest(); err != nil {
				return
			}
			if c.write(resp) != nil {
				return
			}
		}
	}
}

const ok204 = "HTTP/1.1 204 No Content\r\n\r\n"

// get sends a GET for path and returns the response with its whole body.
func get(t *testing.T, tr *Transport, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://backend.test"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return roundTrip(t, tr, req)
}

func roundTrip(t *testing.T, tr *Transport, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatalf("RoundTrip: %v", err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return resp, string(b)
}

// waitFor polls cond (a state change in another goroutine with no signal
// to wait on) for up to 5s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkGoroutines fails the test if goroutines started during it are still
// running once its cleanups (peers, transports) have run.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("%d goroutines left running (%d before):\n%s",
					runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// trackedBody is a request body that records reads and Close.
type trackedBody struct {
	r      io.Reader
	read   atomic.Int64
	closed chan struct{}
	once   sync.Once
}

func newTrackedBody(r io.Reader) *trackedBody {
	return &trackedBody{r: r, closed: make(chan struct{})}
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.read.Add(int64(n))
	return n, err
}

func (b *trackedBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func (b *trackedBody) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}
