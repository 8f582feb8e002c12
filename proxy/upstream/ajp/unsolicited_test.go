//go:build unix

package ajp

import (
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// poisonPackets is a whole response that nobody asked for.
func poisonPackets() []byte {
	b := appendSendHeaders(nil, 200, "OK", respHeader{Code: RespContentLength, Value: "8"})
	b = appendBodyChunk(b, []byte("POISONED"))
	return appendEndResponse(b, true)
}

// readable reports whether c has something to read (bytes, EOF or an
// error), without consuming it: what a pooled connection would find.
func readable(t *testing.T, c net.Conn) bool {
	raw, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var perr error
	var b [1]byte
	raw.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
		return true
	})
	return perr != syscall.EAGAIN
}

// waitReadable waits until tr's pooled connection has something to read
// (polling: nothing signals its arrival), as one that sat idle would.
func waitReadable(t *testing.T, tr *Transport) {
	t.Helper()
	pc, _, _, _ := tr.idle.Get()
	defer tr.idle.Put(pc)
	for deadline := time.Now().Add(5 * time.Second); !readable(t, pc.conn); {
		if time.Now().After(deadline) {
			t.Fatal("nothing arrived on the pooled connection")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestClosedIdleFoundBeforeSend: a pooled connection that Tomcat closed
// while it was idle is found by the check before anything is written to
// it, so even a request that may not be sent twice (a POST) goes to a new
// connection instead of failing.
func TestClosedIdleFoundBeforeSend(t *testing.T) {
	fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
		if err := c.respond(200, nil, []byte(req.Method), 8184, true); err != nil {
			return err
		}
		if req.URI == "/then-close" {
			return errCloseConn
		}
		return nil
	})
	var rec errorRecorder
	tr := fc.transport(Options{CPingIdle: -1, DisableCPingNew: true, OnError: rec.onError})
	roundTrip(t, tr, httptest.NewRequest("GET", "http://example.com/then-close", nil))
	waitReadable(t, tr)
	if _, b := roundTrip(t, tr, httptest.NewRequest("POST", "http://example.com/", strings.NewReader("data"))); b != "POST" {
		t.Errorf("body %q; want \"POST\"", b)
	}
	if a := fc.accepts.Load(); a != 2 {
		t.Errorf("%d connections; want 2", a)
	}
	if kinds, _ := rec.get(); len(kinds) != 0 {
		t.Errorf("OnError kinds = %v; want none", kinds)
	}
}

// TestUnsolicitedPackets is response-queue poisoning over AJP, seen from
// the attacker's side: after a complete response (END_RESPONSE with
// reuse=1) the container sends a second response nobody asked for, once
// the client has read the first. The next request, whatever it is, must
// get its own answer on a new connection, and the stray bytes are
// reported.
func TestUnsolicitedPackets(t *testing.T) {
	tests := []struct {
		name        string
		firstMethod string
		first       []byte // the complete response to the first request
		stray       []byte
		together    bool // stray is sent with first, in one write
		cping       bool // the pooled connection is checked with CPING first
		method      string
		body        string
	}{
		{name: "later/get", firstMethod: "GET", first: appendEndResponse(appendSendHeaders(nil, 200, "OK"), true),
			stray: poisonPackets(), method: "GET"},
		{name: "later/post-body", firstMethod: "GET", first: appendEndResponse(appendSendHeaders(nil, 200, "OK"), true),
			stray: poisonPackets(), method: "POST", body: "payload"},
		{name: "later/after-204", firstMethod: "GET", first: appendEndResponse(appendSendHeaders(nil, 204, "No Content"), true),
			stray: poisonPackets(), method: "GET"},
		{name: "later/after-head", firstMethod: "HEAD", first: appendEndResponse(appendSendHeaders(nil, 200, "OK"), true),
			stray: poisonPackets(), method: "GET"},
		{name: "later/one-byte", firstMethod: "GET", first: appendEndResponse(appendSendHeaders(nil, 200, "OK"), true),
			stray: []byte("A"), method: "GET"},
		{name: "later/before-cping", firstMethod: "GET", first: appendEndResponse(appendSendHeaders(nil, 200, "OK"), true),
			stray: poisonPackets(), cping: true, method: "GET"},
		{name: "buffered/get", firstMethod: "GET", first: appendEndResponse(appendSendHeaders(nil, 200, "OK"), true),
			stray: poisonPackets(), together: true, method: "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			readFirst := make(chan struct{})
			strayOut := make(chan struct{})
			var requests atomic.Int32
			fc := newFakeContainer(t, func(c *cconn, req *decodedRequest, _ []byte) error {
				if requests.Add(1) > 1 {
					return c.respond(200, nil, []byte("real"), 8184, true)
				}
				if tt.together {
					return c.write(append(append([]byte(nil), tt.first...), tt.stray...))
				}
				if err := c.write(tt.first); err != nil {
					return err
				}
				go func() {
					<-readFirst
					c.write(tt.stray)
					close(strayOut)
				}()
				return nil
			})
			var reported []string
			cpingIdle := time.Duration(-1)
			if tt.cping {
				cpingIdle = time.Nanosecond
			}
			tr := fc.transport(Options{CPingIdle: cpingIdle, DisableCPingNew: true,
				OnUnsolicited: func(head []byte) { reported = append(reported, string(head)) }})
			roundTrip(t, tr, httptest.NewRequest(tt.firstMethod, "http://example.com/first", nil))
			if !tt.together {
				if n := tr.idleCount(); n != 1 {
					t.Fatalf("%d pooled connections after the first response; want 1", n)
				}
				close(readFirst)
				<-strayOut
				waitReadable(t, tr)
			}
			req := httptest.NewRequest(tt.method, "http://example.com/second", nil)
			if tt.body != "" {
				req = httptest.NewRequest(tt.method, "http://example.com/second", strings.NewReader(tt.body))
			}
			resp, body := roundTrip(t, tr, req)
			if resp.StatusCode != 200 || body != "real" {
				t.Fatalf("second request got %d %q; want 200 \"real\", its own answer", resp.StatusCode, body)
			}
			if a := fc.accepts.Load(); a != 2 {
				t.Errorf("%d connections; want 2 (the poisoned one closed)", a)
			}
			want := string(tt.stray[:min(len(tt.stray), 64)])
			if len(reported) != 1 || reported[0] != want {
				t.Errorf("OnUnsolicited got %q; want once %q", reported, want)
			}
		})
	}
}
