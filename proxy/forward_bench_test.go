package proxy

import (
	"net/http"
	"net/netip"
	"testing"
)

// BenchmarkHeaderRewrite: the header rules of a proxied request, both ways.
// request: a browser's GET behind an ELB (trusted, with its X-Forwarded-*)
// becomes the outbound header (hop-by-hop and Connection-listed fields out,
// X-Forwarded-* rewritten). response: an nginx-like response header loses
// its hop-by-hop fields and moves into the client's response header.
func BenchmarkHeaderRewrite(b *testing.B) {
	f := &front{trusted: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	in := &http.Request{
		Method: http.MethodGet, Host: "www.example.com", RemoteAddr: "10.0.3.7:41000",
		Header: http.Header{
			"Accept":            {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"},
			"Accept-Encoding":   {"gzip, deflate, br"},
			"Accept-Language":   {"ko-KR,ko;q=0.9,en-US;q=0.8"},
			"Connection":        {"keep-alive"},
			"Cookie":            {"JSESSIONID=ABC123.node1; _ga=GA1.2.3"},
			"User-Agent":        {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"},
			"X-Forwarded-For":   {"203.0.113.9"},
			"X-Forwarded-Port":  {"443"},
			"X-Forwarded-Proto": {"https"},
			"X-Amzn-Trace-Id":   {"Root=1-67891233-abcdef012345678912345678"},
		},
	}
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		out := new(http.Request)
		for b.Loop() {
			out.Header = outboundHeader(in.Header, false, "")
			f.setForwarded(in, out)
		}
		if got := out.Header["X-Forwarded-For"]; len(got) != 1 || got[0] != "203.0.113.9, 10.0.3.7" || out.Header["Connection"] != nil {
			b.Fatalf("outbound header %v", out.Header)
		}
	})
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		res := http.Header{
			"Server":         {"nginx"},
			"Date":           {"Sat, 05 Dec 2026 23:50:00 GMT"},
			"Content-Type":   {"text/plain"},
			"Content-Length": {"100"},
			"Last-Modified":  {"Sat, 05 Dec 2026 20:00:00 GMT"},
			"Etag":           {`"6939f0a0-64"`},
			"Accept-Ranges":  {"bytes"},
		}
		conn, ka := []string{"keep-alive"}, []string{"timeout=60"}
		dst := http.Header{}
		for b.Loop() {
			// The backend's hop-by-hop fields, back in place (no allocation:
			// the map has room for them).
			res["Connection"], res["Keep-Alive"] = conn, ka
			removeHopByHop(res)
			clear(dst)
			moveHeader(dst, res)
		}
		if dst["Keep-Alive"] != nil || dst["Connection"] != nil || dst["Etag"] == nil {
			b.Fatalf("client header %v", dst)
		}
	})
}
