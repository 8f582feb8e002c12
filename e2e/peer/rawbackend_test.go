package peer_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// A RawBackend records every byte of a connection exactly, answers
// pipelined requests in order with their request-URI, and counts the
// connection as open until the peer closes it.
func TestRawBackend(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	c, err := net.Dial("tcp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	sent := "POST /one HTTP/1.1\r\nHost: a\r\nX_Odd: 1\r\nContent-Length: 3\r\n\r\nabc" +
		"GET /two?a=1;b=2 HTTP/1.1\r\nHost: b\r\n\r\n"
	if _, err := io.WriteString(c, sent); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, want := range []string{"/one\n", "/two?a=1;b=2\n"} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != want || resp.Header.Get("X-Backend") != "raw" {
			t.Errorf("answer %d %q (X-Backend %q); want 200 %q from raw", resp.StatusCode, body, resp.Header.Get("X-Backend"), want)
		}
	}
	if got := string(b.Received()); got != sent {
		t.Errorf("recorded %q; want exactly what was sent, %q", got, sent)
	}
	reqs := b.Requests()
	if len(reqs) != 2 || reqs[0].Method != "POST" || reqs[0].BodyLen != 3 || reqs[0].Header.Get("X_Odd") != "1" ||
		reqs[1].RequestURI != "/two?a=1;b=2" || reqs[1].Host != "b" {
		t.Errorf("parsed %+v; want POST /one (3-byte body, X_Odd) then GET /two?a=1;b=2 for host b", reqs)
	}
	if b.Open() != 1 || b.Peak() != 1 {
		t.Errorf("open %d, peak %d with one connection; want 1, 1", b.Open(), b.Peak())
	}
	c.Close()
	if !b.WaitOpen(0, 10*time.Second) {
		t.Errorf("%d connections open after the client closed; want 0", b.Open())
	}
}
