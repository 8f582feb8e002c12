package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/accesslog"
)

// benchBackend answers every HTTP/1.1 request on a kept-alive connection
// with a fixed 100-byte response, allocating nothing per request, so that
// a benchmark's allocations are the proxy's own.
func benchBackend(tb testing.TB) (port uint16) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\n" + string(bytes.Repeat([]byte("x"), 100)))
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, 64<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if i < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						n = copy(buf, buf[i+4:n])
					}
				}
			}()
		}
	}()
	return uint16(ln.Addr().(*net.TCPAddr).Port)
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// benchServeHTTP runs GET requests through h.ServeHTTP, in process, to a
// raw backend: what the proxy costs per request, without a client's.
func benchServeHTTP(b *testing.B, opts Options) {
	port := benchBackend(b)
	opts.Listeners = []ListenerOptions{{Name: "bench", Address: "127.0.0.1:0"}}
	if opts.Routes == nil {
		opts.Routes = []RouteOptions{{PathPrefix: "/", Upstream: "app"}}
	}
	opts.Upstreams = []UpstreamOptions{{Name: "app", Targets: []TargetOptions{{Scheme: "http", Host: "127.0.0.1", Port: port}}}}
	h, err := NewHandler(opts, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	req := httptest.NewRequest("GET", "http://example.com/app/page?x=1", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	req.Header.Set("User-Agent", "bench/1")
	req.Header.Set("Referer", "http://example.com/")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}

func BenchmarkServeHTTP(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchServeHTTP(b, Options{}) })
	b.Run("request_id", func(b *testing.B) {
		benchServeHTTP(b, Options{RequestID: RequestIDOptions{Header: DefaultRequestIDHeader}})
	})
	for _, f := range []accesslog.Format{accesslog.FormatCombined, accesslog.FormatJSON} {
		b.Run("request_id+log_"+f.String(), func(b *testing.B) {
			w, err := accesslog.New(accesslog.Options{Path: "stdout", Stdout: io.Discard})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			benchServeHTTP(b, Options{RequestID: RequestIDOptions{Header: DefaultRequestIDHeader},
				AccessLog: w, AccessLogFormat: f})
		})
	}
	b.Run("request_id+log+metrics", func(b *testing.B) {
		w, err := accesslog.New(accesslog.Options{Path: "stdout", Stdout: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		defer w.Close()
		benchServeHTTP(b, Options{RequestID: RequestIDOptions{Header: DefaultRequestIDHeader},
			AccessLog: w, AccessLogFormat: accesslog.FormatCombined, RequestMetrics: NewMetrics(prometheus.NewRegistry())})
	})
}
