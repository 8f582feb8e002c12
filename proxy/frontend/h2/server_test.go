package h2

// End-to-end tests of the HTTP/2 server over real TLS sockets on 127.0.0.1,
// with two independent clients: Go's own HTTP/2 client
// (golang.org/x/net/http2.Transport) and a raw client that writes and reads
// exact frames (h2tRaw). Helpers carry the h2t prefix so that they cannot
// clash with the other test files of the package.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2tSafety bounds every wait on the network: a server that never answers
// fails the test instead of hanging it. It is a safety net, not a timing
// assertion.
const h2tSafety = 20 * time.Second

// h2tLog collects the http.Server's error log.
type h2tLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *h2tLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *h2tLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type h2tEnv struct {
	addr string
	pool *x509.CertPool
	hs   *http.Server
	log  *h2tLog
}

// h2tStart serves h over TLS on 127.0.0.1 with a fresh self-signed
// certificate, HTTP/2 by s.
func h2tStart(t testing.TB, s *Server, h http.Handler) *h2tEnv {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "h2 test"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	conf := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lg := &h2tLog{}
	hs := &http.Server{Handler: h, TLSConfig: conf, ErrorLog: log.New(lg, "", 0)}
	s.Configure(hs)
	if hs.TLSNextProto["h2"] == nil {
		t.Fatal(`Configure did not set TLSNextProto["h2"]`)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		hs.Serve(tls.NewListener(ln, conf)) //nolint:errcheck // ends at Close or Shutdown
	}()
	t.Cleanup(func() {
		hs.Close()
		<-served
	})
	return &h2tEnv{addr: ln.Addr().String(), pool: pool, hs: hs, log: lg}
}

// client is Go's HTTP/2 client for e.
func (e *h2tEnv) client(t testing.TB) *http.Client {
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: e.pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: h2tSafety}
}

func (e *h2tEnv) url(path string) string { return "https://" + e.addr + path }

// h2tDialTLS opens a TLS connection negotiating h2, with nothing sent yet.
func h2tDialTLS(t *testing.T, e *h2tEnv) *tls.Conn {
	t.Helper()
	tc, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tc.Close() })
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		t.Fatalf("ALPN negotiated %q, want h2", p)
	}
	tc.SetDeadline(time.Now().Add(h2tSafety)) //nolint:errcheck // safety net
	return tc
}

// h2tRaw is a client that writes exact frames and reads the server's.
type h2tRaw struct {
	t    *testing.T
	tc   *tls.Conn
	fr   *http2.Framer
	enc  *hpack.Encoder
	hbuf bytes.Buffer

	serverSettings []http2.Setting // the server's first SETTINGS
	settingsAcks   int             // SETTINGS ACKs received
	goAway         *h2tGoAway      // the GOAWAY received, if any
	pingSeq        uint64
}

type h2tGoAway struct {
	last uint32
	code http2.ErrCode
}

// h2tDial opens a connection and sends the preface and a SETTINGS frame.
func h2tDial(t *testing.T, e *h2tEnv, settings ...http2.Setting) *h2tRaw {
	t.Helper()
	rc := h2tWrap(t, h2tDialTLS(t, e))
	if _, err := io.WriteString(rc.tc, clientPreface); err != nil {
		t.Fatal(err)
	}
	if err := rc.fr.WriteSettings(settings...); err != nil {
		t.Fatal(err)
	}
	return rc
}

func h2tWrap(t *testing.T, tc *tls.Conn) *h2tRaw {
	rc := &h2tRaw{t: t, tc: tc, fr: http2.NewFramer(tc, tc)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.fr.MaxHeaderListSize = 16 << 20
	rc.enc = hpack.NewEncoder(&rc.hbuf)
	return rc
}

// h2tReq is the pseudo-header fields of a request, then extra name/value
// pairs.
func h2tReq(method, authority, path string, extra ...string) []string {
	return append([]string{":method", method, ":scheme", "https", ":authority", authority, ":path", path}, extra...)
}

// block HPACK-encodes name/value pairs as given (no case folding).
func (rc *h2tRaw) block(fields ...string) []byte {
	rc.hbuf.Reset()
	for i := 0; i+1 < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}) //nolint:errcheck // bytes.Buffer
	}
	return append([]byte(nil), rc.hbuf.Bytes()...)
}

func (rc *h2tRaw) headers(id uint32, end bool, fields ...string) {
	rc.t.Helper()
	err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.block(fields...), EndHeaders: true, EndStream: end})
	if err != nil {
		rc.t.Fatalf("writing HEADERS on stream %d: %v", id, err)
	}
}

func (rc *h2tRaw) data(id uint32, end bool, p []byte) {
	rc.t.Helper()
	if err := rc.fr.WriteData(id, end, p); err != nil {
		rc.t.Fatalf("writing DATA on stream %d: %v", id, err)
	}
}

// next reads one frame; the server's SETTINGS and a GOAWAY are recorded. DATA payloads are only valid until the next call.
func (rc *h2tRaw) next() http2.Frame {
	rc.t.Helper()
	f, err := rc.fr.ReadFrame()
	if err != nil {
		rc.t.Fatalf("reading a frame: %v (GOAWAY seen: %+v)", err, rc.goAway)
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			rc.settingsAcks++
			break
		}
		if rc.serverSettings == nil {
			rc.serverSettings = []http2.Setting{}
			f.ForeachSetting(func(s http2.Setting) error { //nolint:errcheck // never fails
				rc.serverSettings = append(rc.serverSettings, s)
				return nil
			})
		}
		// Not acknowledged: the server does not wait for it, and a write
		// to a connection the server has just closed could reset it
		// before the GOAWAY a test expects is read.
	case *http2.GoAwayFrame:
		rc.goAway = &h2tGoAway{last: f.LastStreamID, code: f.ErrCode}
	}
	return f
}

// until reads frames until one of type typ on stream id, and returns it.
func (rc *h2tRaw) until(typ http2.FrameType, id uint32) http2.Frame {
	rc.t.Helper()
	for {
		f := rc.next()
		if f.Header().Type == typ && f.Header().StreamID == id {
			return f
		}
		if d, ok := f.(*http2.DataFrame); ok {
			rc.giveBack(d)
		}
	}
}

// giveBack returns a DATA frame's flow-control credit on the connection and
// its stream.
func (rc *h2tRaw) giveBack(d *http2.DataFrame) {
	if n := d.Header().Length; n > 0 {
		rc.fr.WriteWindowUpdate(0, n) //nolint:errcheck // as above
		if !d.StreamEnded() {
			rc.fr.WriteWindowUpdate(d.StreamID, n) //nolint:errcheck // as above
		}
	}
}

// expectGoAway reads until a GOAWAY and returns it.
func (rc *h2tRaw) expectGoAway() h2tGoAway {
	rc.t.Helper()
	for rc.goAway == nil {
		if d, ok := rc.next().(*http2.DataFrame); ok {
			rc.giveBack(d)
		}
	}
	return *rc.goAway
}

// expectClosed reads until the server closes the connection. Frames before
// that are returned; a read timeout (the safety net) fails the test.
func (rc *h2tRaw) expectClosed() []http2.FrameHeader {
	rc.t.Helper()
	var seen []http2.FrameHeader
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				rc.t.Fatalf("the connection was not closed: %v", err)
			}
			return seen
		}
		seen = append(seen, f.Header())
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			rc.goAway = &h2tGoAway{last: ga.LastStreamID, code: ga.ErrCode}
		}
	}
}

// sync sends a PING and reads until its ACK; it returns the headers of the
// frames read before the ACK: what the server had written before it read
// the PING.
func (rc *h2tRaw) sync() []http2.FrameHeader {
	rc.t.Helper()
	rc.pingSeq++
	var data [8]byte
	copy(data[:], "sync")
	data[7] = byte(rc.pingSeq)
	if err := rc.fr.WritePing(false, data); err != nil {
		rc.t.Fatal(err)
	}
	var seen []http2.FrameHeader
	for {
		f := rc.next()
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() && p.Data == data {
			return seen
		}
		if d, ok := f.(*http2.DataFrame); ok {
			rc.giveBack(d)
		}
		seen = append(seen, f.Header())
	}
}

// h2tResp is a response as the raw client saw it.
type h2tResp struct {
	info       []string // 1xx statuses
	status     string
	header     []hpack.HeaderField
	headersEnd bool // END_STREAM on the response HEADERS
	data       []byte
	dataFrames int
	trailer    []hpack.HeaderField
	reset      bool
	resetCode  http2.ErrCode
}

func (r *h2tResp) values(name string) []string {
	var vv []string
	for _, hf := range r.header {
		if hf.Name == name {
			vv = append(vv, hf.Value)
		}
	}
	return vv
}

func (r *h2tResp) get(name string) string {
	if vv := r.values(name); len(vv) > 0 {
		return vv[0]
	}
	return ""
}

// responses reads until each of ids has ended (END_STREAM or RST_STREAM).
// DATA credit is given back as it arrives.
func (rc *h2tRaw) responses(ids ...uint32) map[uint32]*h2tResp {
	rc.t.Helper()
	res := make(map[uint32]*h2tResp, len(ids))
	open := make(map[uint32]bool, len(ids))
	for _, id := range ids {
		res[id] = &h2tResp{}
		open[id] = true
	}
	for len(open) > 0 {
		f := rc.next()
		id := f.Header().StreamID
		r := res[id]
		if r == nil {
			if d, ok := f.(*http2.DataFrame); ok {
				rc.giveBack(d)
			}
			continue
		}
		if !open[id] {
			rc.t.Errorf("stream %d: %v after the end of the stream", id, f.Header())
			continue
		}
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			if r.status == "" {
				st := f.PseudoValue("status")
				if strings.HasPrefix(st, "1") {
					r.info = append(r.info, st)
					continue
				}
				r.status = st
				r.header = append([]hpack.HeaderField(nil), f.RegularFields()...)
				r.headersEnd = f.StreamEnded()
			} else {
				r.trailer = append([]hpack.HeaderField(nil), f.RegularFields()...)
				if len(f.PseudoFields()) > 0 {
					rc.t.Errorf("stream %d: pseudo-header fields in trailers: %v", id, f.PseudoFields())
				}
			}
			if f.StreamEnded() {
				delete(open, id)
			}
		case *http2.DataFrame:
			if r.status == "" {
				rc.t.Errorf("stream %d: DATA before the response HEADERS", id)
			}
			r.data = append(r.data, f.Data()...)
			r.dataFrames++
			rc.giveBack(f)
			if f.StreamEnded() {
				delete(open, id)
			}
		case *http2.RSTStreamFrame:
			r.reset = true
			r.resetCode = f.ErrCode
			delete(open, id)
		}
	}
	return res
}

func (rc *h2tRaw) response(id uint32) *h2tResp { rc.t.Helper(); return rc.responses(id)[id] }

// wantOK checks that stream id is answered 200 "ok" (what names its
// request in the error): the connection still serves.
func (rc *h2tRaw) wantOK(what string, id uint32) {
	rc.t.Helper()
	if r := rc.response(id); r.status != "200" || string(r.data) != "ok" {
		rc.t.Errorf("%s: %q %q reset %v %v", what, r.status, r.data, r.reset, r.resetCode)
	}
}

// wantNoGoAway checks that no GOAWAY came on the connection.
func (rc *h2tRaw) wantNoGoAway() {
	rc.t.Helper()
	if rc.goAway != nil {
		rc.t.Errorf("GOAWAY %+v", *rc.goAway)
	}
}

// h2tWait waits for a value on ch, failing the test after the safety net.
func h2tWait[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(h2tSafety):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func h2tReadAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return b
}

// 1. GET with a small body: status, headers and body as the clients see
// them.
func TestServerGET(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		body    string
		// contentLength is the content-length field expected ("" absent).
		contentLength string
		date          string // expected Date value; "" any valid date
		header        map[string][]string
		headersEnd    bool // END_STREAM on the HEADERS
	}{
		{
			name: "small body, connection-specific headers dropped",
			handler: func(w http.ResponseWriter, r *http.Request) {
				h := w.Header()
				h.Set("Content-Type", "text/plain; charset=utf-8")
				h.Add("X-Multi", "one")
				h.Add("X-Multi", "two")
				h.Set("Connection", "close")
				h.Set("Transfer-Encoding", "chunked")
				h.Set("Keep-Alive", "timeout=5")
				h.Set("Proxy-Connection", "keep-alive")
				h.Set("Upgrade", "websocket")
				io.WriteString(w, "hello, ")
				io.WriteString(w, "world")
			},
			status:        200,
			body:          "hello, world",
			contentLength: "12",
			header:        map[string][]string{"content-type": {"text/plain; charset=utf-8"}, "x-multi": {"one", "two"}},
		},
		{
			name: "handler's Content-Length and Date kept",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				w.Header().Set("Date", "Mon, 01 Jan 2001 00:00:00 GMT")
				io.WriteString(w, "hello")
			},
			status:        200,
			body:          "hello",
			contentLength: "5",
			date:          "Mon, 01 Jan 2001 00:00:00 GMT",
		},
		{
			name: "unparsable Content-Length replaced by the body's",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "five")
				io.WriteString(w, "hello")
			},
			status:        200,
			body:          "hello",
			contentLength: "5",
		},
		{
			name: "explicit status",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", "/x")
				w.WriteHeader(http.StatusCreated)
				io.WriteString(w, "created")
			},
			status:        201,
			body:          "created",
			contentLength: "7",
			header:        map[string][]string{"location": {"/x"}},
		},
		{
			name:          "empty body",
			handler:       func(w http.ResponseWriter, r *http.Request) {},
			status:        200,
			contentLength: "0",
			headersEnd:    true,
		},
		{
			name: "404 with a body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Error(w, "nope", http.StatusNotFound)
			},
			status:        404,
			body:          "nope\n",
			contentLength: "5",
			header:        map[string][]string{"x-content-type-options": {"nosniff"}},
		},
	}
	mux := http.NewServeMux()
	for i, tc := range tests {
		mux.Handle(fmt.Sprintf("/get/%d", i), tc.handler)
	}
	e := h2tStart(t, &Server{}, mux)
	c := e.client(t)
	rc := h2tDial(t, e)
	id := uint32(1)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := fmt.Sprintf("/get/%d", i)
			// The raw client sees the exact fields and frames.
			rc.t = t
			rc.headers(id, true, h2tReq("GET", e.addr, path)...)
			r := rc.response(id)
			id += 2
			if r.reset {
				t.Fatalf("stream reset: %v", r.resetCode)
			}
			if r.status != strconv.Itoa(tc.status) {
				t.Errorf(":status %q, want %d", r.status, tc.status)
			}
			if string(r.data) != tc.body {
				t.Errorf("body %q, want %q", r.data, tc.body)
			}
			if r.headersEnd != tc.headersEnd {
				t.Errorf("END_STREAM on HEADERS %v, want %v", r.headersEnd, tc.headersEnd)
			}
			if cl := r.values("content-length"); tc.contentLength == "" && len(cl) != 0 ||
				tc.contentLength != "" && (len(cl) != 1 || cl[0] != tc.contentLength) {
				t.Errorf("content-length %q, want %q", cl, tc.contentLength)
			}
			dates := r.values("date")
			if len(dates) != 1 {
				t.Errorf("date fields %q, want one", dates)
			} else if _, err := http.ParseTime(dates[0]); err != nil {
				t.Errorf("date %q: %v", dates[0], err)
			} else if tc.date != "" && dates[0] != tc.date {
				t.Errorf("date %q, want %q", dates[0], tc.date)
			}
			for _, name := range []string{"connection", "transfer-encoding", "keep-alive", "proxy-connection", "upgrade"} {
				if vv := r.values(name); len(vv) > 0 {
					t.Errorf("connection-specific header %s: %q sent", name, vv)
				}
			}
			for name, want := range tc.header {
				if got := r.values(name); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
			for _, hf := range r.header {
				if hf.Name != strings.ToLower(hf.Name) {
					t.Errorf("header name %q not lower case", hf.Name)
				}
			}

			// Go's client agrees.
			res, err := c.Get(e.url(path))
			if err != nil {
				t.Fatal(err)
			}
			body := h2tReadAll(t, res)
			if res.StatusCode != tc.status || res.ProtoMajor != 2 || string(body) != tc.body {
				t.Errorf("Go client: %d %s, body %q; want %d HTTP/2.0, %q", res.StatusCode, res.Proto, body, tc.status, tc.body)
			}
			if tc.contentLength != "" && strconv.FormatInt(res.ContentLength, 10) != tc.contentLength {
				t.Errorf("Go client: ContentLength %d, want %s", res.ContentLength, tc.contentLength)
			}
			if res.Header.Get("Connection") != "" || len(res.TransferEncoding) != 0 || res.Header.Get("Keep-Alive") != "" {
				t.Errorf("Go client: connection-specific headers %v / %v", res.Header, res.TransferEncoding)
			}
			for name, want := range tc.header {
				if got := res.Header.Values(name); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("Go client: %s: %q, want %q", name, got, want)
				}
			}
		})
	}
}

// 2. HEAD, 204 and 304: no DATA, END_STREAM on the HEADERS.
func TestServerNoBody(t *testing.T) {
	writeErrs := make(chan error, 10)
	tests := []struct {
		name          string
		method        string
		handler       http.HandlerFunc
		status        string
		contentLength string // "" absent
		writeErr      error  // what the handler's Write returns
	}{
		{
			name:   "HEAD",
			method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, err := io.WriteString(w, "hello")
				writeErrs <- err
			},
			status: "200",
		},
		{
			name:   "HEAD with Content-Length",
			method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "5")
				_, err := io.WriteString(w, "hello")
				writeErrs <- err
			},
			status:        "200",
			contentLength: "5",
		},
		{
			name:   "HEAD of a large body",
			method: "HEAD",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, err := w.Write(make([]byte, 100<<10))
				writeErrs <- err
			},
			status: "200",
		},
		{
			name:   "204",
			method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusNoContent)
				_, err := io.WriteString(w, "x")
				writeErrs <- err
			},
			status:   "204",
			writeErr: http.ErrBodyNotAllowed,
		},
		{
			name:   "304",
			method: "GET",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Etag", `"v1"`)
				w.WriteHeader(http.StatusNotModified)
				_, err := io.WriteString(w, "x")
				writeErrs <- err
			},
			status:   "304",
			writeErr: http.ErrBodyNotAllowed,
		},
	}
	mux := http.NewServeMux()
	for i, tc := range tests {
		mux.Handle(fmt.Sprintf("/nb/%d", i), tc.handler)
	}
	e := h2tStart(t, &Server{}, mux)
	c := e.client(t)
	rc := h2tDial(t, e)
	id := uint32(1)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc.t = t
			path := fmt.Sprintf("/nb/%d", i)
			rc.headers(id, true, h2tReq(tc.method, e.addr, path)...)
			r := rc.response(id)
			if err := h2tWait(t, writeErrs, "the handler's Write"); !errors.Is(err, tc.writeErr) {
				t.Errorf("handler's Write: %v, want %v", err, tc.writeErr)
			}
			if r.status != tc.status || r.reset {
				t.Fatalf(":status %q (reset %v), want %s", r.status, r.reset, tc.status)
			}
			if !r.headersEnd {
				t.Errorf("no END_STREAM on the HEADERS")
			}
			// Whatever the server wrote for the stream is before the
			// PING ACK.
			for _, fh := range rc.sync() {
				if fh.StreamID == id {
					t.Errorf("%v after END_STREAM", fh)
				}
			}
			if r.dataFrames != 0 || len(r.data) != 0 {
				t.Errorf("%d DATA frames, %d bytes", r.dataFrames, len(r.data))
			}
			if got := r.get("content-length"); got != tc.contentLength {
				t.Errorf("content-length %q, want %q", got, tc.contentLength)
			}
			id += 2

			req, _ := http.NewRequest(tc.method, e.url(path), nil)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			h2tWait(t, writeErrs, "the handler's Write")
			if body := h2tReadAll(t, res); strconv.Itoa(res.StatusCode) != tc.status || len(body) != 0 {
				t.Errorf("Go client: %d, %d bytes", res.StatusCode, len(body))
			}
		})
	}
}

// 3a. A 5 MiB response, beyond the client's 64 KiB window: the server
// sends no more than the windows allow and goes on as they reopen.
func TestServerLargeResponse(t *testing.T) {
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunks") != "" {
			for p := big; len(p) > 0; p = p[min(len(p), 1000):] {
				w.Write(p[:min(len(p), 1000)])
			}
			return
		}
		w.Write(big)
	}))

	t.Run("Go client", func(t *testing.T) {
		c := e.client(t)
		for _, path := range []string{"/", "/?chunks=1"} {
			res, err := c.Get(e.url(path))
			if err != nil {
				t.Fatal(err)
			}
			if got := h2tReadAll(t, res); !bytes.Equal(got, big) {
				t.Errorf("%s: %d bytes, equal %v; want the %d bytes sent", path, len(got), bytes.Equal(got, big[:min(len(got), len(big))]), len(big))
			}
		}
	})

	tests := []struct {
		name       string
		initWindow uint32 // the client's SETTINGS_INITIAL_WINDOW_SIZE
		chunks     bool
		earlier    []uint32 // values sent before it in the same SETTINGS frame
	}{
		{"default 65535 window", 65535, false, nil},
		{"default window, many writes", 65535, true, nil},
		{"small window", 1000, false, nil},
		{"zero window until WINDOW_UPDATE", 0, false, nil},
		// RFC 9113 6.5.3: values are processed in order, the last wins.
		{"several values in one SETTINGS, last wins", 1000, false, []uint32{0, 70000}},
	}
	for _, tc := range tests {
		t.Run("raw "+tc.name, func(t *testing.T) {
			var settings []http2.Setting
			for _, v := range append(tc.earlier, tc.initWindow) {
				settings = append(settings, http2.Setting{ID: http2.SettingInitialWindowSize, Val: v})
			}
			rc := h2tDial(t, e, settings...)
			path := "/"
			if tc.chunks {
				path = "/?chunks=1"
			}
			rc.headers(1, true, h2tReq("GET", e.addr, path)...)
			connWin, streamWin := int64(65535), int64(tc.initWindow)
			const target = 65535
			var got []byte
			var frames int
			sawHeaders := false
			for {
				f := rc.next()
				if f.Header().StreamID != 1 {
					continue
				}
				switch f := f.(type) {
				case *http2.MetaHeadersFrame:
					if sawHeaders {
						t.Fatalf("second HEADERS")
					}
					sawHeaders = true
					if s := f.PseudoValue("status"); s != "200" {
						t.Fatalf(":status %q", s)
					}
					if tc.initWindow == 0 {
						// Closed window: nothing may follow until it opens.
						for _, fh := range rc.sync() {
							if fh.StreamID == 1 {
								t.Fatalf("%v sent into a zero window", fh)
							}
						}
						rc.fr.WriteWindowUpdate(1, target) //nolint:errcheck // next read fails
						streamWin = target
					}
					continue
				case *http2.DataFrame:
					n := int64(f.Header().Length)
					if n > 16384 {
						t.Fatalf("DATA of %d bytes, over the default SETTINGS_MAX_FRAME_SIZE", n)
					}
					connWin -= n
					streamWin -= n
					if connWin < 0 || streamWin < 0 {
						t.Fatalf("the server overran the windows: connection %d, stream %d after %d bytes", connWin, streamWin, len(got))
					}
					got = append(got, f.Data()...)
					frames++
					if f.StreamEnded() {
						goto done
					}
					// Reopen the windows only when they are nearly shut: the
					// server must wait in between.
					if connWin < 16384 {
						rc.fr.WriteWindowUpdate(0, uint32(target-connWin)) //nolint:errcheck // next read fails
						connWin = target
					}
					if streamWin < 16384 && (tc.initWindow >= 16384 || tc.initWindow == 0 || streamWin <= 0) {
						inc := target - streamWin
						if tc.initWindow > 0 && tc.initWindow < 16384 {
							inc = int64(tc.initWindow) - streamWin
						}
						rc.fr.WriteWindowUpdate(1, uint32(inc)) //nolint:errcheck // next read fails
						streamWin += inc
					}
				case *http2.RSTStreamFrame:
					t.Fatalf("RST_STREAM %v after %d bytes", f.ErrCode, len(got))
				}
			}
		done:
			if !bytes.Equal(got, big) {
				t.Errorf("got %d bytes in %d frames, want the %d bytes written", len(got), frames, len(big))
			}
		})
	}
}

// 3b. Small writes with Flush between them reach the client while the
// handler runs.
func TestServerFlush(t *testing.T) {
	const n = 20
	ack := make(chan struct{})
	returned := make(chan struct{}, 1)
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { returned <- struct{}{} }()
		w.Header().Set("X-Stage", "headers")
		w.(http.Flusher).Flush() // the headers alone
		select {
		case <-ack:
		case <-r.Context().Done():
			return
		}
		for i := range n {
			fmt.Fprintf(w, "chunk %02d;", i)
			w.(http.Flusher).Flush()
			select {
			case <-ack:
			case <-r.Context().Done():
				return
			}
		}
	}))
	res, err := e.client(t).Get(e.url("/"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	// The response headers arrived while the handler waits.
	if res.StatusCode != 200 || res.Header.Get("X-Stage") != "headers" {
		t.Fatalf("status %d, X-Stage %q", res.StatusCode, res.Header.Get("X-Stage"))
	}
	if res.ContentLength != -1 {
		t.Errorf("ContentLength %d for a streamed body, want -1", res.ContentLength)
	}
	ack <- struct{}{}
	for i := range n {
		want := fmt.Sprintf("chunk %02d;", i)
		buf := make([]byte, len(want))
		if _, err := io.ReadFull(res.Body, buf); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if string(buf) != want {
			t.Fatalf("chunk %d: %q, want %q", i, buf, want)
		}
		select {
		case <-returned:
			t.Fatalf("the handler returned before chunk %d was acknowledged", i)
		default:
		}
		ack <- struct{}{}
	}
	if rest, err := io.ReadAll(res.Body); err != nil || len(rest) != 0 {
		t.Errorf("after the last chunk: %q, %v", rest, err)
	}
	h2tWait(t, returned, "the handler to return")
}

// 4a. Request bodies: echoed with and without Content-Length.
func TestServerRequestBody(t *testing.T) {
	up := make([]byte, 3<<20)
	for i := range up {
		up[i] = byte(i*13 + i>>10)
	}
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Req-Content-Length", strconv.FormatInt(r.ContentLength, 10))
		w.Header().Set("Trailer", "X-Read-Error")
		_, err := io.Copy(w, r.Body)
		w.Header().Set("X-Read-Error", fmt.Sprint(err))
	}))
	c := e.client(t)
	type onlyReader struct{ io.Reader } // hides the length from NewRequest
	tests := []struct {
		name   string
		body   []byte
		hideCL bool
		wantCL string
	}{
		{"3 MiB with Content-Length", up, false, strconv.Itoa(len(up))},
		{"3 MiB without Content-Length", up, true, "-1"},
		{"small with Content-Length", []byte("hello"), false, "5"},
		{"small without Content-Length", []byte("hello"), true, "-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader = bytes.NewReader(tc.body)
			if tc.hideCL {
				rd = onlyReader{rd}
			}
			req, _ := http.NewRequest("POST", e.url("/echo"), rd)
			res, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got := h2tReadAll(t, res)
			if !bytes.Equal(got, tc.body) {
				t.Errorf("echo: %d bytes, want the %d sent", len(got), len(tc.body))
			}
			if cl := res.Header.Get("X-Req-Content-Length"); cl != tc.wantCL {
				t.Errorf("r.ContentLength %s, want %s", cl, tc.wantCL)
			}
			if re := res.Trailer.Get("X-Read-Error"); re != "<nil>" {
				t.Errorf("handler's read error %q", re)
			}
		})
	}

	// The raw client keeps exactly to the windows the server grants: 3 MiB
	// (beyond the 1 MiB the server grants at first) get through only if
	// WINDOW_UPDATEs come.
	t.Run("raw 3 MiB within the granted windows", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, false, h2tReq("POST", e.addr, "/echo", "content-length", strconv.Itoa(len(up)))...)
		connWin, streamWin := int64(65535), int64(65535)
		var connInc, streamInc int64
		var echoed []byte
		var status string
		ended := false
		handle := func(f http2.Frame) {
			switch f := f.(type) {
			case *http2.MetaHeadersFrame:
				if f.StreamID == 1 && status == "" {
					status = f.PseudoValue("status")
				}
				ended = ended || f.StreamEnded()
			case *http2.SettingsFrame:
				if f.IsAck() {
					return
				}
				if v, ok := f.Value(http2.SettingInitialWindowSize); ok {
					streamWin += int64(v) - 65535
				}
			case *http2.WindowUpdateFrame:
				if f.StreamID == 0 {
					connWin += int64(f.Increment)
					connInc += int64(f.Increment)
				} else if f.StreamID == 1 {
					streamWin += int64(f.Increment)
					streamInc += int64(f.Increment)
				}
			case *http2.DataFrame:
				echoed = append(echoed, f.Data()...)
				ended = ended || f.StreamEnded()
				rc.giveBack(f)
			case *http2.RSTStreamFrame:
				t.Fatalf("RST_STREAM %v on stream %d", f.ErrCode, f.StreamID)
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY %v", f.ErrCode)
			}
		}
		for p := up; len(p) > 0; {
			n := min(int64(len(p)), 16384, connWin, streamWin)
			if n <= 0 {
				handle(rc.next())
				continue
			}
			rc.data(1, int(n) == len(p), p[:n])
			connWin -= n
			streamWin -= n
			p = p[n:]
		}
		for !ended {
			handle(rc.next())
		}
		if status != "200" {
			t.Errorf("status %q", status)
		}
		if !bytes.Equal(echoed, up) {
			t.Errorf("echoed %d bytes, want the %d sent", len(echoed), len(up))
		}
		if min(streamInc, connInc) < int64(len(up))-(1<<20) {
			t.Errorf("WINDOW_UPDATE increments: stream %d, connection %d; want at least %d each", streamInc, connInc, len(up)-(1<<20))
		}
	})
}

// 4b. A body whose length does not match its Content-Length is a stream
// error.
func TestServerContentLengthMismatch(t *testing.T) {
	readErrs := make(chan error, 10)
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		if r.Method == "POST" {
			readErrs <- err
		}
		io.WriteString(w, "ok")
	}))
	tests := []struct {
		name        string
		cl          string
		send        func(rc *h2tRaw)
		handlerRuns bool
	}{
		{"longer in one frame", "2", func(rc *h2tRaw) { rc.data(1, true, []byte("abc")) }, true},
		{"longer across frames", "4", func(rc *h2tRaw) {
			rc.data(1, false, []byte("abc"))
			rc.data(1, true, []byte("de"))
		}, true},
		{"longer without END_STREAM", "2", func(rc *h2tRaw) { rc.data(1, false, []byte("abc")) }, true},
		{"shorter", "5", func(rc *h2tRaw) { rc.data(1, true, []byte("abc")) }, true},
		{"shorter, ended by trailers", "5", func(rc *h2tRaw) {
			rc.data(1, false, []byte("abc"))
			rc.headers(1, true, "x-t", "1")
		}, true},
		{"empty DATA ends it short", "3", func(rc *h2tRaw) {
			rc.data(1, false, []byte("a"))
			rc.data(1, true, nil)
		}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc := h2tDial(t, e)
			rc.headers(1, false, h2tReq("POST", e.addr, "/", "content-length", tc.cl)...)
			tc.send(rc)
			r := rc.response(1)
			if !r.reset || r.resetCode != http2.ErrCodeProtocol {
				t.Errorf("stream 1: status %q, reset %v %v; want RST_STREAM PROTOCOL_ERROR", r.status, r.reset, r.resetCode)
			}
			if tc.handlerRuns {
				if err := h2tWait(t, readErrs, "the handler's read"); err == nil {
					t.Errorf("the handler read the body without an error")
				}
			}
			rc.headers(3, true, h2tReq("GET", e.addr, "/")...)
			rc.wantOK("next request", 3)
		})
	}
	t.Run("Content-Length with END_STREAM on HEADERS", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, true, h2tReq("POST", e.addr, "/", "content-length", "3")...)
		if r := rc.response(1); !r.reset || r.resetCode != http2.ErrCodeProtocol {
			t.Errorf("stream 1: status %q, reset %v %v; want RST_STREAM PROTOCOL_ERROR", r.status, r.reset, r.resetCode)
		}
	})
	t.Run("matching Content-Length", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, false, h2tReq("POST", e.addr, "/", "content-length", "5")...)
		rc.data(1, false, []byte("ab"))
		rc.data(1, true, []byte("cde"))
		if err := h2tWait(t, readErrs, "the handler's read"); err != nil {
			t.Errorf("handler's read: %v", err)
		}
		if r := rc.response(1); r.reset || r.status != "200" {
			t.Errorf("stream 1: status %q, reset %v %v", r.status, r.reset, r.resetCode)
		}
	})
}

// 5a. Request trailers reach r.Trailer after the body's EOF.
func TestServerRequestTrailers(t *testing.T) {
	type seen struct {
		before, after http.Header
		body          string
		err           error
	}
	seenCh := make(chan seen, 1)
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var s seen
		s.before = r.Trailer.Clone()
		b, err := io.ReadAll(r.Body)
		s.body, s.err = string(b), err
		s.after = r.Trailer.Clone()
		seenCh <- s
	}))

	t.Run("Go client", func(t *testing.T) {
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", e.url("/"), pr)
		req.Trailer = http.Header{"X-Check": nil, "X-Other": nil}
		go func() {
			io.WriteString(pw, "payload")
			// Trailer values are read after the body's EOF.
			req.Trailer.Set("X-Check", "abc")
			req.Trailer.Set("X-Other", "1")
			pw.Close()
		}()
		res, err := e.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h2tReadAll(t, res)
		s := h2tWait(t, seenCh, "the handler")
		if s.err != nil || s.body != "payload" {
			t.Errorf("body %q, %v", s.body, s.err)
		}
		if _, ok := s.before["X-Check"]; !ok || s.before.Get("X-Check") != "" {
			t.Errorf("r.Trailer before EOF %v, want X-Check declared without a value", s.before)
		}
		if s.after.Get("X-Check") != "abc" || s.after.Get("X-Other") != "1" {
			t.Errorf("r.Trailer after EOF %v, want X-Check abc and X-Other 1", s.after)
		}
	})

	t.Run("raw", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, false, h2tReq("POST", e.addr, "/", "trailer", "x-a, x-b")...)
		rc.data(1, false, []byte("abc"))
		rc.headers(1, true, "x-a", "1", "x-b", "2", "x-b", "3", "content-type", "forbidden/in-trailer", "x-undeclared", "u")
		r := rc.response(1)
		if r.status != "200" {
			t.Errorf(":status %q reset %v", r.status, r.reset)
		}
		s := h2tWait(t, seenCh, "the handler")
		if s.err != nil || s.body != "abc" {
			t.Errorf("body %q, %v", s.body, s.err)
		}
		if len(s.before) != 2 || s.before.Get("X-A") != "" {
			t.Errorf("r.Trailer before EOF %v, want X-A and X-B declared", s.before)
		}
		if s.after.Get("X-A") != "1" || fmt.Sprint(s.after["X-B"]) != "[2 3]" {
			t.Errorf("r.Trailer after EOF %v, want X-A 1, X-B 2 and 3", s.after)
		}
		if len(s.after) != 2 {
			t.Errorf("r.Trailer %v: want only the declared X-A and X-B (as net/http)", s.after)
		}
	})
}

// 5b. Response trailers, declared or with http.TrailerPrefix.
func TestServerResponseTrailers(t *testing.T) {
	large := strings.Repeat("z", 100<<10)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		body    string
		trailer http.Header
		// notHeader are names that must not be response headers.
		notHeader []string
	}{
		{
			name: "declared, small body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum, X-Count")
				io.WriteString(w, "hello")
				w.Header().Set("X-Sum", "s1")
				w.Header().Set("X-Count", "5")
			},
			body:      "hello",
			trailer:   http.Header{"X-Sum": {"s1"}, "X-Count": {"5"}},
			notHeader: []string{"X-Sum", "X-Count"},
		},
		{
			name: "declared, flushed body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-Sum")
				io.WriteString(w, "hello")
				w.(http.Flusher).Flush()
				w.Header().Set("X-Sum", "s2")
			},
			body:      "hello",
			trailer:   http.Header{"X-Sum": {"s2"}},
			notHeader: []string{"X-Sum"},
		},
		{
			name: "TrailerPrefix, no body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(http.TrailerPrefix+"X-Late", "late")
			},
			trailer:   http.Header{"X-Late": {"late"}},
			notHeader: []string{"X-Late", http.TrailerPrefix + "X-Late"},
		},
		{
			name: "both, large body",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", "X-A")
				io.WriteString(w, large)
				w.Header().Set("X-A", "a")
				w.Header().Add(http.TrailerPrefix+"X-B", "b1")
				w.Header().Add(http.TrailerPrefix+"X-B", "b2")
			},
			body:      large,
			trailer:   http.Header{"X-A": {"a"}, "X-B": {"b1", "b2"}},
			notHeader: []string{"X-A", "X-B"},
		},
	}
	mux := http.NewServeMux()
	for i, tc := range tests {
		mux.Handle(fmt.Sprintf("/tr/%d", i), tc.handler)
	}
	e := h2tStart(t, &Server{}, mux)
	c := e.client(t)
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Get(e.url(fmt.Sprintf("/tr/%d", i)))
			if err != nil {
				t.Fatal(err)
			}
			body := h2tReadAll(t, res)
			if string(body) != tc.body {
				t.Errorf("body of %d bytes, want %d", len(body), len(tc.body))
			}
			if fmt.Sprint(res.Trailer) != fmt.Sprint(tc.trailer) {
				t.Errorf("res.Trailer %v, want %v", res.Trailer, tc.trailer)
			}
			for _, k := range tc.notHeader {
				if vv, ok := res.Header[k]; ok {
					t.Errorf("trailer %s also sent as a response header: %q", k, vv)
				}
			}
		})
	}
}

// 6a. 100 concurrent streams on one connection.
func TestServerConcurrentStreams(t *testing.T) {
	const n = 100
	started := make(chan struct{}, n)
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	var mu sync.Mutex
	remotes := map[string]int{}
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/warmup" {
			return
		}
		mu.Lock()
		remotes[r.RemoteAddr]++
		mu.Unlock()
		started <- struct{}{}
		<-gate
		i, _ := strconv.Atoi(r.URL.Query().Get("i"))
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "resp-%d:%s:%s", i, strings.Repeat("x", i*37), b)
	}))
	c := e.client(t)
	res, err := c.Get(e.url("/warmup")) // one connection, SETTINGS known
	if err != nil {
		t.Fatal(err)
	}
	h2tReadAll(t, res)

	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body io.Reader
			method := "GET"
			if i%2 == 1 {
				method, body = "POST", strings.NewReader(fmt.Sprintf("body-%d", i))
			}
			req, _ := http.NewRequest(method, e.url(fmt.Sprintf("/c?i=%d", i)), body)
			res, err := c.Do(req)
			if err != nil {
				errs <- fmt.Errorf("stream %d: %v", i, err)
				return
			}
			got, err := io.ReadAll(res.Body)
			res.Body.Close()
			want := fmt.Sprintf("resp-%d:%s:", i, strings.Repeat("x", i*37))
			if i%2 == 1 {
				want += fmt.Sprintf("body-%d", i)
			}
			if err != nil || res.StatusCode != 200 || string(got) != want {
				errs <- fmt.Errorf("request %d: %d %q, %v; want %q", i, res.StatusCode, got, err, want)
			}
		}()
	}
	// All n handlers run at once before any answers.
	for k := range n {
		select {
		case <-started:
		case <-time.After(h2tSafety):
			t.Fatalf("only %d of %d handlers started concurrently", k, n)
		}
	}
	open()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(remotes) != 1 {
		t.Errorf("requests came over %d connections (%v), want one", len(remotes), remotes)
	}
}

// 6b. MaxConcurrentStreams: a stream over the limit is refused.
func TestServerMaxConcurrentStreams(t *testing.T) {
	started := make(chan string, 10)
	release := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	e := h2tStart(t, &Server{MaxConcurrentStreams: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- r.URL.RawQuery
			<-release
		}
		io.WriteString(w, "done "+r.URL.RawQuery)
	}))
	rc := h2tDial(t, e)
	rc.headers(1, true, h2tReq("GET", e.addr, "/block?1")...)
	rc.headers(3, true, h2tReq("GET", e.addr, "/block?3")...)
	h2tWait(t, started, "handler 1")
	h2tWait(t, started, "handler 3")
	for _, s := range rc.serverSettings {
		if s.ID == http2.SettingMaxConcurrentStreams && s.Val != 2 {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 2", s.Val)
		}
	}
	rc.headers(5, true, h2tReq("GET", e.addr, "/fast")...)
	if r := rc.response(5); !r.reset || r.resetCode != http2.ErrCodeRefusedStream {
		t.Errorf("third stream: status %q, reset %v %v; want RST_STREAM REFUSED_STREAM", r.status, r.reset, r.resetCode)
	}
	close(release)
	rs := rc.responses(1, 3)
	for id, r := range rs {
		if want := fmt.Sprintf("done %d", id); r.status != "200" || string(r.data) != want {
			t.Errorf("stream %d: %q %q reset %v, want 200 %q", id, r.status, r.data, r.reset, want)
		}
	}
	// The slots are free again.
	rc.headers(7, true, h2tReq("GET", e.addr, "/fast")...)
	if r := rc.response(7); r.status != "200" {
		t.Errorf("stream 7 after the others ended: %q reset %v %v", r.status, r.reset, r.resetCode)
	}
}

// 7. The client resetting a stream cancels its handler's context.
func TestServerClientCancel(t *testing.T) {
	started := make(chan struct{}, 1)
	ended := make(chan error, 1)
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			io.WriteString(w, "ok")
			return
		}
		started <- struct{}{}
		select {
		case <-r.Context().Done():
			ended <- r.Context().Err()
		case <-time.After(h2tSafety):
			ended <- errors.New("the context was never canceled")
		}
	}))

	t.Run("raw RST_STREAM", func(t *testing.T) {
		for _, code := range []http2.ErrCode{http2.ErrCodeCancel, http2.ErrCodeNo, http2.ErrCodeInternal} {
			rc := h2tDial(t, e)
			rc.headers(1, true, h2tReq("GET", e.addr, "/wait")...)
			h2tWait(t, started, "the handler")
			rc.fr.WriteRSTStream(1, code) //nolint:errcheck // the wait below fails
			if err := h2tWait(t, ended, "the handler's context"); !errors.Is(err, context.Canceled) {
				t.Errorf("RST_STREAM %v: ctx.Err() %v, want context.Canceled", code, err)
			}
			// Nothing more is sent for the stream, the connection works.
			for _, fh := range rc.sync() {
				if fh.StreamID == 1 {
					t.Errorf("RST_STREAM %v: %v sent after the client's reset", code, fh)
				}
			}
			rc.headers(3, true, h2tReq("GET", e.addr, "/")...)
			if r := rc.response(3); r.status != "200" || string(r.data) != "ok" {
				t.Errorf("next request: %q %q", r.status, r.data)
			}
		}
	})

	// A stream's context is not a child of the connection's: the end of
	// the connection must still end every handler's context.
	t.Run("connection closed", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, true, h2tReq("GET", e.addr, "/wait")...)
		h2tWait(t, started, "the handler")
		rc.tc.Close()
		if err := h2tWait(t, ended, "the handler's context"); !errors.Is(err, context.Canceled) {
			t.Errorf("after the client closed the connection: ctx.Err() %v, want context.Canceled", err)
		}
	})

	t.Run("Go client context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", e.url("/wait"), nil)
		done := make(chan error, 1)
		go func() {
			res, err := e.client(t).Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		h2tWait(t, started, "the handler")
		cancel()
		if err := h2tWait(t, ended, "the handler's context"); !errors.Is(err, context.Canceled) {
			t.Errorf("ctx.Err() %v, want context.Canceled", err)
		}
		if err := h2tWait(t, done, "the client"); err == nil {
			t.Errorf("the canceled request succeeded")
		}
	})
}

// 8. Protocol errors and connection-level frames, one test per kind of
// answer (TestServerProtocol_*), each on a server of its own.

// protocolServer starts a server for the TestServerProtocol_* tests: /block
// blocks until the stream ends (and says so on blocked), /read reads the
// body; every path answers "ok".
func protocolServer(t *testing.T) (e *h2tEnv, blocked chan struct{}, get, post func(path string, extra ...string) []string) {
	t.Helper()
	blocked = make(chan struct{}, 10)
	e = h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			blocked <- struct{}{}
			<-r.Context().Done()
			return
		}
		if r.URL.Path == "/read" {
			io.Copy(io.Discard, r.Body) //nolint:errcheck // a reset stream fails it
		}
		io.WriteString(w, "ok")
	}))
	get = func(path string, extra ...string) []string { return h2tReq("GET", e.addr, path, extra...) }
	post = func(path string, extra ...string) []string { return h2tReq("POST", e.addr, path, extra...) }
	return e, blocked, get, post
}

// TestServerProtocol_preface: a bad preface or a first frame other than SETTINGS ends the connection.
func TestServerProtocol_preface(t *testing.T) {
	e, _, get, _ := protocolServer(t)

	t.Run("bad preface", func(t *testing.T) {
		for _, pre := range []string{
			"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
			"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		} {
			rc := h2tWrap(t, h2tDialTLS(t, e))
			io.WriteString(rc.tc, pre)
			if seen := rc.expectClosed(); len(seen) != 0 {
				t.Errorf("preface %q: frames %v before the close, want none", pre, seen)
			}
		}
	})

	t.Run("no preface within ReadHeaderTimeout", func(t *testing.T) {
		e := h2tStart(t, &Server{ReadHeaderTimeout: 100 * time.Millisecond}, http.NotFoundHandler())
		rc := h2tWrap(t, h2tDialTLS(t, e))
		rc.expectClosed()
	})

	firstFrames := []struct {
		name  string
		write func(rc *h2tRaw)
	}{
		{"PING", func(rc *h2tRaw) { rc.fr.WritePing(false, [8]byte{}) }},
		{"HEADERS", func(rc *h2tRaw) { rc.headers(1, true, get("/")...) }},
		{"WINDOW_UPDATE", func(rc *h2tRaw) { rc.fr.WriteWindowUpdate(0, 1) }},
		{"SETTINGS ACK", func(rc *h2tRaw) { rc.fr.WriteSettingsAck() }},
	}
	for _, tc := range firstFrames {
		t.Run("first frame "+tc.name, func(t *testing.T) {
			rc := h2tWrap(t, h2tDialTLS(t, e))
			io.WriteString(rc.tc, clientPreface)
			tc.write(rc)
			if ga := rc.expectGoAway(); ga.code != http2.ErrCodeProtocol {
				t.Errorf("GOAWAY %v, want PROTOCOL_ERROR", ga.code)
			}
			rc.expectClosed()
		})
	}
}

// TestServerProtocol_streamErrors: stream errors: RST_STREAM, the connection lives on.
func TestServerProtocol_streamErrors(t *testing.T) {
	e, blocked, get, post := protocolServer(t)

	streamErrors := []struct {
		name   string
		fields []string
	}{
		{"uppercase header name", get("/", "X-Upper", "1")},
		{"connection header", get("/", "connection", "keep-alive")},
		{"keep-alive header", get("/", "keep-alive", "5")},
		{"transfer-encoding header", get("/", "transfer-encoding", "chunked")},
		{"te other than trailers", get("/", "te", "gzip")},
		{"missing :path", []string{":method", "GET", ":scheme", "https", ":authority", e.addr}},
		{"missing :method", []string{":scheme", "https", ":authority", e.addr, ":path", "/"}},
		{"empty :path", get("")},
		{":status in a request", get("/", ":status", "200")},
		{"unknown pseudo-header", get("/", ":foo", "bar")},
		{"pseudo-header after a regular one", append([]string{"x-a", "1"}, get("/")...)},
		{"repeated :path", get("/", ":path", "/x")},
		{"header name with a space", get("/", "x a", "1")},
		{"header value with a NUL", get("/", "x-a", "a\x00b")},
	}
	for _, tc := range streamErrors {
		t.Run("RST_STREAM for "+tc.name, func(t *testing.T) {
			rc := h2tDial(t, e)
			rc.headers(1, true, tc.fields...)
			if r := rc.response(1); !r.reset || r.resetCode != http2.ErrCodeProtocol {
				t.Errorf("stream 1: status %q, reset %v %v; want RST_STREAM PROTOCOL_ERROR", r.status, r.reset, r.resetCode)
			}
			// The connection and its HPACK state go on.
			rc.headers(3, true, get("/", "x-after", "1")...)
			rc.wantOK("next request", 3)
			rc.wantNoGoAway()
		})
	}

	// Stream errors for frames a stream's state does not allow: the
	// stream is reset with code, the connection goes on.
	stateErrors := []struct {
		name  string
		write func(t *testing.T, rc *h2tRaw) // ends with the frame in error on stream 1
		code  http2.ErrCode
	}{
		// RFC 9113 5.1, half-closed (remote): the client sent END_STREAM.
		{"HEADERS on a half-closed (remote) stream", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.headers(1, true, get("/block")...)
		}, http2.ErrCodeStreamClosed},
		{"DATA on a half-closed (remote) stream", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.data(1, true, []byte("x"))
		}, http2.ErrCodeStreamClosed},
		{"DATA on a half-closed (remote) stream with a body", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.data(1, true, []byte("x"))
			rc.data(1, true, []byte("y"))
		}, http2.ErrCodeStreamClosed},
		// RFC 9113 5.1, closed: the client sent RST_STREAM.
		{"DATA after the client's RST_STREAM", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.fr.WriteRSTStream(1, http2.ErrCodeCancel) //nolint:errcheck // the read fails
			rc.data(1, true, []byte("x"))
		}, http2.ErrCodeStreamClosed},
		{"HEADERS after the client's RST_STREAM", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.fr.WriteRSTStream(1, http2.ErrCodeCancel) //nolint:errcheck // the read fails
			rc.headers(1, true, get("/")...)
		}, http2.ErrCodeStreamClosed},
		{"DATA after the client's RST_STREAM on an ended request", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.fr.WriteRSTStream(1, http2.ErrCodeCancel) //nolint:errcheck // the read fails
			rc.data(1, true, []byte("x"))
		}, http2.ErrCodeStreamClosed},
		// RFC 9113 5.3.1: a stream cannot depend on itself.
		{"HEADERS depending on itself", func(t *testing.T, rc *h2tRaw) {
			err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
				StreamID: 1, BlockFragment: rc.block(get("/")...), EndHeaders: true, EndStream: true,
				Priority: http2.PriorityParam{StreamDep: 1, Weight: 255},
			})
			if err != nil {
				t.Fatal(err)
			}
		}, http2.ErrCodeProtocol},
		{"PRIORITY on an open stream depending on itself", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/block")...)
			h2tWait(t, blocked, "the handler")
			rc.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1, Weight: 16}) //nolint:errcheck // the read fails
		}, http2.ErrCodeProtocol},
		{"trailers depending on their stream", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/block")...)
			h2tWait(t, blocked, "the handler")
			err := rc.fr.WriteHeaders(http2.HeadersFrameParam{
				StreamID: 1, BlockFragment: rc.block("x-trailer", "1"), EndHeaders: true, EndStream: true,
				Priority: http2.PriorityParam{StreamDep: 1, Weight: 16},
			})
			if err != nil {
				t.Fatal(err)
			}
		}, http2.ErrCodeProtocol},
	}
	for _, tc := range stateErrors {
		t.Run("RST_STREAM for "+tc.name, func(t *testing.T) {
			rc := h2tDial(t, e)
			tc.write(t, rc)
			if f := rc.until(http2.FrameRSTStream, 1).(*http2.RSTStreamFrame); f.ErrCode != tc.code {
				t.Errorf("RST_STREAM %v on stream 1, want %v", f.ErrCode, tc.code)
			}
			// One answer: a frame on the stream reset now is ignored
			// (RFC 9113 5.1).
			rc.data(1, true, []byte("late"))
			for _, fh := range rc.sync() {
				if fh.StreamID == 1 {
					t.Errorf("%v after the stream was reset", fh)
				}
			}
			rc.headers(3, true, get("/")...)
			rc.wantOK("next request", 3)
			rc.wantNoGoAway()
		})
	}

	// RFC 9113 5.3.1 for a PRIORITY frame on an idle stream: the stream
	// error leaves the stream idle (PRIORITY does not open it, RFC 9113
	// 5.1), as in net/http; the client may still open it.
	t.Run("RST_STREAM for PRIORITY on an idle stream depending on itself", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.fr.WritePriority(1, http2.PriorityParam{StreamDep: 1, Weight: 255}) //nolint:errcheck // the read fails
		if f := rc.until(http2.FrameRSTStream, 1).(*http2.RSTStreamFrame); f.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("RST_STREAM %v on stream 1, want PROTOCOL_ERROR", f.ErrCode)
		}
		rc.headers(1, true, get("/")...)
		rc.wantOK("request on stream 1", 1)
		rc.wantNoGoAway()
	})
}

// TestServerProtocol_connErrors: connection errors: GOAWAY with the code RFC 9113 names.
func TestServerProtocol_connErrors(t *testing.T) {
	e, blocked, get, post := protocolServer(t)

	connErrors := []struct {
		name  string
		write func(t *testing.T, rc *h2tRaw)
		code  http2.ErrCode
	}{
		{"DATA on an idle stream", func(t *testing.T, rc *h2tRaw) { rc.data(5, true, []byte("x")) }, http2.ErrCodeProtocol},
		{"DATA on an idle stream after an open one", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/")...)
			rc.response(1)
			rc.data(3, false, []byte("x"))
		}, http2.ErrCodeProtocol},
		{"HEADERS on an even stream", func(t *testing.T, rc *h2tRaw) { rc.headers(2, true, get("/")...) }, http2.ErrCodeProtocol},
		{"RST_STREAM on an idle stream", func(t *testing.T, rc *h2tRaw) { rc.fr.WriteRSTStream(7, http2.ErrCodeCancel) }, http2.ErrCodeProtocol},
		{"WINDOW_UPDATE on an idle stream", func(t *testing.T, rc *h2tRaw) { rc.fr.WriteWindowUpdate(9, 10) }, http2.ErrCodeProtocol},
		{"connection WINDOW_UPDATE overflow", func(t *testing.T, rc *h2tRaw) { rc.fr.WriteWindowUpdate(0, 1<<31-1) }, http2.ErrCodeFlowControl},
		{"connection WINDOW_UPDATE overflow in two steps", func(t *testing.T, rc *h2tRaw) {
			rc.fr.WriteWindowUpdate(0, 1<<30)
			rc.fr.WriteWindowUpdate(0, 1<<30)
		}, http2.ErrCodeFlowControl},
		{"INITIAL_WINDOW_SIZE too large", func(t *testing.T, rc *h2tRaw) {
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 31})
		}, http2.ErrCodeFlowControl},
		{"ENABLE_PUSH 2", func(t *testing.T, rc *h2tRaw) {
			rc.fr.WriteSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 2})
		}, http2.ErrCodeProtocol},
		{"frame over MAX_FRAME_SIZE", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, h2tReq("POST", e.addr, "/")...)
			// The frame header alone: the server rejects the frame on its
			// length, and no unread payload makes its close a reset.
			rc.tc.Write([]byte{0, 0x4e, 0x20, byte(http2.FrameData), 0, 0, 0, 0, 1})
		}, http2.ErrCodeFrameSize},
		{"PUSH_PROMISE from the client", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, h2tReq("POST", e.addr, "/block")...)
			h2tWait(t, blocked, "the handler")
			rc.fr.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, BlockFragment: rc.block(get("/")...), EndHeaders: true})
		}, http2.ErrCodeProtocol},
		// RFC 9113 5.1.1: a new stream's id exceeds every id used before.
		{"HEADERS on a stream below the last opened", func(t *testing.T, rc *h2tRaw) {
			rc.headers(5, true, get("/")...)
			rc.headers(3, true, get("/")...)
		}, http2.ErrCodeProtocol},
		{"HEADERS on a skipped stream after the last one ended", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/")...)
			rc.headers(7, true, get("/")...)
			rc.responses(1, 7)
			rc.headers(5, true, get("/")...)
		}, http2.ErrCodeProtocol},
		// RFC 9113 5.1, closed: both sides sent END_STREAM (the response's
		// is read before the frame is sent).
		{"DATA on a closed stream", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/")...)
			rc.response(1)
			rc.data(1, true, []byte("x"))
		}, http2.ErrCodeStreamClosed},
		{"HEADERS on a closed stream", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/")...)
			rc.response(1)
			rc.headers(1, true, get("/")...)
		}, http2.ErrCodeStreamClosed},
		{"DATA on a closed stream whose body was read", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/read")...)
			rc.data(1, true, []byte("body"))
			if r := rc.response(1); r.status != "200" || r.reset {
				t.Errorf("stream 1: status %q reset %v %v", r.status, r.reset, r.resetCode)
			}
			rc.data(1, false, []byte("more"))
		}, http2.ErrCodeStreamClosed},
		{"trailers on a closed stream whose body was read", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/read")...)
			rc.data(1, true, []byte("body"))
			rc.response(1)
			rc.headers(1, true, "x-trailer", "1")
		}, http2.ErrCodeStreamClosed},
		{"DATA on a skipped stream", func(t *testing.T, rc *h2tRaw) {
			rc.headers(5, true, get("/")...)
			rc.response(5)
			rc.data(3, true, []byte("x"))
		}, http2.ErrCodeStreamClosed},
	}
	for _, tc := range connErrors {
		t.Run("GOAWAY for "+tc.name, func(t *testing.T) {
			rc := h2tDial(t, e)
			tc.write(t, rc)
			if ga := rc.expectGoAway(); ga.code != tc.code {
				t.Errorf("GOAWAY %v, want %v", ga.code, tc.code)
			}
			rc.expectClosed()
		})
	}
}

// TestServerProtocol_lateFrames: frames on closed streams are ignored; a stream's window cannot overflow.
func TestServerProtocol_lateFrames(t *testing.T) {
	e, blocked, get, post := protocolServer(t)

	// RFC 9113 5.1 and 6.4: a client may still send frames on a stream the
	// server reset, before it sees the RST_STREAM; they are ignored, DATA
	// counting against (and given back to) the connection window. So are
	// WINDOW_UPDATE, PRIORITY and RST_STREAM on a closed stream.
	lateFrames := []struct {
		name  string
		write func(t *testing.T, rc *h2tRaw) // leaves stream 1 closed
	}{
		{"after the response, body unread", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/")...)
			if r := rc.response(1); r.status != "200" {
				t.Errorf("stream 1: status %q reset %v %v", r.status, r.reset, r.resetCode)
			}
			rc.until(http2.FrameRSTStream, 1) // NO_ERROR: the body is not needed
		}},
		{"after a Content-Length mismatch", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/read", "content-length", "1")...)
			rc.data(1, false, []byte("too long"))
			if r := rc.response(1); !r.reset || r.resetCode != http2.ErrCodeProtocol {
				t.Errorf("stream 1: status %q reset %v %v; want RST_STREAM PROTOCOL_ERROR", r.status, r.reset, r.resetCode)
			}
		}},
		{"after a malformed request", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, false, post("/", "connection", "close")...)
			if r := rc.response(1); !r.reset || r.resetCode != http2.ErrCodeProtocol {
				t.Errorf("stream 1: status %q reset %v %v; want RST_STREAM PROTOCOL_ERROR", r.status, r.reset, r.resetCode)
			}
		}},
		{"after both END_STREAMs: control frames", func(t *testing.T, rc *h2tRaw) {
			rc.headers(1, true, get("/")...)
			rc.response(1)
		}},
	}
	for _, tc := range lateFrames {
		t.Run("frames ignored "+tc.name, func(t *testing.T) {
			rc := h2tDial(t, e)
			tc.write(t, rc)
			rc.fr.WriteWindowUpdate(1, 100)                                      //nolint:errcheck // the read fails
			rc.fr.WritePriority(1, http2.PriorityParam{StreamDep: 0, Weight: 8}) //nolint:errcheck // as above
			rc.fr.WriteRSTStream(1, http2.ErrCodeCancel)                         //nolint:errcheck // as above
			if !strings.Contains(tc.name, "END_STREAMs") {
				// More than the connection window (1 MiB): it is given
				// back as the frames are dropped.
				chunk := make([]byte, maxReadFrame)
				for range 2 * connWindow / maxReadFrame {
					rc.data(1, false, chunk)
				}
				rc.headers(1, true, "x-trailer", "1")
			}
			for _, fh := range rc.sync() {
				if fh.StreamID == 1 {
					t.Errorf("%v for a late frame", fh)
				}
			}
			// The connection, and its window, still serve a request body.
			rc.headers(3, false, post("/read")...)
			for i := range 4 {
				rc.data(3, i == 3, make([]byte, maxReadFrame))
			}
			rc.wantOK("next request", 3)
			rc.wantNoGoAway()
		})
	}

	t.Run("stream WINDOW_UPDATE overflow", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, true, get("/block")...)
		h2tWait(t, blocked, "the handler")
		rc.fr.WriteWindowUpdate(1, 1<<31-1) //nolint:errcheck // the read fails
		if r := rc.response(1); !r.reset || r.resetCode != http2.ErrCodeFlowControl {
			t.Errorf("stream 1: status %q, reset %v %v; want RST_STREAM FLOW_CONTROL_ERROR", r.status, r.reset, r.resetCode)
		}
		rc.headers(3, true, get("/")...)
		if r := rc.response(3); r.status != "200" {
			t.Errorf("next request: %q reset %v", r.status, r.reset)
		}
	})
}

// TestServerProtocol_pingSettings: PING and SETTINGS are answered.
func TestServerProtocol_pingSettings(t *testing.T) {
	e, _, get, _ := protocolServer(t)

	t.Run("PING", func(t *testing.T) {
		rc := h2tDial(t, e)
		for _, data := range [][8]byte{{1, 2, 3, 4, 5, 6, 7, 8}, {0xff, 0, 0xfe, 1, 0xfd, 2, 0xfc, 3}} {
			rc.fr.WritePing(false, data) //nolint:errcheck // the read fails
			for {
				p, ok := rc.next().(*http2.PingFrame)
				if !ok {
					continue
				}
				if !p.IsAck() || p.Data != data {
					t.Errorf("PING reply: ack %v data %v, want an ACK of %v", p.IsAck(), p.Data, data)
				}
				break
			}
		}
		// A PING ACK from the client is not answered.
		rc.fr.WritePing(true, [8]byte{9})
		for _, fh := range rc.sync() {
			if fh.Type == http2.FramePing {
				t.Errorf("reply to a PING ACK: %v", fh)
			}
		}
	})

	t.Run("SETTINGS", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.sync()
		if rc.settingsAcks != 1 {
			t.Fatalf("%d SETTINGS ACKs for the first SETTINGS, want 1", rc.settingsAcks)
		}
		want := map[http2.SettingID]uint32{
			http2.SettingMaxConcurrentStreams: DefaultMaxConcurrentStreams,
			http2.SettingInitialWindowSize:    1 << 20,
		}
		for _, s := range rc.serverSettings {
			if v, ok := want[s.ID]; ok && v != s.Val {
				t.Errorf("server's %v = %d, want %d", s.ID, s.Val, v)
			}
			delete(want, s.ID)
		}
		if len(want) != 0 {
			t.Errorf("server's SETTINGS %v lack %v", rc.serverSettings, want)
		}
		rc.fr.WriteSettings(http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20}, http2.Setting{ID: http2.SettingHeaderTableSize, Val: 0})
		rc.fr.WriteSettings()
		rc.sync()
		if rc.settingsAcks != 3 {
			t.Errorf("%d SETTINGS ACKs for 3 SETTINGS", rc.settingsAcks)
		}
		// Still serving, with a header table of 0.
		rc.headers(1, true, get("/")...)
		if r := rc.response(1); r.status != "200" || string(r.data) != "ok" {
			t.Errorf("request after SETTINGS: %q %q", r.status, r.data)
		}
	})
}

// 9. A handler's panic resets its stream; the connection goes on.
func TestServerHandlerPanic(t *testing.T) {
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("flush") != "" {
			io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
		}
		switch q.Get("panic") {
		case "abort":
			panic(http.ErrAbortHandler)
		case "":
			io.WriteString(w, "ok")
		default:
			panic("boom-" + q.Get("panic"))
		}
	}))
	tests := []struct {
		name      string
		query     string
		wantLog   string // "" nothing logged
		wantPart  bool   // HEADERS and "partial" before the reset
		abortKind bool
	}{
		{"panic", "panic=a", "boom-a", false, false},
		{"panic after Flush", "panic=b&flush=1", "boom-b", true, false},
		{"ErrAbortHandler", "panic=abort", "", false, true},
		{"ErrAbortHandler after Flush", "panic=abort&flush=1", "", true, true},
	}
	rc := h2tDial(t, e)
	id := uint32(1)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc.t = t
			rc.headers(id, true, h2tReq("GET", e.addr, "/?"+tc.query)...)
			r := rc.response(id)
			if !r.reset || r.resetCode != http2.ErrCodeInternal {
				t.Errorf("status %q, reset %v %v; want RST_STREAM INTERNAL_ERROR", r.status, r.reset, r.resetCode)
			}
			if tc.wantPart && (r.status != "200" || string(r.data) != "partial") {
				t.Errorf("before the reset: %q %q, want 200 and the flushed part", r.status, r.data)
			}
			if !tc.wantPart && r.status != "" {
				t.Errorf("response HEADERS %q sent for a handler that panicked before writing", r.status)
			}
			if tc.wantLog != "" && !strings.Contains(e.log.String(), tc.wantLog) {
				t.Errorf("the panic %q was not logged: %q", tc.wantLog, e.log.String())
			}
			id += 2
			rc.headers(id, true, h2tReq("GET", e.addr, "/")...)
			rc.wantOK("next request", id)
			id += 2
		})
	}
	if l := e.log.String(); strings.Contains(l, "abort Handler") {
		t.Errorf("http.ErrAbortHandler logged: %q", l)
	}

	t.Run("Go client", func(t *testing.T) {
		c := e.client(t)
		if res, err := c.Get(e.url("/?panic=abort")); err == nil {
			res.Body.Close()
			t.Errorf("a request whose handler panicked succeeded: %d", res.StatusCode)
		}
		res, err := c.Get(e.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		if b := h2tReadAll(t, res); string(b) != "ok" {
			t.Errorf("after a panic: %q", b)
		}
	})
}

// 10. Graceful shutdown: GOAWAY, in-flight responses complete, then
// Shutdown returns.
func TestServerShutdown(t *testing.T) {
	t.Run("response in flight", func(t *testing.T) {
		started := make(chan struct{}, 1)
		release := make(chan struct{})
		var handled atomic.Int32
		e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			handled.Add(1)
			started <- struct{}{}
			<-release
			io.WriteString(w, "done")
		}))
		rc := h2tDial(t, e)
		rc.headers(1, true, h2tReq("GET", e.addr, "/")...)
		h2tWait(t, started, "the handler")

		ctx, cancel := context.WithTimeout(context.Background(), h2tSafety)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- e.hs.Shutdown(ctx) }()
		ga := rc.expectGoAway()
		if ga.code != http2.ErrCodeNo || ga.last != 1 {
			t.Errorf("GOAWAY %v last stream %d, want NO_ERROR and 1", ga.code, ga.last)
		}
		// A stream opened after the GOAWAY is not served.
		rc.headers(3, true, h2tReq("GET", e.addr, "/")...)
		for _, fh := range rc.sync() {
			if fh.StreamID == 3 {
				t.Errorf("stream 3 after GOAWAY: %v", fh)
			}
		}
		select {
		case err := <-shut:
			t.Fatalf("Shutdown returned (%v) with a response in flight", err)
		default:
		}
		close(release)
		r := rc.response(1)
		if r.status != "200" || string(r.data) != "done" || r.reset {
			t.Errorf("in-flight response: %q %q reset %v", r.status, r.data, r.reset)
		}
		rc.expectClosed()
		if err := h2tWait(t, shut, "Shutdown"); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if n := handled.Load(); n != 1 {
			t.Errorf("%d handlers ran, want 1", n)
		}
	})

	t.Run("idle connection", func(t *testing.T) {
		e := h2tStart(t, &Server{}, http.NotFoundHandler())
		rc := h2tDial(t, e)
		rc.headers(1, true, h2tReq("GET", e.addr, "/")...)
		if r := rc.response(1); r.status != "404" {
			t.Fatalf("status %q", r.status)
		}
		shut := make(chan error, 1)
		go func() { shut <- e.hs.Shutdown(context.Background()) }()
		if ga := rc.expectGoAway(); ga.code != http2.ErrCodeNo || ga.last != 1 {
			t.Errorf("GOAWAY %v last stream %d, want NO_ERROR and 1", ga.code, ga.last)
		}
		rc.expectClosed()
		if err := h2tWait(t, shut, "Shutdown"); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
}

// 11. IdleTimeout: GOAWAY, then the connection is closed.
func TestServerIdleTimeout(t *testing.T) {
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	e := h2tStart(t, &Server{IdleTimeout: 200 * time.Millisecond}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/block" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	deadline := func(rc *h2tRaw) { rc.tc.SetDeadline(time.Now().Add(5 * time.Second)) } //nolint:errcheck // safety net

	t.Run("never used", func(t *testing.T) {
		rc := h2tDial(t, e)
		deadline(rc)
		if ga := rc.expectGoAway(); ga.code != http2.ErrCodeNo || ga.last != 0 {
			t.Errorf("GOAWAY %v last %d, want NO_ERROR 0", ga.code, ga.last)
		}
		rc.expectClosed()
	})

	t.Run("after a request", func(t *testing.T) {
		rc := h2tDial(t, e)
		deadline(rc)
		rc.headers(1, true, h2tReq("GET", e.addr, "/")...)
		if r := rc.response(1); r.status != "200" {
			t.Fatalf("status %q", r.status)
		}
		if ga := rc.expectGoAway(); ga.code != http2.ErrCodeNo || ga.last != 1 {
			t.Errorf("GOAWAY %v last %d, want NO_ERROR 1", ga.code, ga.last)
		}
		rc.expectClosed()
	})

	t.Run("not while a stream is open", func(t *testing.T) {
		busy := h2tDial(t, e)
		busy.headers(1, true, h2tReq("GET", e.addr, "/block")...)
		h2tWait(t, started, "the handler")
		// A connection opened later, as a clock: when its idle timeout has
		// passed, so has the busy connection's.
		clock := h2tDial(t, e)
		deadline(clock)
		clock.expectGoAway()
		clock.expectClosed()
		for _, fh := range busy.sync() {
			if fh.Type == http2.FrameGoAway {
				t.Errorf("GOAWAY on a connection with an open stream")
			}
		}
		close(release)
		if r := busy.response(1); r.status != "200" || string(r.data) != "ok" {
			t.Errorf("response: %q %q reset %v", r.status, r.data, r.reset)
		}
		if busy.goAway != nil {
			t.Errorf("GOAWAY before the open stream's response")
		}
		deadline(busy)
		if ga := busy.expectGoAway(); ga.code != http2.ErrCodeNo || ga.last != 1 {
			t.Errorf("GOAWAY %v last %d, want NO_ERROR 1", ga.code, ga.last)
		}
		busy.expectClosed()
	})
}

// 12. What the handler sees of the request.
func TestServerRequestFields(t *testing.T) {
	type info struct {
		tls                  bool
		alpn                 string
		remote, proto        string
		major, minor         int
		host, cookie, method string
		path, query, uri     string
		srvCtx               any
		header               http.Header
		contentLength        int64
	}
	infos := make(chan info, 1)
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := info{
			tls: r.TLS != nil, remote: r.RemoteAddr, proto: r.Proto, major: r.ProtoMajor, minor: r.ProtoMinor,
			host: r.Host, cookie: r.Header.Get("Cookie"), method: r.Method, path: r.URL.Path, query: r.URL.RawQuery,
			uri: r.RequestURI, header: r.Header.Clone(), contentLength: r.ContentLength,
		}
		if r.TLS != nil {
			in.alpn = r.TLS.NegotiatedProtocol
		}
		in.srvCtx = r.Context().Value(http.ServerContextKey)
		infos <- in
	}))

	t.Run("raw", func(t *testing.T) {
		rc := h2tDial(t, e)
		rc.headers(1, true, h2tReq("GET", "example.test:8443", "/p/a%20b?x=1&y=2",
			"cookie", "a=1", "user-agent", "raw", "cookie", "b=2", "cookie", "c=3", "x-dup", "1", "x-dup", "2")...)
		rc.response(1)
		in := h2tWait(t, infos, "the handler")
		if !in.tls || in.alpn != "h2" {
			t.Errorf("r.TLS set %v, ALPN %q", in.tls, in.alpn)
		}
		if in.remote != rc.tc.LocalAddr().String() {
			t.Errorf("RemoteAddr %q, want %q", in.remote, rc.tc.LocalAddr())
		}
		if in.proto != "HTTP/2.0" || in.major != 2 || in.minor != 0 {
			t.Errorf("Proto %q %d.%d", in.proto, in.major, in.minor)
		}
		if in.host != "example.test:8443" {
			t.Errorf("Host %q, want :authority", in.host)
		}
		if in.cookie != "a=1; b=2; c=3" || len(in.header["Cookie"]) != 1 {
			t.Errorf("Cookie %q (%d fields), want a=1; b=2; c=3 in one", in.cookie, len(in.header["Cookie"]))
		}
		if in.method != "GET" || in.path != "/p/a b" || in.query != "x=1&y=2" || in.uri != "/p/a%20b?x=1&y=2" {
			t.Errorf("method %q path %q query %q RequestURI %q", in.method, in.path, in.query, in.uri)
		}
		if fmt.Sprint(in.header["X-Dup"]) != "[1 2]" || in.header.Get("User-Agent") != "raw" {
			t.Errorf("header %v", in.header)
		}
		if _, ok := in.header["Host"]; ok {
			t.Errorf("Host in r.Header: %v", in.header)
		}
		if in.contentLength != 0 {
			t.Errorf("ContentLength %d for a request without a body", in.contentLength)
		}
		if in.srvCtx != e.hs {
			t.Errorf("r.Context()'s http.ServerContextKey %v, want the http.Server", in.srvCtx)
		}
	})

	t.Run("Go client", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.url("/q"), nil)
		req.Header.Set("Cookie", "k1=v1; k2=v2")
		req.AddCookie(&http.Cookie{Name: "k3", Value: "v3"})
		res, err := e.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		h2tReadAll(t, res)
		in := h2tWait(t, infos, "the handler")
		if in.host != e.addr || !in.tls || in.proto != "HTTP/2.0" || in.remote == "" {
			t.Errorf("Host %q TLS %v Proto %q RemoteAddr %q", in.host, in.tls, in.proto, in.remote)
		}
		if in.cookie != "k1=v1; k2=v2; k3=v3" {
			t.Errorf("Cookie %q", in.cookie)
		}
	})
}

// The record of closed streams is bounded: once full, the oldest ids drop
// out and count as not remembered (frames on them ignored), while a missing
// id within the record was never opened.
func TestServerStreamLog(t *testing.T) {
	var l streamLog
	// Odd ids from 1, 3 skipped, until the record is full and id 1 dropped
	// out; then one more, skipping an id.
	l.add(1, endBoth)
	for id := uint32(5); len(l.recs) < streamRecord || l.floor == 0; id += 2 {
		l.add(id, endByUs)
	}
	last := l.recs[(l.head+len(l.recs)-1)%len(l.recs)].id
	l.add(last+4, endByPeer) // skips last+2
	for _, tc := range []struct {
		id      uint32
		found   bool
		end     streamEnd
		covered bool
	}{
		{1, false, 0, false},     // dropped out
		{3, false, 0, false},     // skipped, but below the record
		{5, false, 0, false},     // dropped out as the last one came
		{7, true, endByUs, true}, // the oldest remembered
		{last, true, endByUs, true},
		{last + 2, false, 0, true},        // skipped within the record
		{last + 4, true, endByPeer, true}, // the newest
	} {
		rec, covered := l.find(tc.id)
		if (rec != nil) != tc.found || covered != tc.covered || (rec != nil && rec.end != tc.end) {
			t.Errorf("find(%d) = %+v, %v; want found %v end %v covered %v", tc.id, rec, covered, tc.found, tc.end, tc.covered)
		}
	}
	if len(l.recs) != streamRecord {
		t.Errorf("%d records, want at most %d", len(l.recs), streamRecord)
	}
}
