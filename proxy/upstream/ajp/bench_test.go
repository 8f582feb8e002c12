package ajp

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/webtier/webtier/proxy/proxytest"
)

func BenchmarkEncodeForwardRequest(b *testing.B) {
	b.Run("codec", func(b *testing.B) {
		r := &ForwardRequest{
			Method: "GET", Protocol: "HTTP/1.1", URI: "/app/item/42",
			RemoteAddr: "192.0.2.7", RemoteHost: "192.0.2.7", ServerName: "www.example.com", ServerPort: 443,
			IsSSL: true, Host: "www.example.com", ContentLength: -1, Header: proxytest.BrowserHeader(),
			Secret: "s3cret-ajp", QueryString: "view=full&page=2", Route: "node1",
			SSLCipher: "TLS_AES_128_GCM_SHA256", SSLKeySize: 128, SSLProtocol: "TLSv1.3",
			RemotePort: "41234", LocalAddr: "10.0.0.5",
		}
		buf := make([]byte, 0, DefaultPacketSize)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = AppendForwardRequest(buf[:0], r, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
	b.Run("from-http-request", func(b *testing.B) {
		tr := NewTransport(Options{Secret: "s3cret-ajp", Dial: func(context.Context) (net.Conn, error) { return nil, io.EOF }})
		req := httptest.NewRequest("GET", "http://www.example.com/app/item/42?view=full&page=2", nil)
		req.RemoteAddr = "192.0.2.7:41234"
		req.Header = proxytest.BrowserHeader()
		ctx := context.WithValue(req.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 5), Port: 80})
		req = req.WithContext(WithRoute(ctx, "node1"))
		buf := make([]byte, 0, DefaultPacketSize)
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = tr.encode(buf[:0], req, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(len(buf)))
	})
}

func BenchmarkReadResponse(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 3*8184)
	wire := appendSendHeaders(nil, 200, "200",
		respHeader{Code: RespContentType, Value: "text/html;charset=UTF-8"},
		respHeader{Code: RespContentLength, Value: "24552"},
		respHeader{Code: RespDate, Value: "Tue, 01 Jul 2025 10:00:00 GMT"},
		respHeader{Code: RespSetCookie, Value: "JSESSIONID=0123456789ABCDEF; Path=/app; HttpOnly"},
		respHeader{Name: "Cache-Control", Value: "no-cache"},
		respHeader{Name: "X-Frame-Options", Value: "SAMEORIGIN"},
	)
	for rest := body; len(rest) > 0; rest = rest[8184:] {
		wire = appendBodyChunk(wire, rest[:8184])
	}
	wire = appendEndResponse(wire, true)

	r := bytes.NewReader(wire)
	fr := NewFramer(nil, r, 0)
	b.SetBytes(int64(len(wire)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(wire)
		for {
			p, err := fr.ReadPacket()
			if err != nil {
				b.Fatal(err)
			}
			if _, ok := p.(*EndResponsePacket); ok {
				break
			}
		}
	}
}

// BenchmarkRoundTrip is a whole GET over a pooled loopback connection to
// the fake container (which allocates too: it decodes the request fully).
func BenchmarkRoundTrip(b *testing.B) {
	fc := newFakeContainer(b, func(c *cconn, _ *decodedRequest, _ []byte) error {
		return c.respond(200, []respHeader{{Code: RespContentType, Value: "text/plain"}}, []byte("hello"), 8184, true)
	})
	tr := fc.transport(Options{})
	req := httptest.NewRequest("GET", "http://www.example.com/app/item/42?view=full", nil)
	req.Header = proxytest.BrowserHeader()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}
