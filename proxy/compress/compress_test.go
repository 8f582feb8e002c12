package compress

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func decode(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader
	switch enc {
	case "":
		return string(b)
	case Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		r = zr
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		r = zr
	default:
		t.Fatalf("unknown encoding %q", enc)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", enc, err)
	}
	return string(out)
}

// serve runs handler behind c for a request with the given header lines,
// as front.serve does.
func serve(c *Compressor, method string, reqHdr map[string]string, handler http.HandlerFunc) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://x/", nil)
	for k, v := range reqHdr {
		r.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	var w http.ResponseWriter = rec
	func() {
		if cw := c.Wrap(w, r); cw != nil {
			defer cw.Finish()
			w = cw
		}
		handler(w, r)
	}()
	return rec
}

func TestCompress(t *testing.T) {
	body := strings.Repeat("<p>hello, compressible world</p>\n", 100) // 3.3 KB
	c, err := New(&Options{Types: DefaultTypes, MinSize: DefaultMinSize, Encodings: DefaultEncodings})
	if err != nil {
		t.Fatal(err)
	}
	respond := func(status int, hdr ...string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(hdr); i += 2 {
				w.Header().Set(hdr[i], hdr[i+1])
			}
			w.WriteHeader(status)
			if status != 204 && status != 304 {
				io.WriteString(w, body)
			}
		}
	}
	html := []string{"Content-Type", "text/html; charset=utf-8"}
	with := func(extra ...string) []string { return append(append([]string{}, html...), extra...) }
	tests := []struct {
		name    string
		method  string
		accept  string
		reqHdr  map[string]string
		handler http.HandlerFunc
		enc     string // expected Content-Encoding
		vary    bool
		etag    string
	}{
		{name: "gzip", accept: "gzip", handler: respond(200, html...), enc: Gzip, vary: true},
		{name: "zstd-preferred", accept: "gzip, deflate, br, zstd", handler: respond(200, html...), enc: Zstd, vary: true},
		{name: "client-q", accept: "zstd;q=0.1, gzip", handler: respond(200, html...), enc: Gzip, vary: true},
		{name: "q0-all", accept: "gzip;q=0, zstd;q=0", handler: respond(200, html...), vary: false},
		{name: "identity-only", accept: "identity", handler: respond(200, html...)},
		{name: "no-accept", handler: respond(200, html...)},
		{name: "head", method: "HEAD", accept: "gzip", handler: respond(200, html...)},
		{name: "range-request", accept: "gzip", reqHdr: map[string]string{"Range": "bytes=0-10"}, handler: respond(200, html...)},
		{name: "206", accept: "gzip", handler: respond(206, with("Content-Range", "bytes 0-10/3300")...), vary: true},
		{name: "204", accept: "gzip", handler: respond(204, html...), vary: true},
		{name: "304-etag-kept", accept: "gzip", handler: respond(304, with("Etag", `"abc"`)...), vary: true, etag: `"abc"`},
		{name: "not-listed-type", accept: "gzip", handler: respond(200, "Content-Type", "image/png")},
		{name: "no-type", accept: "gzip", handler: respond(200)},
		{name: "already-encoded", accept: "gzip", handler: respond(200, with("Content-Encoding", "br")...), enc: "br"},
		{name: "no-transform", accept: "gzip", handler: respond(200, with("Cache-Control", "public, no-transform")...)},
		{name: "small", accept: "gzip", handler: respond(200, with("Content-Length", "100")...), vary: true},
		{name: "big-enough", accept: "gzip", handler: respond(200, with("Content-Length", strconv.Itoa(len(body)))...), enc: Gzip, vary: true},
		{name: "etag-weakened", accept: "gzip", handler: respond(200, with("Etag", `"v1"`)...), enc: Gzip, vary: true, etag: `W/"v1"`},
		{name: "weak-etag-kept", accept: "gzip", handler: respond(200, with("Etag", `W/"v1"`)...), enc: Gzip, vary: true, etag: `W/"v1"`},
		{name: "vary-kept", accept: "gzip", handler: respond(200, with("Vary", "Cookie")...), enc: Gzip, vary: true},
		{name: "json", accept: "gzip", handler: respond(200, "Content-Type", "application/json"), enc: Gzip, vary: true},
		{name: "implicit-200", accept: "gzip", handler: func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/css")
			io.WriteString(w, body)
		}, enc: Gzip, vary: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			for k, v := range tt.reqHdr {
				hdr[k] = v
			}
			if tt.accept != "" {
				hdr["Accept-Encoding"] = tt.accept
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			rec := serve(c, method, hdr, tt.handler)
			res := rec.Result()
			got := res.Header.Get("Content-Encoding")
			if got != tt.enc {
				t.Fatalf("Content-Encoding %q; want %q", got, tt.enc)
			}
			if tt.enc == Gzip || tt.enc == Zstd {
				if res.Header.Get("Content-Length") != "" {
					t.Errorf("compressed response keeps Content-Length %q", res.Header.Get("Content-Length"))
				}
				if d := decode(t, tt.enc, rec.Body.Bytes()); d != body {
					t.Errorf("decoded body is %d bytes; want the original %d", len(d), len(body))
				}
				if rec.Body.Len() >= len(body) {
					t.Errorf("compressed %d bytes to %d", len(body), rec.Body.Len())
				}
			} else if method != "HEAD" && res.StatusCode != 204 && res.StatusCode != 304 && rec.Body.String() != body {
				t.Errorf("uncompressed body changed: %d bytes", rec.Body.Len())
			}
			vary := strings.Contains(strings.Join(res.Header.Values("Vary"), ","), "Accept-Encoding")
			if vary != tt.vary {
				t.Errorf("Vary %q; want Accept-Encoding: %v", res.Header.Values("Vary"), tt.vary)
			}
			if tt.etag != "" && res.Header.Get("Etag") != tt.etag {
				t.Errorf("ETag %q; want %q", res.Header.Get("Etag"), tt.etag)
			}
		})
	}
}

// A listener or route with encodings: [] compresses nothing, and New says
// so with nil, which Wrap accepts.
func TestNewOff(t *testing.T) {
	c, err := New(&Options{Encodings: []string{}})
	if err != nil || c != nil {
		t.Fatalf("New(no encodings) = %v, %v; want nil, nil", c, err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	if cw := c.Wrap(httptest.NewRecorder(), r); cw != nil {
		t.Fatal("a nil Compressor wrapped a writer")
	}
	if _, err := New(&Options{Encodings: []string{"br"}}); err == nil {
		t.Fatal("New accepted br")
	}
}

// flushRecorder records what reached the client at each flush.
type flushRecorder struct {
	*httptest.ResponseRecorder
	atFlush []int
}

func (f *flushRecorder) Flush() {
	f.atFlush = append(f.atFlush, f.Body.Len())
	f.ResponseRecorder.Flush()
}

// Streaming: each flush pushes what was written so far through the
// encoder to the client, so that every event of an event stream can be
// decoded when it is flushed.
func TestFlushPassesThrough(t *testing.T) {
	for _, enc := range []string{Gzip, Zstd} {
		t.Run(enc, func(t *testing.T) {
			c, _ := New(&Options{Types: []string{"text/event-stream"}, Encodings: []string{enc}})
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept-Encoding", enc)
			fr := &flushRecorder{ResponseRecorder: httptest.NewRecorder()}
			cw := c.Wrap(fr, r)
			cw.Header().Set("Content-Type", "text/event-stream")
			var want string
			for i := range 3 {
				ev := "data: event " + strconv.Itoa(i) + "\n\n"
				want += ev
				io.WriteString(cw, ev)
				if err := http.NewResponseController(cw).Flush(); err != nil {
					t.Fatal(err)
				}
				if got := decodePrefix(t, enc, fr.Body.Bytes()); got != want {
					t.Fatalf("after flush %d the client can decode %q; want %q", i, got, want)
				}
			}
			cw.Finish()
			if len(fr.atFlush) != 3 {
				t.Errorf("%d flushes reached the client; want 3", len(fr.atFlush))
			}
			if got := decode(t, enc, fr.Body.Bytes()); got != want {
				t.Errorf("whole stream %q; want %q", got, want)
			}
		})
	}
}

// decodePrefix decodes as much of an unfinished stream as it can.
func decodePrefix(t *testing.T, enc string, b []byte) string {
	t.Helper()
	var r io.Reader
	if enc == Gzip {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	} else {
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	var out bytes.Buffer
	io.Copy(&out, r) // ends with an unexpected EOF: the stream is not finished
	return out.String()
}

// A handler that panics (http.ErrAbortHandler: the backend broke off)
// leaves the stream unfinished, so the client cannot take it for
// complete, and the panic goes on to the server.
func TestAbortLeavesStreamUnfinished(t *testing.T) {
	c, _ := New(&Options{Types: []string{"text/plain"}, Encodings: []string{Gzip}})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		cw := c.Wrap(rec, r)
		defer cw.Finish()
		cw.Header().Set("Content-Type", "text/plain")
		io.WriteString(cw, strings.Repeat("x", 5000))
		cw.Flush()
		panic(http.ErrAbortHandler)
	}()
	if recovered != http.ErrAbortHandler {
		t.Fatalf("recovered %v; want http.ErrAbortHandler passed on", recovered)
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(zr); err == nil {
		t.Error("the cut-off stream decodes as complete")
	}
}

// A compressed response costs no allocation beyond the encoder's own once
// the pools are warm.
func TestWrapAllocs(t *testing.T) {
	c, _ := New(&Options{Types: DefaultTypes, MinSize: 0, Encodings: DefaultEncodings})
	body := []byte(strings.Repeat("hello world ", 200))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	w := &discardWriter{h: http.Header{}}
	n := testing.AllocsPerRun(50, func() {
		clear(w.h)
		cw := c.Wrap(w, r)
		cw.Header()["Content-Type"] = []string{"text/html"}
		cw.Write(body)
		cw.Finish()
	})
	// The header values the response gets: Content-Encoding and Vary.
	if n > 3 {
		t.Errorf("%v allocations per compressed response; want at most 3", n)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

func BenchmarkCompress(b *testing.B) {
	page := []byte(strings.Repeat("<div class=\"row\"><a href=\"/item/42\">Item forty-two</a> <span>€ 12.50</span></div>\n", 240)) // ~20 KiB
	for _, enc := range []string{Gzip, Zstd} {
		b.Run(enc+"-20KiB", func(b *testing.B) {
			c, _ := New(&Options{Types: DefaultTypes, Encodings: []string{enc}})
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept-Encoding", enc)
			w := &discardWriter{h: http.Header{}}
			b.SetBytes(int64(len(page)))
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				cw := c.Wrap(w, r)
				cw.Header()["Content-Type"] = []string{"text/html"}
				cw.Write(page)
				cw.Finish()
			}
		})
	}
	b.Run("not-accepted", func(b *testing.B) {
		c, _ := New(&Options{Types: DefaultTypes, Encodings: DefaultEncodings})
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Encoding", "br")
		b.ReportAllocs()
		for b.Loop() {
			if c.Wrap(nil, r) != nil {
				b.Fatal("wrapped")
			}
		}
	})
}

// At MaxInFlight responses being compressed, the next goes out as it is,
// and a finished one frees its place.
func TestInFlightBound(t *testing.T) {
	c, _ := New(&Options{Types: DefaultTypes, Encodings: DefaultEncodings})
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept-Encoding", "gzip")
	var held []*Writer
	for range MaxInFlight {
		cw := c.Wrap(httptest.NewRecorder(), r)
		if cw == nil {
			t.Fatalf("refused after %d", len(held))
		}
		held = append(held, cw)
	}
	if cw := c.Wrap(httptest.NewRecorder(), r); cw != nil {
		t.Fatalf("response %d wrapped; want it sent as it is", MaxInFlight+1)
	}
	held[0].Finish()
	cw := c.Wrap(httptest.NewRecorder(), r)
	if cw == nil {
		t.Fatal("no place after one finished")
	}
	cw.Finish()
	for _, cw := range held[1:] {
		cw.Finish()
	}
}
