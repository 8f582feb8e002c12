package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
)

// rawHoldServer answers one GET per connection once n requests have
// arrived together, and then holds the connection open without a
// goroutine or a buffer, so that what it costs in the process is a socket
// and nothing more.
type rawHoldServer struct {
	ln   net.Listener
	mu   sync.Mutex
	held []net.Conn
}

func startRawHoldServer(b *testing.B, n int) *rawHoldServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	s := &rawHoldServer{ln: ln}
	all := make(chan struct{})
	var arrived sync.WaitGroup
	arrived.Add(n)
	go func() { arrived.Wait(); close(all) }()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				br := bufio.NewReaderSize(c, 512)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						c.Close()
						return
					}
					if line == "\r\n" {
						break
					}
				}
				arrived.Done()
				<-all
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				s.mu.Lock()
				s.held = append(s.held, c)
				s.mu.Unlock()
			}()
		}
	}()
	b.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.held {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

// inUse is the Go heap and stacks in use after a collection, in bytes.
func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// BenchmarkIdleConnMemory measures what one idle pooled backend connection
// costs the process: it opens idleConns connections through a Pool with
// defaults (idleConns requests in flight together, to a server on
// 127.0.0.1 that holds its ends without a goroutine) and reports the Go
// heap and stacks they hold per connection once the requests are done.
// The server's end (a socket, a few hundred bytes) is included; kernel
// socket memory is not. The resident set is not reported: the Go runtime
// keeps the memory the wave of requests used for a while, so it shows the
// wave, not the idle connections. Run with -benchtime=1x.
func BenchmarkIdleConnMemory(b *testing.B) {
	const idleConns = 4000 // two descriptors each, in one process
	for range b.N {
		s := startRawHoldServer(b, idleConns)
		port := uint16(s.ln.Addr().(*net.TCPAddr).Port)
		p, err := New(Options{Name: "app", Targets: []Target{{Scheme: "http", Host: "127.0.0.1", Port: port}}}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		before := inUse()
		var wg sync.WaitGroup
		for range idleConns {
			wg.Go(func() {
				req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://app/", nil)
				resp, err := p.RoundTrip(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
		after := inUse()
		if n := p.opts.IdleLimit.Idle(); n != idleConns {
			b.Fatalf("%d idle connections pooled; want %d", n, idleConns)
		}
		b.ReportMetric(float64(after-before)/idleConns, "go-B/conn")
		p.Close()
	}
}
