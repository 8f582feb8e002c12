package frontend

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/internal/httplex"
)

// BenchmarkWriter is one typical proxied response through the HTTP/1
// response writer: a backend's eight header fields, a 100-byte body with
// its Content-Length.
func BenchmarkWriter(b *testing.B) {
	req, _ := http.NewRequest(http.MethodGet, "http://a/", nil)
	bw := bufio.NewWriterSize(io.Discard, 4096)
	var closing atomic.Bool
	var w fastWriter
	body := []byte(strings.Repeat("x", 100))
	b.ReportAllocs()
	for b.Loop() {
		w.reset(bw, req, &closing)
		h := w.Header()
		h["Content-Type"] = []string{"text/html;charset=UTF-8"}
		h["Content-Length"] = []string{"100"}
		h["Cache-Control"] = []string{"no-cache, no-store"}
		h["Set-Cookie"] = []string{"JSESSIONID=0123456789ABCDEF0123456789ABCDEF; Path=/; HttpOnly"}
		h["Vary"] = []string{"Accept-Encoding"}
		h["X-Content-Type-Options"] = []string{"nosniff"}
		h["X-Frame-Options"] = []string{"SAMEORIGIN"}
		h["Strict-Transport-Security"] = []string{"max-age=31536000"}
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		w.finish()
	}
}

// serveFast serves h with the HTTP/1 server alone (no proxy in front of
// it, so no backend client filters what h sets) and returns its address.
func serveFast(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := newFastServer(ln, &http.Server{Handler: h}, h, proxy.ListenerOptions{}, zap.NewNop())
	if err != nil {
		ln.Close()
		t.Skipf("no fast server here: %v", err)
	}
	done := make(chan struct{})
	go func() { defer close(done); fs.Serve() }()
	t.Cleanup(func() { fs.Close(); <-done })
	return ln.Addr().String()
}

// A field a handler sets with a name that is not a token, in the header
// or as a trailer, never reaches the wire, and CR, LF and NUL in a value
// become spaces: the client sees no header the handler did not name.
func TestWriter_invalidFieldsNeverSplit(t *testing.T) {
	const evil = "X-Evil\r\nSet-Cookie: pwned=1\r\nX"
	for _, tc := range []struct {
		name    string
		set     func(h http.Header)
		trailer bool // the body is streamed, so trailers are sent
		want    map[string]string
	}{
		{"name with CRLF", func(h http.Header) { h[evil] = []string{"v"} }, false, nil},
		{"name with bare CR", func(h http.Header) { h["X-Evil\rSet-Cookie"] = []string{"pwned=1"} }, false, nil},
		{"name with LF", func(h http.Header) { h["X-Evil\nSet-Cookie"] = []string{"pwned=1"} }, false, nil},
		{"name with space and colon", func(h http.Header) { h["Set-Cookie: pwned=1\r\nX"] = []string{"v"} }, false, nil},
		{"empty name", func(h http.Header) { h[""] = []string{"Set-Cookie: pwned=1"} }, false, nil},
		{"value with CRLF", func(h http.Header) { h["X-A"] = []string{"a\r\nSet-Cookie: pwned=1"} }, false,
			map[string]string{"X-A": "a  Set-Cookie: pwned=1"}},
		{"value with NUL", func(h http.Header) { h["X-A"] = []string{"a\x00b"} }, false, map[string]string{"X-A": "a b"}},
		{"announced trailer", func(h http.Header) {
			h["Trailer"] = []string{"X-Evil\rSet-Cookie"}
			h["X-Evil\rSet-Cookie"] = []string{"pwned=1"}
		}, true, nil},
		{"prefixed trailer", func(h http.Header) { h[http.TrailerPrefix+evil] = []string{"v"} }, true, nil},
		{"trailer value with CRLF", func(h http.Header) { h[http.TrailerPrefix+"X-T"] = []string{"a\r\nSet-Cookie: pwned=1"} }, true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := serveFast(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Good", "yes")
				tc.set(w.Header())
				if tc.trailer {
					w.WriteHeader(200)
					io.WriteString(w, "body")
					w.(http.Flusher).Flush()
					tc.set(w.Header()) // trailers are read at the end
					return
				}
				io.WriteString(w, "body")
			})
			c := dialRaw(t, addr)
			c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			raw, err := io.ReadAll(c.br)
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(raw), "\n") {
				line = strings.TrimSuffix(line, "\r")
				if strings.HasPrefix(strings.ToLower(line), "set-cookie") || strings.Contains(line, "\r") {
					t.Errorf("the client got the line %q; want no header the handler did not name:\n%s", line, raw)
				}
			}
			resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(raw))), nil)
			if err != nil {
				t.Fatalf("the response does not parse: %v\n%s", err, raw)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || string(body) != "body" || resp.Header.Get("X-Good") != "yes" {
				t.Errorf("got body %q (%v), X-Good %q; want the response intact:\n%s", body, err, resp.Header.Get("X-Good"), raw)
			}
			for k, v := range tc.want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s: %q; want %q", k, got, v)
				}
			}
		})
	}
}

// FuzzWriterFields: whatever name and value a handler sets, in the header
// or as a trailer, the response the writer sends has only lines without
// CR, LF or NUL inside, each header or trailer line's name is a token,
// and the field is there, once per value, exactly when its name is one.
func FuzzWriterFields(f *testing.F) {
	f.Add("X-Evil\r\nSet-Cookie: pwned=1\r\nX", "v", false)
	f.Add("X-A", "a\r\nSet-Cookie: pwned=1", false)
	f.Add("X-A", "a\x00b", true)
	f.Add("X Evil", "v", true)
	f.Add("", "v", false)
	f.Fuzz(func(t *testing.T, name, value string, trailer bool) {
		switch httplex.Canonical(name) {
		case "Date", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer", "X-Good":
			return // the writer's own fields, or the test's
		}
		req, _ := http.NewRequest(http.MethodGet, "http://a/", nil)
		var out bytes.Buffer
		bw := bufio.NewWriter(&out)
		var closing atomic.Bool
		var w fastWriter
		w.reset(bw, req, &closing)
		w.Header().Set("X-Good", "yes")
		if trailer {
			w.Header()[http.TrailerPrefix+name] = []string{value}
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("body"))
			w.Flush()
		} else {
			w.Header()[name] = []string{value}
			w.Write([]byte("body"))
		}
		w.finish()
		raw := out.String()
		head, rest, _ := strings.Cut(raw, "\r\n\r\n")
		lines := strings.Split(head, "\r\n")[1:]
		if trailer {
			// The chunked body "4\r\nbody\r\n0\r\n", then the trailers.
			tr, ok := strings.CutPrefix(rest, "4\r\nbody\r\n0\r\n")
			if !ok || !strings.HasSuffix(tr, "\r\n") {
				t.Fatalf("chunked body not as written:\n%q", raw)
			}
			if tr = strings.TrimSuffix(tr, "\r\n"); tr != "" {
				lines = append(lines, strings.Split(strings.TrimSuffix(tr, "\r\n"), "\r\n")...)
			}
		}
		found := 0
		for _, line := range lines {
			if strings.ContainsAny(line, "\r\n\x00") {
				t.Fatalf("line %q holds CR, LF or NUL:\n%q", line, raw)
			}
			k, v, ok := strings.Cut(line, ": ")
			if !ok || !httplex.ValidToken(k) {
				t.Fatalf("line %q has no token name:\n%q", line, raw)
			}
			if k == name {
				found++
				want := []byte(value)
				for i, c := range want {
					if c == '\r' || c == '\n' || c == 0 {
						want[i] = ' '
					}
				}
				if v != string(want) {
					t.Fatalf("%s: %q; want %q:\n%q", k, v, want, raw)
				}
			}
		}
		if want := map[bool]int{true: 1, false: 0}[httplex.ValidToken(name)]; found != want {
			t.Fatalf("field %q written %d times; want %d:\n%q", name, found, want, raw)
		}
	})
}
