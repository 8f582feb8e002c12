package upstream

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestPool_unsolicitedBytesLogged: a backend that sends a second response
// nobody asked for after its first has the connection closed instead of
// that response served to the next request, and the pool logs a warning
// naming the upstream, the address and the bytes.
func TestPool_unsolicitedBytesLogged(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	served := 0 // requests answered, guarded by mu
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					mu.Lock()
					served++
					first := served == 1
					mu.Unlock()
					resp := "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nreal"
					if first {
						resp = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" +
							"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED"
					}
					if _, err := c.Write([]byte(resp)); err != nil {
						return
					}
				}
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	log, logs := observed()
	p, err := New(fastOpts("app", Target{Scheme: "http", Host: "127.0.0.1", Port: uint16(port)}), nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i, want := range []string{"ok", "real"} {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := body(t, resp); got != want {
			t.Fatalf("request %d answered %q; want %q", i, got, want)
		}
	}
	entries := logs.FilterMessage("backend sent bytes after a complete response; connection closed, not reused").All()
	if len(entries) != 1 {
		t.Fatalf("%d warnings about the stray bytes; want 1 (log: %v)", len(entries), logs.All())
	}
	m := entries[0].ContextMap()
	if entries[0].Level.String() != "warn" || m["upstream"] != "app" || m["address"] != ln.Addr().String() ||
		!strings.Contains(m["bytes"].(string), "POISONED") {
		t.Errorf("warning %v %v; want warn with upstream app, address %s and the bytes", entries[0].Level, m, ln.Addr())
	}
}
