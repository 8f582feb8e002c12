//go:build unix

package idlepool

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProbe: a peek finds nothing on a quiet connection, the bytes on one
// the peer wrote to (without consuming them), and Closed on one the peer
// closed; Fit reports the bytes.
func TestProbe(t *testing.T) {
	tests := []struct {
		name  string
		peer  func(c net.Conn) // acts on the peer's end
		want  Unread
		head  string
		quiet bool // nothing will arrive: one look is the answer
	}{
		{name: "quiet", peer: func(net.Conn) {}, want: Nothing, quiet: true},
		{name: "stray", peer: func(c net.Conn) { c.Write([]byte("HTTP/1.1 200 OK\r\n")) }, want: Stray, head: "HTTP/1.1 200 OK\r\n"},
		{name: "long-stray", peer: func(c net.Conn) { c.Write([]byte(strings.Repeat("x", 100))) }, want: Stray, head: strings.Repeat("x", 64)},
		{name: "closed", peer: func(c net.Conn) { c.Close() }, want: Closed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			tt.peer(s)
			var p Probe
			got := p.Check(c)
			// Loopback delivers at once in practice; wait for the bytes
			// or the FIN if not (nothing signals their arrival).
			for deadline := time.Now().Add(5 * time.Second); got == Nothing && !tt.quiet && time.Now().Before(deadline); {
				time.Sleep(time.Millisecond)
				got = p.Check(c)
			}
			if got != tt.want {
				t.Fatalf("Check = %v; want %v", got, tt.want)
			}
			var reported string
			if fit := p.Fit(got, func(h []byte) { reported = string(h) }); fit != (tt.want == Nothing) || reported != tt.head {
				t.Errorf("Fit = %v, reported %q; want %v, %q", fit, reported, tt.want == Nothing, tt.head)
			}
			if tt.want == Stray { // a peek: the bytes are still there
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b := make([]byte, len(tt.head))
				if n, err := c.Read(b); err != nil || string(b[:n]) != tt.head[:n] || n == 0 {
					t.Errorf("Read after Check = %q, %v; want the stray bytes", b[:n], err)
				}
			}
		})
	}
}

func TestLeftover(t *testing.T) {
	var got []string
	report := func(h []byte) { got = append(got, string(h)) }
	empty := bufio.NewReader(strings.NewReader(""))
	if Leftover(empty, report) || len(got) != 0 {
		t.Errorf("Leftover of an empty buffer = true or reported %q", got)
	}
	br := bufio.NewReader(strings.NewReader("okPOISONED"))
	br.Discard(2)
	if !Leftover(br, report) || len(got) != 1 || got[0] != "POISONED" {
		t.Errorf("Leftover with %q buffered: reported %q; want true and the bytes", "POISONED", got)
	}
	if !Leftover(br, nil) {
		t.Error("Leftover with no report func = false")
	}
}
