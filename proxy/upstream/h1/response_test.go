package h1

import (
	"bufio"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// parseHeadCases are response heads (and what follows them) that parseHead
// must either read exactly as http.ReadResponse does or leave to it.
var parseHeadCases = []struct {
	name string
	raw  string
	head bool // the request was HEAD
	fast bool // parseHead takes it
}{
	{"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello", false, true},
	{"no-reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"reason-trailing-space", "HTTP/1.1 404 Not Found \r\nContent-Length: 0\r\n\r\n", false, true},
	{"values-trimmed", "HTTP/1.1 200 OK\r\nX-A:   spaced \t \r\nX-B:\r\nContent-Length:\t2 \r\n\r\nok", false, true},
	{"repeated-field", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", false, true},
	{"non-canonical-names", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-custom-THING: v\r\nETAG: \"e\"\r\n\r\nok", false, true},
	{"obs-text", "HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", false, true},
	{"connection-close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"connection-keep-alive", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"http-1.0", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"http-1.0-keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok", false, true},
	{"head-with-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, true},
	{"head-without-length", "HTTP/1.1 200 OK\r\n\r\n", true, true},
	{"no-content", "HTTP/1.1 204 No Content\r\n\r\n", false, true},
	{"not-modified-with-length", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false, true},
	{"zero-length", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", false, true},
	{"next-response-buffered", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n\r\n", false, true},
	{"no-fields", "HTTP/1.1 500 Oops\r\n\r\n", true, true},

	// Left to http.ReadResponse.
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false, false},
	{"chunked-and-length", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false, false},
	{"close-delimited", "HTTP/1.1 200 OK\r\n\r\nhello", false, false},
	{"trailer-announced", "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"pragma", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"duplicate-length-equal", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"duplicate-length-differ", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false, false},
	{"bad-length", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", false, false},
	{"signed-length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false, false},
	{"empty-length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok", false, false},
	{"huge-length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\nok", false, false},
	{"continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, false},
	{"switching", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false, false},
	{"bare-lf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", false, false},
	{"bare-lf-in-field", "HTTP/1.1 200 OK\r\nX-A: 1\nContent-Length: 2\r\n\r\nok", false, false},
	{"bare-cr-in-value", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"space-before-colon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", false, false},
	{"no-colon", "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\nok", false, false},
	{"nul-in-value", "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"http-2", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"http-1.2", "HTTP/1.2 200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"two-spaces", "HTTP/1.1  200 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"short-code", "HTTP/1.1 20 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"long-code", "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", false, false},
	{"head-incomplete", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", false, false},
}

// TestParseHead checks parseHead against http.ReadResponse: what it takes
// must come out field for field as ReadResponse reads it, body and what
// follows included; what it leaves must be left unread.
func TestParseHead(t *testing.T) {
	for _, tc := range parseHeadCases {
		t.Run(tc.name, func(t *testing.T) {
			fast := compareParseHead(t, tc.raw, tc.head)
			if fast != tc.fast {
				t.Errorf("parseHead took it: %v; want %v", fast, tc.fast)
			}
		})
	}
}

// FuzzParseHead: for any input, parseHead either declines without reading
// or agrees with http.ReadResponse.
func FuzzParseHead(f *testing.F) {
	for _, tc := range parseHeadCases {
		f.Add(tc.raw, tc.head)
	}
	f.Fuzz(func(t *testing.T, raw string, head bool) {
		compareParseHead(t, raw, head)
	})
}

// compareParseHead runs parseHead on raw and, if it took the head, checks
// the result against http.ReadResponse's. It reports whether parseHead
// took it.
func compareParseHead(t *testing.T, raw string, head bool) bool {
	t.Helper()
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	req, _ := http.NewRequest(method, "http://b/", nil)

	br := bufio.NewReaderSize(strings.NewReader(raw), readBufSize)
	br.Peek(1)
	ex := &exchange{req: req, method: method, pc: &persistConn{br: br}}
	ex.body.ex = ex
	got, fast := ex.parseHead(br)
	if !fast {
		if n := br.Buffered(); n != min(len(raw), readBufSize) {
			t.Errorf("declined, but consumed %d bytes", min(len(raw), readBufSize)-n)
		}
		return false
	}
	var gotBody []byte
	var gotErr error
	if got.Body == &ex.body {
		// body.Read would hand the connection to a pool there is none of.
		gotBody, gotErr = io.ReadAll(readerFunc(ex.body.readFixed))
	} else {
		gotBody, gotErr = io.ReadAll(got.Body)
	}
	gotRest, _ := io.ReadAll(br)

	wbr := bufio.NewReader(strings.NewReader(raw))
	want, err := http.ReadResponse(wbr, req)
	if err != nil {
		t.Fatalf("parseHead took a head http.ReadResponse refuses (%v):\n%q", err, raw)
	}
	wantBody, wantErr := io.ReadAll(want.Body)
	wantRest, _ := io.ReadAll(wbr)

	if got.Status != want.Status || got.StatusCode != want.StatusCode || got.Proto != want.Proto ||
		got.ProtoMajor != want.ProtoMajor || got.ProtoMinor != want.ProtoMinor ||
		got.ContentLength != want.ContentLength || got.Close != want.Close || got.Request != want.Request {
		t.Errorf("for %q\n got %q %d %q %d.%d length %d close %v\nwant %q %d %q %d.%d length %d close %v", raw,
			got.Status, got.StatusCode, got.Proto, got.ProtoMajor, got.ProtoMinor, got.ContentLength, got.Close,
			want.Status, want.StatusCode, want.Proto, want.ProtoMajor, want.ProtoMinor, want.ContentLength, want.Close)
	}
	if !reflect.DeepEqual(got.Header, want.Header) {
		t.Errorf("for %q\nheader %q\n  want %q", raw, got.Header, want.Header)
	}
	if got.Trailer != nil || got.TransferEncoding != nil || want.Trailer != nil || want.TransferEncoding != nil {
		t.Errorf("trailer %v / %v, transfer-encoding %v / %v; want none",
			got.Trailer, want.Trailer, got.TransferEncoding, want.TransferEncoding)
	}
	if (got.Body == http.NoBody) != (want.Body == http.NoBody) {
		t.Errorf("body is NoBody: %v; want %v", got.Body == http.NoBody, want.Body == http.NoBody)
	}
	if string(gotBody) != string(wantBody) || (gotErr == nil) != (wantErr == nil) {
		t.Errorf("body %q (%v); want %q (%v)", gotBody, gotErr, wantBody, wantErr)
	}
	if string(gotRest) != string(wantRest) {
		t.Errorf("after the response %q; want %q", gotRest, wantRest)
	}
	return true
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// nginxHead is a response head as nginx sends it for a static file.
const nginxHead = "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Sat, 05 Dec 2026 16:00:00 GMT\r\n" +
	"Content-Type: text/plain\r\nContent-Length: 100\r\nLast-Modified: Sat, 05 Dec 2026 01:26:37 GMT\r\n" +
	"Connection: keep-alive\r\nETag: \"6931b5ad-64\"\r\nAccept-Ranges: bytes\r\n\r\n"

// BenchmarkParseHead compares parseHead with http.ReadResponse on the
// head of a typical static-file response.
func BenchmarkParseHead(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://b/", nil)
	rd := strings.NewReader(nginxHead)
	br := bufio.NewReaderSize(rd, readBufSize)
	b.Run("parseHead", func(b *testing.B) {
		b.ReportAllocs()
		ex := &exchange{req: req, method: http.MethodGet} // one per request in RoundTrip anyway
		for b.Loop() {
			rd.Reset(nginxHead)
			br.Reset(rd)
			br.Peek(1)
			if _, ok := ex.parseHead(br); !ok {
				b.Fatal("declined")
			}
		}
	})
	b.Run("http.ReadResponse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rd.Reset(nginxHead)
			br.Reset(rd)
			if _, err := http.ReadResponse(br, req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
