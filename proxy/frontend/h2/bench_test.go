package h2

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"testing"
)

// BenchmarkServer measures requests through the server over TLS on
// 127.0.0.1 with Go's HTTP/2 client, several streams at once on one
// connection: a small response (headers, body and end in one write), a
// 256 KiB one within the client's windows (4 MiB a stream), and the same
// with a 64 KiB stream window, so that responses wait for window.
func BenchmarkServer(b *testing.B) {
	for _, bc := range []struct {
		size   int
		window int32 // the client's stream window (0: its default)
	}{{64, 0}, {256 << 10, 0}, {256 << 10, 64 << 10}} {
		name := "body=" + strconv.Itoa(bc.size)
		if bc.window > 0 {
			name += ",window=" + strconv.Itoa(int(bc.window))
		}
		b.Run(name, func(b *testing.B) {
			body := bytes.Repeat([]byte("x"), bc.size)
			e := h2tStart(b, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				w.Write(body) //nolint:errcheck // the client reads it
			}))
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: e.pool},
				ForceAttemptHTTP2: true,
				HTTP2:             &http.HTTP2Config{MaxReceiveBufferPerStream: int(bc.window)},
			}
			b.Cleanup(tr.CloseIdleConnections)
			client := &http.Client{Transport: tr}
			url := e.url("/")
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get(url)
					if err != nil {
						b.Error(err)
						return
					}
					n, _ := io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if n != int64(bc.size) || res.ProtoMajor != 2 {
						b.Errorf("got %d bytes over %s; want %d over HTTP/2", n, res.Proto, bc.size)
						return
					}
				}
			})
		})
	}
}
