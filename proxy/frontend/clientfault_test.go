package frontend

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/upstream"
)

// serveEjecting serves one upstream of tg whose single address is ejected
// after two failures of any kind (connect, 5xx or broken response) and
// stays ejected for the test's length; logs are kept from debug level up.
func serveEjecting(t *testing.T, tg proxy.TargetOptions) (addr string, p *upstream.Pool, logs *observer.ObservedLogs) {
	t.Helper()
	opts := proxy.Options{
		Listeners: []proxy.ListenerOptions{{Name: "test", Address: "127.0.0.1:0"}},
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []proxy.UpstreamOptions{{Name: "app", Targets: []proxy.TargetOptions{tg},
			Consecutive5xx: 2, FailuresToEject: 2, MaxEjectedPercent: 100,
			EjectBackoffBase: time.Hour, EjectBackoffCap: time.Hour}},
	}
	core, logs := observer.New(zap.DebugLevel)
	s, err := NewServer(opts, nil, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	serveServer(t, s)
	return s.Addrs()[0].String(), s.Handler().Pool("app"), logs
}

// rawExchange writes req on a new connection, half-closes it when
// closeWrite is set (the client gives up sending), and returns the status
// of the answer, or 0 if the connection ended without one.
func rawExchange(t *testing.T, addr, req string, closeWrite bool) int {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	for err == nil && resp.StatusCode < 200 {
		resp, err = http.ReadResponse(br, nil) // past 100 Continue
	}
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// brokenBodies are requests whose body the client breaks: each is
// answered 400.
var brokenBodies = []struct {
	name       string
	req        string
	closeWrite bool
}{
	{"malformed chunk size", "POST /up HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false},
	{"chunked upload cut off", "POST /up HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true},
	{"sized upload cut off", "POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\nabc", true},
	// Expect: the fast path hands the connection to net/http's server.
	{"malformed chunk size, net/http server", "POST /up HTTP/1.1\r\nHost: app\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false},
}

const goodPost = "POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 2\r\n\r\nok"

// sendBroken sends each broken body 12 times (more than the ejection
// thresholds) and checks that each is answered 400, that the address did
// not change state and that nothing was logged at warn.
func sendBroken(t *testing.T, tg func() proxy.TargetOptions) {
	t.Helper()
	for _, tc := range brokenBodies {
		t.Run(tc.name, func(t *testing.T) {
			addr, p, logs := serveEjecting(t, tg())
			if got := rawExchange(t, addr, goodPost, false); got != http.StatusOK {
				t.Fatalf("a good POST: status %d; want 200", got)
			}
			for i := range 12 {
				if got := rawExchange(t, addr, tc.req, tc.closeWrite); got != http.StatusBadRequest {
					t.Fatalf("request %d: status %d; want 400", i, got)
				}
			}
			for _, e := range p.Endpoints() {
				if s := e.State(); s != upstream.StateRunning {
					t.Errorf("address %v is %v after 12 broken request bodies; want running", e.Addr(), s)
				}
			}
			if l := logs.FilterMessage("address state changed").All(); len(l) != 0 {
				t.Errorf("%d address state changes logged, the first: %v; want none", len(l), l[0].ContextMap())
			}
			if l := logs.FilterLevelExact(zapcore.WarnLevel).All(); len(l) != 0 {
				t.Errorf("%d lines logged at warn, the first: %v %v; want none (the client's fault is logged at debug)",
					len(l), l[0].Message, l[0].ContextMap())
			}
			if got := rawExchange(t, addr, goodPost, false); got != http.StatusOK {
				t.Errorf("a good POST afterwards: status %d; want 200", got)
			}
		})
	}
}

// sendFailing is the control: 12 requests a backend really fails are
// answered 502 and eject the address.
func sendFailing(t *testing.T, tg proxy.TargetOptions, req string) {
	t.Helper()
	addr, p, _ := serveEjecting(t, tg)
	for i := range 12 {
		if got := rawExchange(t, addr, req, false); got != http.StatusBadGateway {
			t.Fatalf("backend fault, request %d: status %d; want 502", i, got)
		}
	}
	if s := p.Endpoints()[0].State(); s != upstream.StateEjected {
		t.Errorf("after 12 backend faults the address is %v; want ejected", s)
	}
}

// Issue 15, finding 3: twelve POSTs with a malformed chunked body got 502,
// counted as backend failures, and ejected a healthy address. A request
// body the client breaks (bad chunked framing, an upload cut short) is the
// client's fault: the address stays running, the client gets 400, and no
// upstream failure is logged at warn. A backend that really fails is still
// ejected (control).
func TestHandler_clientBodyFaultsNeverEject(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/broken" {
			// A real backend fault: the connection drops before any answer.
			if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
				c.Close()
			}
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	sendBroken(t, func() proxy.TargetOptions { return target(t, backend) })
	sendFailing(t, target(t, backend), "POST /broken HTTP/1.1\r\nHost: app\r\nContent-Length: 2\r\n\r\nok")
}

// A client that resets its connection in the middle of an upload (the
// browser tab closed) is not answered, and not held against the backend:
// logged at debug, the address stays running.
func TestHandler_uploadResetByClientNeverEjects(t *testing.T) {
	started := make(chan struct{}, 1)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		io.Copy(io.Discard, r.Body)
	}))
	defer backend.Close()
	addr, p, logs := serveEjecting(t, target(t, backend))
	for i := range 12 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "POST /up HTTP/1.1\r\nHost: app\r\nContent-Length: 1000\r\n\r\nabc")
		select { // the request is with the backend, its body still coming
		case <-started:
		case <-time.After(10 * time.Second):
			t.Fatalf("upload %d never reached the backend", i)
		}
		c.(*net.TCPConn).SetLinger(0)
		c.Close() // RST
		deadline := time.Now().Add(10 * time.Second)
		// The proxy logs each ended request once, at debug (the client's
		// fault) or at warn (an upstream failure).
		for logs.FilterMessage("request body could not be read from the client").Len()+
			logs.FilterMessage("upstream request failed").Len() <= i {
			if time.Now().After(deadline) {
				t.Fatalf("upload %d: the reset was not seen within 10 s", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if s := p.Endpoints()[0].State(); s != upstream.StateRunning {
		t.Errorf("address is %v after 12 uploads reset by the client; want running", s)
	}
	if l := logs.FilterLevelExact(zapcore.WarnLevel).All(); len(l) != 0 {
		t.Errorf("%d lines logged at warn, the first: %v %v; want none", len(l), l[0].Message, l[0].ContextMap())
	}
}

// The same for an ajp:// upstream: the AJP client reads the request body
// as the container asks for it.
func TestHandler_clientBodyFaultsNeverEjectAJP(t *testing.T) {
	sendBroken(t, func() proxy.TargetOptions { return fakeAJP(t, false) })
	sendFailing(t, fakeAJP(t, true), goodPost)
}

// fakeAJP is a minimal AJP13 container on 127.0.0.1: it answers CPING,
// asks for the request body packet by packet until the empty packet that
// ends it, then answers 200 and keeps the connection. With broken set it
// closes every connection once a Forward Request arrives (a backend
// fault).
func fakeAJP(t *testing.T, broken bool) proxy.TargetOptions {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveAJP(c, broken)
		}
	}()
	return proxy.TargetOptions{Scheme: "ajp", Host: "127.0.0.1", Port: uint16(ln.Addr().(*net.TCPAddr).Port), Weight: 1}
}

func serveAJP(c net.Conn, broken bool) {
	defer c.Close()
	br := bufio.NewReader(c)
	read := func() ([]byte, error) {
		var h [4]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return nil, err
		}
		p := make([]byte, int(h[2])<<8|int(h[3]))
		_, err := io.ReadFull(br, p)
		return p, err
	}
	send := func(payload ...byte) error {
		_, err := c.Write(append([]byte{'A', 'B', byte(len(payload) >> 8), byte(len(payload))}, payload...))
		return err
	}
	getBody := func() error { return send(6, 0x1f, 0xfa) } // GET_BODY_CHUNK 8186
	for {
		p, err := read()
		if err != nil {
			return
		}
		if len(p) == 0 {
			continue // the end of a body, answering a spare GET_BODY_CHUNK
		}
		switch p[0] {
		case 10: // CPING
			if send(9) != nil {
				return
			}
			continue
		case 2: // FORWARD_REQUEST
		default:
			return
		}
		if broken {
			return
		}
		// The body: packets (2-byte length, data) until an empty one.
		if getBody() != nil {
			return
		}
		for {
			b, err := read()
			if err != nil {
				return
			}
			if len(b) < 2 || b[0] == 0 && b[1] == 0 {
				break
			}
			if getBody() != nil {
				return
			}
		}
		// SEND_HEADERS 200 "OK", no header; END_RESPONSE reuse.
		if send(4, 0, 200, 0, 2, 'O', 'K', 0, 0, 0) != nil || send(5, 1) != nil {
			return
		}
	}
}

// errBody is a request body that gives a few bytes, then err.
type errBody struct {
	sent bool
	err  error
}

func (b *errBody) Read(p []byte) (int, error) {
	if !b.sent {
		b.sent = true
		return copy(p, "abc"), nil
	}
	return 0, b.err
}

func (b *errBody) Close() error { return nil }

// What the client gets when its request body fails: 400 for a body that
// cannot be read, 408 when the front server's body read timed out, 413
// when the body went over a limit (http.MaxBytesError); never 502 or 504,
// and the address stays running.
func TestHandler_requestBodyErrorStatus(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	defer backend.Close()
	opts := oneUpstream(t, backend, func(u *proxy.UpstreamOptions) {
		u.Consecutive5xx, u.FailuresToEject, u.MaxEjectedPercent = 1, 1, 100
	})
	opts.Listeners = []proxy.ListenerOptions{{Name: "test"}}
	h, err := proxy.NewHandler(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"unreadable", errors.New("invalid byte in chunk length"), http.StatusBadRequest},
		{"cut off", io.ErrUnexpectedEOF, http.StatusBadRequest},
		{"read timeout", fmt.Errorf("reading body: %w", os.ErrDeadlineExceeded), http.StatusRequestTimeout},
		{"over a limit", &http.MaxBytesError{Limit: 10}, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "http://app/up", &errBody{err: tc.err})
			req.ContentLength = -1
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want || rec.Header().Get("Connection") != "close" {
				t.Errorf("status %d, Connection %q; want %d and close", rec.Code, rec.Header().Get("Connection"), tc.want)
			}
			if s := h.Pool("app").Endpoints()[0].State(); s != upstream.StateRunning {
				t.Errorf("address is %v; want running", s)
			}
		})
	}
}
