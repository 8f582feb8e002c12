package upstream

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// strayBackend answers its first request "ok" and, once released, sends a
// second response nobody asked for on the same connection; later requests
// are answered "real".
func strayBackend(t *testing.T) (addr *net.TCPAddr, release chan<- struct{}, sent <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rel, done := make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop); ln.Close() })
	go func() {
		first := true
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn, first bool) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if !first {
						if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal")); err != nil {
							return
						}
						continue
					}
					first = false
					if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
						return
					}
					select {
					case <-rel:
					case <-stop:
						return
					}
					c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")) //nolint:errcheck // the test sees what came of it
					close(done)
				}
			}(c, first)
			first = false
		}
	}()
	return ln.Addr().(*net.TCPAddr), rel, done
}

// Engine std: a backend's bytes after a complete response, sent while the
// connection is pooled, never answer the next request; the connection is
// dropped, and a warning names the backend's address and the bytes (which
// net/http's own check, when it wins, logs without the address).
func TestStdClient_strayBytesNeverServed(t *testing.T) {
	addr, release, sent := strayBackend(t)
	log, logs := observed()
	opts := fastOpts("app", Target{Scheme: "http", Host: "127.0.0.1", Port: uint16(addr.Port)})
	opts.Engine = EngineStd
	p, err := New(opts, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	requireStd(t, p)
	resp, err := get(t, p, "/first")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "ok" {
		t.Fatalf("first answer %q; want ok", got)
	}
	close(release)
	<-sent
	waitFor(t, "the stray bytes to be noticed", func() bool {
		return len(logs.FilterMessage("backend sent bytes after a complete response; connection closed, not reused").All()) > 0
	})
	resp, err = get(t, p, "/second")
	if err != nil {
		t.Fatal(err)
	}
	if got := body(t, resp); got != "real" {
		t.Fatalf("second answer %q; want real (its own)", got)
	}
	m := logs.FilterMessage("backend sent bytes after a complete response; connection closed, not reused").All()[0].ContextMap()
	if m["address"] != addr.String() || !strings.Contains(m["bytes"].(string), "POISONED") {
		t.Errorf("warning %v; want the address %s and the bytes", m, addr)
	}
}

// A strayConn fails a request whose connection holds unread bytes when the
// request is about to be written, and bytes that come while it is pooled.
func TestStrayConn(t *testing.T) {
	pair := func(t *testing.T) (*strayConn, net.Conn, *[]string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		srv, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(); srv.Close() })
		var seen []string
		return &strayConn{Conn: c, onStray: func(b []byte) { seen = append(seen, string(b)) }}, srv, &seen
	}
	t.Run("pending at the first write", func(t *testing.T) {
		sc, srv, seen := pair(t)
		sc.begin()
		srv.Write([]byte("HTTP/1.1 200 OK\r\n"))
		// The bytes are on the socket once a read would find them.
		waitFor(t, "the bytes to arrive", func() bool { _, ok := peekPending(sc.Conn); return ok })
		if _, err := sc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); !errors.Is(err, errStrayBytes) {
			t.Fatalf("Write = %v; want errStrayBytes", err)
		}
		if len(*seen) != 1 || !strings.HasPrefix((*seen)[0], "HTTP/1.1 200") {
			t.Errorf("onStray got %q; want the bytes", *seen)
		}
	})
	t.Run("read while pooled", func(t *testing.T) {
		sc, srv, seen := pair(t)
		use := sc.begin()
		if _, err := sc.Write([]byte("GET / HTTP/1.1\r\n\r\n")); err != nil {
			t.Fatal(err)
		}
		srv.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
		buf := make([]byte, 64)
		if _, err := sc.Read(buf); err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		sc.pooled(use)
		srv.Write([]byte("HTTP/1.1 200 OK\r\n"))
		sc.SetReadDeadline(time.Now().Add(10 * time.Second)) // a safety net, not a measurement
		if _, err := sc.Read(buf); !errors.Is(err, errStrayBytes) {
			t.Fatalf("Read while pooled = %v; want errStrayBytes", err)
		}
		if len(*seen) != 1 {
			t.Errorf("onStray called %d times; want 1", len(*seen))
		}
	})
	t.Run("a pooled mark from an earlier request is ignored", func(t *testing.T) {
		sc, srv, _ := pair(t)
		old := sc.begin()
		sc.begin() // the next request took the connection first
		sc.pooled(old)
		sc.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
		srv.Write([]byte("HTTP/1.1 204 No Content\r\n\r\n"))
		if _, err := sc.Read(make([]byte, 64)); err != nil {
			t.Fatalf("the answer to the current request: %v; want it read", err)
		}
	})
}
