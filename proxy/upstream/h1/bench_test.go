package h1

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/webtier/webtier/proxy/proxytest"
)

const benchResponse = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n" +
	"Date: Mon, 02 Jun 2025 10:00:00 GMT\r\nContent-Length: 5\r\n\r\nhello"

// benchPeer answers every request with benchResponse, allocating nothing
// per request, so that the benchmark's allocations are the client's.
func benchPeer(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 8<<10)
				resp := []byte(benchResponse)
				for {
					for { // the head, up to its empty line
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) == 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkRoundTrip is a whole proxied-style GET over a pooled loopback
// connection: h1.Transport against net/http's Transport set up as the
// upstream pool sets it up. Run with -benchmem; allocs/op are the
// client's only (the peer allocates nothing per request).
func BenchmarkRoundTrip(b *testing.B) {
	addr := benchPeer(b)
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", addr)
	}
	transports := []struct {
		name string
		rt   interface {
			http.RoundTripper
			CloseIdleConnections()
		}
	}{
		{"h1", NewTransport(Options{Dial: dial})},
		{"net-http", &http.Transport{
			DialContext:         func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
			MaxIdleConnsPerHost: 64,
			DisableCompression:  true,
		}},
	}
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			defer tr.rt.CloseIdleConnections()
			// Like the proxy's outbound request: a context that can be
			// cancelled (the client's), so the cancellation watch is paid.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/app/item/42?view=full", nil)
			req.Host = "www.example.com"
			req.Header = proxytest.BrowserHeader()
			b.ReportAllocs()
			for b.Loop() {
				resp, err := tr.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkReuseCheck is the check of a pooled connection before its
// reuse (an idle loopback connection with nothing to read): "separate" is
// the check on its own (a RawConn round trip and a peek), as a request
// with a body pays it; "in-flush" is the peek alone, as flushAwait pays it
// inside the callback that writes the request.
func BenchmarkReuseCheck(b *testing.B) {
	addr := benchPeer(b)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	tr := NewTransport(Options{Dial: func(context.Context) (net.Conn, error) { return conn, nil }})
	pc := newPersistConn(tr, conn)
	b.Run("separate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !pc.fit() {
				b.Fatal("idle connection found unfit")
			}
		}
	})
	b.Run("in-flush", func(b *testing.B) {
		b.ReportAllocs()
		pc.Probe.Raw(conn).Read(func(fd uintptr) bool {
			for b.Loop() {
				if !pc.Probe.Fit(pc.Probe.Look(fd), nil) {
					b.Fatal("idle connection found unfit")
				}
			}
			return true
		})
	})
}
