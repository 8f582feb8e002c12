package h1

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// poison is what a broken or hostile backend sends after a complete
// response: it must never become the response to the next request.
const poison = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED"

// realAnswer is the backend's answer to every request after the first.
const realAnswer = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"

// TestUnsolicitedBytesNotServed is response-queue poisoning seen from the
// attacker's side: a backend answers the first request with a complete
// response and then, once the client has read all of it and the
// connection is back in the pool, sends more bytes that look like a
// response. The next request (a GET, which may be sent again and so was
// never checked before) must get its own answer from the backend, on a
// new connection, never those bytes.
func TestUnsolicitedBytesNotServed(t *testing.T) {
	tests := []struct {
		name   string
		method string // of the first request
		first  string // the complete response to it
		stray  string // sent after the client read it
	}{
		// The body was longer than the Content-Length the backend sent.
		{name: "wrong-content-length", method: "GET",
			first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", stray: poison},
		{name: "body-on-204", method: "GET",
			first: "HTTP/1.1 204 No Content\r\n\r\n", stray: poison},
		{name: "body-on-304", method: "GET",
			first: "HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\n", stray: poison},
		{name: "body-on-head", method: "HEAD",
			first: "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n", stray: poison},
		// The application split the response: a second one, later.
		{name: "stray-response-later", method: "GET",
			first: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", stray: poison},
		{name: "one-stray-byte", method: "GET",
			first: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", stray: "H"},
	}
	// The second request: each kind is checked on a different path (the
	// flush, a head too large for the write buffer, a request with a body).
	seconds := []struct {
		name   string
		method string
		header string // size of an extra header
		body   string
	}{
		{name: "get", method: "GET"},
		{name: "get-large-head", method: "GET", header: strings.Repeat("h", 3*writeBufSize)},
		{name: "delete", method: "DELETE"},
		{name: "post-body", method: "POST", body: "payload"},
	}
	for _, tt := range tests {
		for _, second := range seconds {
			t.Run(tt.name+"/"+second.name, func(t *testing.T) {
				testUnsolicited(t, tt.method, tt.first, tt.stray, second.method, second.header, second.body)
			})
		}
	}
}

// testUnsolicited runs one case of TestUnsolicitedBytesNotServed: first
// answers the first request (of method), stray follows it once the client
// has read it, and a second request (method2, with an extra header of
// header2 and body2) must get its own answer.
func testUnsolicited(t *testing.T, method, first, stray, method2, header2, body2 string) {
	checkGoroutines(t)
	readFirst := make(chan struct{}) // the client has the whole first response
	strayOut := make(chan struct{})  // the backend wrote the stray bytes
	p := newPeer(t, func(c *peerConn) {
		for {
			if _, _, _, err := c.readRequest(); err != nil {
				return
			}
			if c.p.requests.Load() > 1 {
				if c.write(realAnswer) != nil {
					return
				}
				continue
			}
			if c.write(first) != nil {
				return
			}
			<-readFirst
			c.write(stray)
			close(strayOut)
		}
	})
	var reported []string
	tr := p.transport(Options{OnUnsolicited: func(head []byte) { reported = append(reported, string(head)) }})
	req, err := http.NewRequest(method, "http://b/first", nil)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, tr, req)
	if n := tr.idleCount(); n != 1 {
		t.Fatalf("%d pooled connections after the first response; want 1", n)
	}
	close(readFirst)
	<-strayOut
	// Wait until the stray bytes can be seen on the pooled
	// connection, as they would be on a real one that sat idle.
	pc, _, _, _ := tr.idle.Get()
	waitFor(t, "the stray bytes", func() bool { return !pc.alive() })
	tr.idle.Put(pc)

	var rb io.Reader
	if body2 != "" {
		rb = strings.NewReader(body2)
	}
	req, _ = http.NewRequest(method2, "http://b/second", rb)
	if header2 != "" {
		req.Header.Set("X-Large", header2)
	}
	resp, body := roundTrip(t, tr, req)
	if strings.Contains(body, "POISONED") || resp.StatusCode != 200 || body != "real" {
		t.Fatalf("second request got %d %q; want 200 \"real\", its own answer", resp.StatusCode, body)
	}
	if want := stray[:min(len(stray), 64)]; len(reported) != 1 || reported[0] != want {
		t.Errorf("OnUnsolicited got %q; want once %q", reported, want)
	}
	if n := p.accepts.Load(); n != 2 {
		t.Errorf("%d connections; want 2 (the poisoned one closed)", n)
	}
	p.close() // wait for the backend to finish reading
	if n := p.requests.Load(); n != 2 {
		t.Errorf("backend read %d requests; want 2", n)
	}
	if got := p.conns[0].got; len(got) != 0 {
		t.Errorf("the poisoned connection received %d bytes of the second request; want none", len(got))
	}
}

// TestUnsolicitedBytesBuffered: stray bytes that came with the response,
// so that they sit in the read buffer when the response ends, close the
// connection too (whatever the request of the next client).
func TestUnsolicitedBytesBuffered(t *testing.T) {
	for _, method := range []string{"GET", "POST"} {
		t.Run(method, func(t *testing.T) {
			checkGoroutines(t)
			p := newPeer(t, func(c *peerConn) {
				for {
					if _, _, _, err := c.readRequest(); err != nil {
						return
					}
					resp := realAnswer
					if c.p.requests.Load() == 1 {
						resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + poison
					}
					if c.write(resp) != nil {
						return
					}
				}
			})
			var reported []string
			tr := p.transport(Options{OnUnsolicited: func(head []byte) { reported = append(reported, string(head)) }})
			resp, err := tr.RoundTrip(httpGet(t, "/first"))
			if err != nil {
				t.Fatal(err)
			}
			waitBuffered(t, resp, "POISONED")
			if b, err := io.ReadAll(resp.Body); err != nil || string(b) != "ok" {
				t.Fatalf("first body %q, %v; want \"ok\"", b, err)
			}
			resp.Body.Close()
			req, _ := http.NewRequest(method, "http://b/second", nil)
			resp, body := roundTrip(t, tr, req)
			if resp.StatusCode != 200 || body != "real" {
				t.Fatalf("second request got %d %q; want 200 \"real\"", resp.StatusCode, body)
			}
			if n := p.accepts.Load(); n != 2 {
				t.Errorf("%d connections; want 2", n)
			}
			if len(reported) != 1 || reported[0] != poison {
				t.Errorf("OnUnsolicited got %q; want once %q", reported, poison)
			}
		})
	}
}
