package proxy

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

// TestForward_matchesReverseProxy is a differential test of forward, the
// lean request path, against the httputil.ReverseProxy it stands in for.
// forward promises to behave exactly as ReverseProxy with our Rewrite does;
// rather than restating each rule, every case sends the same raw request
// once through a listener whose handler is the front (forward) and once
// through a listener whose handler calls the front's ReverseProxy directly,
// both to the same backend, and requires identical results on both sides:
// what the backend received (request line, Host, every header, body,
// trailers) and what the client received (1xx responses, status, headers but
// Date, framing, body, trailers, and how the body ended). Both listeners run
// on the same server (webtier's fast HTTP/1 server, or net/http's for
// requests it hands off), so a difference comes from forward alone.
func TestForward_matchesReverseProxy(t *testing.T) {
	tests := []struct {
		name    string
		req     string           // written as it is to the proxy
		backend http.HandlerFunc // runs after the request body was read
		// first: the client reads this many body bytes before the backend
		// may go on (see streamed): a response that is not flushed as it
		// comes gets the backend's late text instead.
		first      int
		wantStatus int // of the final response, a check on the case itself
		want1xx    int
		wantBroken bool // the body ends with an error
	}{
		{name: "get", req: "GET /p/a?q=1&r=%2F HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Accept: */*\r\nX-Multi: 1\r\nX-Multi: 2\r\nCookie: a=1\r\n\r\n",
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2")
				w.Header().Set("Content-Type", "text/plain")
				io.WriteString(w, "hello")
			}, wantStatus: 200},
		{name: "connection-listed-request-header", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Connection: keep-alive, X-Foo\r\nX-Foo: drop\r\nX-Bar: keep\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "hop-by-hop-request-headers", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Proxy-Connection: keep-alive\r\nKeep-Alive: timeout=5\r\nProxy-Authorization: Basic Zm9vOmJhcg==\r\n" +
			"Trailer: X-T\r\nTe: trailers\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "te-gzip-and-trailers", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\nTe: gzip;q=1, Trailers\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "te-gzip", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\nTe: gzip\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		// "trailerſ" folds to "trailers" in Unicode but is not the token
		// (ReverseProxy compares tokens in ASCII).
		{name: "te-unicode-fold", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\nTe: trailer\u017f\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "forwarding-headers-from-untrusted-peer", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nForwarded: for=203.0.113.9\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		// Only a differential check here: proxy/h1 (http targets) never adds
		// a default User-Agent, so this cannot tell a missing one from the
		// empty one; net/http's Transport (https targets) would.
		{name: "no-user-agent", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		// (HTTP/1.0 without Host: answered before forwarding, see
		// TestHTTP10WithoutHost.)
		{name: "http10", req: "GET /old HTTP/1.0\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		// Where webtier differs from ReverseProxy on purpose, its Rewrite
		// does the same as forward: a query ReverseProxy would drop or
		// re-encode passes byte for byte (TestQueryByteForByte), and
		// header names with "_" are dropped (TestUnderscoreHeaders).
		{name: "query-byte-for-byte", req: "GET /q?a=1;b=2&c=%zz HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "underscore-header-names", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"X_Forwarded_For: 10.6.6.6\r\nX-Keep: 1\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "post-content-length", req: "POST /form HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Content-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
			backend: answerOK, wantStatus: 200},
		{name: "post-chunked", req: "POST /form HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "post-chunked-with-trailer", req: "POST /form HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Trailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		{name: "post-empty", req: "POST /form HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\nContent-Length: 0\r\n\r\n",
			backend: answerOK, wantStatus: 200},
		// Expect and a head over fastHeadSize go to net/http's server.
		{name: "net-http-server-expect-continue", req: "POST /form HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Expect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
			backend: answerOK, wantStatus: 200, want1xx: 1},
		{name: "net-http-server-early-hints-trailers", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n" +
			"Cookie: " + strings.Repeat("c", fastHeadSize/2) + "\r\nX-Pad: " + strings.Repeat("p", fastHeadSize/2) + "\r\n\r\n",
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</a.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Set("Trailer", "X-Checksum")
				io.WriteString(w, "body")
				w.Header().Set("X-Checksum", "abc")
				w.Header().Set(http.TrailerPrefix+"X-Late", "1")
			}, wantStatus: 200, want1xx: 1},

		{name: "response-hop-by-hop-headers", req: diffGet,
			backend: rawResponse("HTTP/1.1 200 OK\r\nConnection: close, X-Backend-Hop\r\nX-Backend-Hop: secret\r\n" +
				"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authenticate: Basic\r\nTe: trailers\r\n" +
				"Trailer: X-None\r\nUpgrade: foo\r\nX-Keep: 1\r\nContent-Length: 2\r\n\r\nok"),
			wantStatus: 200},
		{name: "trailers-announced", req: diffGet,
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Checksum, X-Count")
				io.WriteString(w, "body")
				w.Header().Set("X-Checksum", "abc")
				w.Header().Set("X-Count", "1")
			}, wantStatus: 200},
		{name: "trailers-unannounced", req: diffGet,
			backend: rawResponse("HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"4\r\nbody\r\n0\r\nX-Late: 1\r\nX-Later: 2\r\n\r\n"),
			wantStatus: 200},
		{name: "trailers-announced-and-not", req: diffGet,
			backend: rawResponse("HTTP/1.1 200 OK\r\nConnection: close\r\nTrailer: X-Checksum\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"4\r\nbody\r\n0\r\nX-Checksum: abc\r\nX-Late: 1\r\n\r\n"),
			wantStatus: 200},
		{name: "early-hints", req: diffGet,
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Link", "</a.css>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Add("Link", "</b.js>; rel=preload")
				w.WriteHeader(http.StatusEarlyHints)
				w.Header().Set("X-Final", "1")
				io.WriteString(w, "ok")
			}, wantStatus: 200, want1xx: 2},
		// With a Content-Length, only the event-stream type makes the proxy
		// flush as it goes.
		{name: "event-stream", req: diffGet, backend: streamed("text/event-stream; charset=utf-8", true),
			first: len(streamFirst), wantStatus: 200},
		// Not an event stream for mime.ParseMediaType (a duplicate
		// parameter), so ReverseProxy does not flush, and forward may not.
		{name: "event-stream-malformed-type", req: diffGet, backend: streamed("text/event-stream; a=1; a=2", true),
			first: len(streamFirst), wantStatus: 200},
		{name: "unknown-length-stream", req: diffGet, backend: streamed("text/plain", false),
			first: len(streamFirst), wantStatus: 200},
		{name: "switching-protocols-not-asked-for", req: diffGet,
			backend:    rawResponse("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: foo\r\n\r\n"),
			wantStatus: 502},
		{name: "backend-dies-mid-body-with-length", req: diffGet,
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "100")
				io.WriteString(w, "only ten b")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}, wantStatus: 200, wantBroken: true},
		{name: "backend-dies-mid-body-chunked", req: diffGet,
			backend: func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, "some")
				w.(http.Flusher).Flush()
				panic(http.ErrAbortHandler)
			}, wantStatus: 200, wantBroken: true},
		{name: "head", req: "HEAD /h HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n\r\n",
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "1234")
				w.Header().Set("Content-Type", "text/html")
			}, wantStatus: 200},
		{name: "no-content", req: diffGet,
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Done", "1")
				w.WriteHeader(http.StatusNoContent)
			}, wantStatus: 204},
		{name: "not-modified", req: "GET / HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\nIf-None-Match: \"v1\"\r\n\r\n",
			backend: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Etag", `"v1"`)
				w.Header().Set("Cache-Control", "max-age=60")
				w.WriteHeader(http.StatusNotModified)
			}, wantStatus: 304},
	}

	var current atomic.Pointer[diffRun]
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		run := current.Load()
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("backend: reading the request body: %v", err)
		}
		run.got <- describeRequest(r, body)
		run.handler(w, r.WithContext(context.WithValue(r.Context(), clientSawKey{}, run.clientSaw)))
	}))
	defer backend.Close()
	fwd, ref := startForwardAndReverseProxy(t, oneUpstream(t, backend, nil))

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			do := func(addr string) (backendSaw, clientSaw string) {
				run := &diffRun{handler: tt.backend, got: make(chan string, 1), clientSaw: make(chan struct{})}
				current.Store(run)
				c := run.exchange(t, addr, tt.req, tt.first)
				if !tt.wantBroken && c.body.err != nil {
					t.Errorf("%s: reading the body: %v", addr, c.body.err)
				}
				select {
				case backendSaw = <-run.got:
				case <-time.After(10 * time.Second):
					t.Fatalf("%s: the backend got no request", addr)
				}
				return backendSaw, c.String()
			}
			fwdBackend, fwdClient := do(fwd)
			refBackend, refClient := do(ref)
			if fwdBackend != refBackend {
				t.Errorf("the backend received different requests\nforward:\n%s\nReverseProxy:\n%s", fwdBackend, refBackend)
			}
			if fwdClient != refClient {
				t.Errorf("the client received different responses\nforward:\n%s\nReverseProxy:\n%s", fwdClient, refClient)
			}
			// Checks on the case itself: it tests what it says.
			if !strings.Contains(refClient, fmt.Sprintf("\nstatus %d\n", tt.wantStatus)) ||
				strings.Count(refClient, "informational ") != tt.want1xx ||
				strings.Contains(refClient, "body error") != tt.wantBroken {
				t.Errorf("ReverseProxy's response is not what the case is about (status %d, %d 1xx, broken %v):\n%s",
					tt.wantStatus, tt.want1xx, tt.wantBroken, refClient)
			}
		})
	}
}

// diffGet is a plain request, for the cases about the response.
const diffGet = "GET /r HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: difftest\r\n\r\n"

func answerOK(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }

// rawResponse is a backend that answers with exactly raw and closes the
// connection.
func rawResponse(raw string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer conn.Close()
		brw.WriteString(raw)
		brw.Flush()
	}
}

const (
	streamFirst = "data: 1\n\n"
	streamNext  = "data: 2\n\n"
	streamLate  = "data: -\n\n" // sent instead when the client did not see the first event in time
)

// streamed is a backend that writes one event, flushes, and waits for the
// client to have read it before it writes the next; withLength declares the
// length of both.
func streamed(contentType string, withLength bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		if withLength {
			w.Header().Set("Content-Length", fmt.Sprint(len(streamFirst)+len(streamNext)))
		}
		io.WriteString(w, streamFirst)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Value(clientSawKey{}).(chan struct{}):
			io.WriteString(w, streamNext)
		case <-time.After(2 * time.Second):
			io.WriteString(w, streamLate)
		}
	}
}

type clientSawKey struct{}

// startForwardAndReverseProxy serves opts on two listeners of one Server:
// the first with the Handler as configured (forward), the second with a
// handler that routes the same way (front.route: path and Host rules too)
// and calls the ReverseProxy directly. It
// returns their addresses.
func startForwardAndReverseProxy(t *testing.T, opts Options) (fwd, ref string) {
	t.Helper()
	opts.Listeners = []ListenerOptions{{Name: "forward", Address: "127.0.0.1:0"}, {Name: "reverseproxy", Address: "127.0.0.1:0"}}
	s, err := NewServer(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		s.Handler().Close()
		t.Fatal(err)
	}
	s.servers[1].Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := s.Handler().fronts[1]
		r, rt := f.route(w, r)
		if rt == nil {
			return
		}
		f.rps[rt.pool].ServeHTTP(w, r)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	addrs := s.Addrs()
	return addrs[0].String(), addrs[1].String()
}

// diffRun is one request of a case through one of the listeners.
type diffRun struct {
	handler   http.HandlerFunc
	got       chan string   // what the backend received
	clientSaw chan struct{} // closed when the client has read the first body bytes
}

// clientView is what a client received, as text that compares equal for
// equal responses.
type clientView struct {
	head []string // 1xx responses and the final response head
	body struct {
		data []byte
		err  error
	}
	trailer http.Header
}

func (c *clientView) String() string {
	var b strings.Builder
	for _, h := range c.head {
		b.WriteString(h)
	}
	fmt.Fprintf(&b, "body %q\n", c.body.data)
	if c.body.err != nil {
		fmt.Fprintf(&b, "body error %v\n", c.body.err)
	}
	writeSorted(&b, "trailer", c.trailer)
	return b.String()
}

// exchange sends req to addr on a new connection and reads the responses.
// With first > 0 it closes clientSaw once it has read that many body bytes;
// otherwise at once.
func (run *diffRun) exchange(t *testing.T, addr, req string, first int) *clientView {
	t.Helper()
	var once sync.Once
	saw := func() { once.Do(func() { close(run.clientSaw) }) }
	defer saw()
	if first == 0 {
		saw()
	}
	c := dialRaw(t, addr)
	c.send(req)
	method, _, _ := strings.Cut(req, " ")
	v := &clientView{}
	for {
		resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
		if err != nil {
			t.Fatalf("%s: reading the response: %v", addr, err)
		}
		var b strings.Builder
		kind := "status"
		if resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			kind = "informational"
		}
		fmt.Fprintf(&b, "\n%s %d\n%s content-length %d transfer-encoding %q close %v\n",
			kind, resp.StatusCode, resp.Proto, resp.ContentLength, resp.TransferEncoding, resp.Close)
		h := resp.Header.Clone()
		h.Del("Date") // may differ by a second
		writeSorted(&b, "header", h)
		v.head = append(v.head, b.String())
		if kind == "informational" {
			continue
		}
		buf := make([]byte, first)
		n, err := io.ReadFull(resp.Body, buf)
		saw()
		rest, rerr := io.ReadAll(resp.Body)
		v.body.data = append(buf[:n], rest...)
		if v.body.err = err; err == nil {
			v.body.err = rerr
		}
		v.trailer = resp.Trailer
		return v
	}
}

// describeRequest is what the backend received, as comparable text.
func describeRequest(r *http.Request, body []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s\nhost %q content-length %d transfer-encoding %q\n",
		r.Method, r.RequestURI, r.Proto, r.Host, r.ContentLength, r.TransferEncoding)
	writeSorted(&b, "header", r.Header)
	fmt.Fprintf(&b, "body %q\n", body)
	writeSorted(&b, "trailer", r.Trailer)
	return b.String()
}

// writeSorted writes h one value a line, by name.
func writeSorted(b *strings.Builder, what string, h http.Header) {
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if len(h[k]) == 0 {
			fmt.Fprintf(b, "%s %s (no value)\n", what, k)
		}
		for _, v := range h[k] {
			fmt.Fprintf(b, "%s %s: %q\n", what, k, v)
		}
	}
}

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
