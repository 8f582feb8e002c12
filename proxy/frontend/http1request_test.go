package frontend

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// parseRequestCases are request heads (and what follows them) that
// parseRequest must either read exactly as http.ReadRequest does or leave
// to it.
var parseRequestCases = []struct {
	name string
	raw  string
	fast bool // parseRequest takes it
}{
	{"get", "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n", true},
	{"query", "GET /search?q=a+b&x=%20y HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"escaped-path", "GET /a%2Fb/%7Euser HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"double-slash", "GET //evil.example/x HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"force-query", "GET /x? HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"head", "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"delete-length-0", "DELETE /r/1 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", true},
	{"extension-method", "PURGE /x HTTP/1.1\r\nHost: h\r\n\r\n", true},
	{"http-1.0", "GET / HTTP/1.0\r\n\r\n", true},
	{"http-1.0-keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
	{"close", "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", true},
	{"no-host-1.1", "GET / HTTP/1.1\r\n\r\n", true}, // the server's check refuses it, not the parser
	{"non-canonical", "GET / HTTP/1.1\r\nhost: h\r\nx-forwarded-FOR: 10.0.0.1\r\ncookie: a=1\r\nCookie: b=2\r\n\r\n", true},
	{"values-trimmed", "GET / HTTP/1.1\r\nHost:h\r\nX-A: \t v \t\r\nX-B:\r\n\r\n", true},
	{"obs-text", "GET / HTTP/1.1\r\nHost: h\r\nX-A: caf\xc3\xa9\r\n\r\n", true},
	{"pipelined", "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n", true},

	// Left to http.ReadRequest.
	{"post-body", "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na=1", false},
	{"chunked", "POST /f HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", false},
	{"te-http-1.0", "GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", false},
	{"length-twice", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", false},
	{"bad-length", "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", false},
	{"two-hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", false},
	{"absolute-form", "GET http://example.com/x HTTP/1.1\r\nHost: other\r\n\r\n", false},
	{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"connect", "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", false},
	{"connect-path", "CONNECT /rpc HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"pragma", "GET / HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\n\r\n", false},
	{"trailer", "GET / HTTP/1.1\r\nHost: h\r\nTrailer: X\r\n\r\n", false},
	{"bad-escape", "GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"control-in-target", "GET /a\x01b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"http-2", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", false},
	{"extra-space", "GET /  HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"space-in-target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"bad-method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", false},
	{"obs-fold", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n 2\r\n\r\n", false},
	{"space-before-colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", false},
	{"bare-cr", "GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r2\r\n\r\n", false},
	{"bare-lf", "GET / HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n", false},
}

// TestParseRequest checks parseRequest against http.ReadRequest: what it
// takes must come out field for field as ReadRequest reads it, with the
// same bytes left for the next request; what it leaves must be left
// unread.
func TestParseRequest(t *testing.T) {
	for _, tc := range parseRequestCases {
		t.Run(tc.name, func(t *testing.T) {
			fast, ok := compareParseRequest(t, tc.raw)
			if !ok {
				t.Fatalf("no CRLF CRLF in %q", tc.raw)
			}
			if fast != tc.fast {
				t.Errorf("parseRequest took it: %v; want %v", fast, tc.fast)
			}
		})
	}
}

// FuzzParseRequest: for any head, parseRequest either declines without
// reading or agrees with http.ReadRequest.
func FuzzParseRequest(f *testing.F) {
	for _, tc := range parseRequestCases {
		f.Add(tc.raw)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		compareParseRequest(t, raw)
	})
}

// compareParseRequest runs parseRequest on the head at the start of raw
// and, if it took it, checks the result against http.ReadRequest's. It
// reports whether parseRequest took it, and false for ok when raw has no
// whole head.
func compareParseRequest(t *testing.T, raw string) (fast, ok bool) {
	t.Helper()
	i := strings.Index(raw, "\r\n\r\n")
	if i < 0 {
		return false, false
	}
	size := i + 4
	br := bufio.NewReaderSize(strings.NewReader(raw), len(raw)+16)
	br.Peek(size)
	var got http.Request
	if !parseRequest(br, size, &got) {
		if br.Buffered() != len(raw) {
			t.Errorf("declined, but consumed %d bytes", len(raw)-br.Buffered())
		}
		return false, true
	}
	gotRest, _ := io.ReadAll(br)

	wbr := bufio.NewReader(strings.NewReader(raw))
	want, err := http.ReadRequest(wbr)
	if err != nil {
		t.Fatalf("parseRequest took a head http.ReadRequest refuses (%v):\n%q", err, raw)
	}
	wantBody, _ := io.ReadAll(want.Body)
	wantRest, _ := io.ReadAll(wbr)

	if got.Method != want.Method || got.RequestURI != want.RequestURI || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor || got.Host != want.Host ||
		got.ContentLength != want.ContentLength || got.Close != want.Close {
		t.Errorf("for %q\n got %q %q %q %d.%d host %q length %d close %v\nwant %q %q %q %d.%d host %q length %d close %v", raw,
			got.Method, got.RequestURI, got.Proto, got.ProtoMajor, got.ProtoMinor, got.Host, got.ContentLength, got.Close,
			want.Method, want.RequestURI, want.Proto, want.ProtoMajor, want.ProtoMinor, want.Host, want.ContentLength, want.Close)
	}
	if !reflect.DeepEqual(got.URL, want.URL) {
		t.Errorf("for %q\nURL %#v\nwant %#v", raw, got.URL, want.URL)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Errorf("for %q\nheader %q\n  want %q", raw, got.Header, want.Header)
	}
	if got.Body != http.NoBody || want.Body != http.NoBody || len(wantBody) != 0 {
		t.Errorf("body %T / %T (%q); want http.NoBody", got.Body, want.Body, wantBody)
	}
	if got.Trailer != nil || want.Trailer != nil || got.TransferEncoding != nil || want.TransferEncoding != nil {
		t.Errorf("trailer %v / %v, transfer-encoding %v / %v; want none",
			got.Trailer, want.Trailer, got.TransferEncoding, want.TransferEncoding)
	}
	if !bytes.Equal(gotRest, wantRest) {
		t.Errorf("after the head %q; want %q", gotRest, wantRest)
	}
	return true, true
}

// curlHead is a request head as a browser-less client sends it, with the
// headers an ELB adds.
const curlHead = "GET /app/index.html?lang=en HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\n" +
	"Accept: */*\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Port: 443\r\n" +
	"X-Amzn-Trace-Id: Root=1-67891233-abcdef012345678912345678\r\n\r\n"

// BenchmarkParseRequest compares parseRequest with http.ReadRequest.
func BenchmarkParseRequest(b *testing.B) {
	rd := strings.NewReader(curlHead)
	br := bufio.NewReaderSize(rd, fastHeadSize)
	b.Run("parseRequest", func(b *testing.B) {
		b.ReportAllocs()
		var req http.Request
		for b.Loop() {
			rd.Reset(curlHead)
			br.Reset(rd)
			if !parseRequest(br, len(curlHead), &req) {
				b.Fatal("declined")
			}
		}
	})
	b.Run("http.ReadRequest", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(curlHead)
			br.Reset(rd)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}
