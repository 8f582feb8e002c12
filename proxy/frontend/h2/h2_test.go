package h2

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// wtServe starts an http.Server with h2 on 127.0.0.1 over TLS; it returns
// the address, a client certificate pool and the server.
func wtServe(t *testing.T, s *Server, h http.Handler) (string, *x509.CertPool, *http.Server) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	conf := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{"h2", "http/1.1"},
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, TLSConfig: conf}
	s.Configure(hs)
	go hs.Serve(ln) //nolint:errcheck // ends at Close
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String(), pool, hs
}

func wtClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 20 * time.Second}
}

func TestH2Responses(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16) // 5 MiB: beyond every window
	mux := http.NewServeMux()
	mux.HandleFunc("/small", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("Connection", "close") // connection-specific: never sent
		w.Header().Set("Transfer-Encoding", "chunked")
		fmt.Fprintf(w, "proto=%s tls=%v host=%s cookie=%s remote=%v", r.Proto, r.TLS != nil, r.Host,
			r.Header.Get("Cookie"), r.RemoteAddr != "")
	})
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("/304", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotModified) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Sum")
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(w, h), r.Body)
		if err != nil {
			t.Errorf("reading the body: %v", err)
		}
		w.Header().Set("X-Sum", fmt.Sprintf("%x", h.Sum(nil)))
		w.Header().Set(http.TrailerPrefix+"X-Len", fmt.Sprint(n))
		w.Header().Set(http.TrailerPrefix+"X-Req-Trailer", r.Trailer.Get("X-Client"))
	})
	addr, pool, _ := wtServe(t, &Server{}, mux)
	c := wtClient(pool)
	base := "https://" + addr

	req, _ := http.NewRequest("GET", base+"/small", nil)
	req.Header.Add("Cookie", "a=1")
	req.Header.Add("Cookie", "b=2")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	want := "proto=HTTP/2.0 tls=true host=" + addr + " cookie=a=1; b=2 remote=true"
	if string(body) != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if res.ContentLength != int64(len(want)) || res.Header.Get("Date") == "" || res.Header.Get("Connection") != "" ||
		len(res.TransferEncoding) != 0 {
		t.Errorf("headers: length %d, %v", res.ContentLength, res.Header)
	}

	for _, method := range []string{"GET", "HEAD"} {
		req, _ := http.NewRequest(method, base+"/big", nil)
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatalf("%s /big: %v", method, err)
		}
		if method == "GET" && !bytes.Equal(got, big) || method == "HEAD" && len(got) != 0 {
			t.Errorf("%s /big: %d bytes", method, len(got))
		}
	}

	res, err = c.Get(base + "/304")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 304 || len(got) != 0 {
		t.Errorf("304: status %d, %d bytes", res.StatusCode, len(got))
	}

	// A 3 MiB upload without Content-Length, with a trailer: request flow
	// control, body streamed back, trailers both ways.
	up := big[:3<<20]
	pr, pw := io.Pipe()
	go func() {
		for p := up; len(p) > 0; p = p[min(len(p), 100000):] {
			pw.Write(p[:min(len(p), 100000)])
		}
		pw.Close()
	}()
	req, _ = http.NewRequest("POST", base+"/echo", pr)
	req.Trailer = http.Header{"X-Client": {"hi"}}
	res, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err = io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || !bytes.Equal(got, up) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	if sum := fmt.Sprintf("%x", sha256.Sum256(up)); res.Trailer.Get("X-Sum") != sum || res.Trailer.Get("X-Len") != fmt.Sprint(len(up)) ||
		res.Trailer.Get("X-Req-Trailer") != "hi" {
		t.Errorf("trailers %v, want X-Sum %s, X-Len %d and X-Req-Trailer hi", res.Trailer, sum, len(up))
	}

	// 100 concurrent streams on the connection.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := strings.Repeat("x", i*100)
			res, err := c.Post(base+"/echo", "text/plain", strings.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil || string(got) != body {
				errs <- fmt.Errorf("stream %d: %d bytes, %v", i, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// wtRaw is a client that writes and reads frames as they are.
type wtRaw struct {
	t   *testing.T
	c   *tls.Conn
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func wtDialRaw(t *testing.T, addr string, pool *x509.CertPool) *wtRaw {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(20 * time.Second)) // safety net
	rc := &wtRaw{t: t, c: c, fr: http2.NewFramer(c, c)}
	rc.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	rc.enc = hpack.NewEncoder(&rc.buf)
	io.WriteString(c, clientPreface)
	rc.fr.WriteSettings()
	return rc
}

func (rc *wtRaw) headers(id uint32, end bool, fields ...string) {
	rc.buf.Reset()
	for i := 0; i < len(fields); i += 2 {
		rc.enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	if err := rc.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rc.buf.Bytes(), EndHeaders: true, EndStream: end}); err != nil {
		rc.t.Fatal(err)
	}
}

// next reads frames until one of type typ (for stream id, unless 0).
func (rc *wtRaw) next(typ http2.FrameType, id uint32) http2.Frame {
	rc.t.Helper()
	for {
		f, err := rc.fr.ReadFrame()
		if err != nil {
			rc.t.Fatalf("waiting for %v on stream %d: %v", typ, id, err)
		}
		if f.Header().Type == typ && (id == 0 || f.Header().StreamID == id) {
			return f
		}
	}
}

func TestH2Protocol(t *testing.T) {
	addr, pool, _ := wtServe(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // a body error must come from the server, not an early end
		io.WriteString(w, "ok")
	}))
	get := []string{":method", "GET", ":scheme", "https", ":authority", addr, ":path", "/"}

	t.Run("ping and settings acknowledged", func(t *testing.T) {
		rc := wtDialRaw(t, addr, pool)
		rc.next(http2.FrameSettings, 0)
		rc.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8})
		for {
			f := rc.next(http2.FramePing, 0).(*http2.PingFrame)
			if f.IsAck() {
				if f.Data != [8]byte{1, 2, 3, 4, 5, 6, 7, 8} {
					t.Errorf("PING ACK data %v", f.Data)
				}
				break
			}
		}
	})

	bad := []struct {
		name   string
		fields []string
	}{
		{"connection header", append(append([]string{}, get...), "connection", "keep-alive")},
		{"no :path", get[:6]},
		{"te other than trailers", append(append([]string{}, get...), "te", "gzip")},
		{":status in a request", append(append([]string{}, get...), ":status", "200")},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			rc := wtDialRaw(t, addr, pool)
			rc.headers(1, true, tc.fields...)
			f := rc.next(http2.FrameRSTStream, 1).(*http2.RSTStreamFrame)
			if f.ErrCode != http2.ErrCodeProtocol {
				t.Errorf("RST_STREAM %v, want PROTOCOL_ERROR", f.ErrCode)
			}
			// The connection still serves a valid request.
			rc.headers(3, true, get...)
			h := rc.next(http2.FrameHeaders, 3).(*http2.MetaHeadersFrame)
			if s := h.PseudoValue("status"); s != "200" {
				t.Errorf("next request: status %q", s)
			}
		})
	}

	t.Run("DATA on an idle stream", func(t *testing.T) {
		rc := wtDialRaw(t, addr, pool)
		rc.fr.WriteData(5, true, []byte("x"))
		f := rc.next(http2.FrameGoAway, 0).(*http2.GoAwayFrame)
		if f.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("GOAWAY %v, want PROTOCOL_ERROR", f.ErrCode)
		}
	})

	t.Run("connection window overflow", func(t *testing.T) {
		rc := wtDialRaw(t, addr, pool)
		rc.fr.WriteWindowUpdate(0, 1<<31-1)
		f := rc.next(http2.FrameGoAway, 0).(*http2.GoAwayFrame)
		if f.ErrCode != http2.ErrCodeFlowControl {
			t.Errorf("GOAWAY %v, want FLOW_CONTROL_ERROR", f.ErrCode)
		}
	})

	t.Run("body longer than Content-Length", func(t *testing.T) {
		rc := wtDialRaw(t, addr, pool)
		post := []string{":method", "POST", ":scheme", "https", ":authority", addr, ":path", "/", "content-length", "2"}
		rc.headers(1, false, post...)
		rc.fr.WriteData(1, true, []byte("abc"))
		f := rc.next(http2.FrameRSTStream, 1).(*http2.RSTStreamFrame)
		if f.ErrCode != http2.ErrCodeProtocol {
			t.Errorf("RST_STREAM %v, want PROTOCOL_ERROR", f.ErrCode)
		}
	})
}

func TestH2LimitsAndShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	canceled := make(chan struct{}, 10)
	addr, pool, hs := wtServe(t, &Server{MaxConcurrentStreams: 2}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-release:
			io.WriteString(w, "done")
		case <-r.Context().Done():
			canceled <- struct{}{}
		}
	}))
	get := []string{":method", "GET", ":scheme", "https", ":authority", addr, ":path", "/"}
	rc := wtDialRaw(t, addr, pool)
	rc.headers(1, true, get...)
	rc.headers(3, true, get...)
	<-started
	<-started
	rc.headers(5, true, get...)
	if f := rc.next(http2.FrameRSTStream, 5).(*http2.RSTStreamFrame); f.ErrCode != http2.ErrCodeRefusedStream {
		t.Errorf("third stream: %v, want REFUSED_STREAM", f.ErrCode)
	}

	// The client resets stream 3: its handler's context ends.
	rc.fr.WriteRSTStream(3, http2.ErrCodeCancel)
	<-canceled

	// Shutdown: GOAWAY, stream 1 still completes, then Shutdown returns.
	done := make(chan error, 1)
	go func() { done <- hs.Shutdown(context.Background()) }()
	if f := rc.next(http2.FrameGoAway, 0).(*http2.GoAwayFrame); f.ErrCode != http2.ErrCodeNo || f.LastStreamID < 1 {
		t.Errorf("GOAWAY %v last %d", f.ErrCode, f.LastStreamID)
	}
	close(release)
	d := rc.next(http2.FrameData, 1).(*http2.DataFrame)
	if string(d.Data()) != "done" {
		t.Errorf("stream 1 body %q", d.Data())
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestH2IdleTimeout(t *testing.T) {
	addr, pool, _ := wtServe(t, &Server{IdleTimeout: 100 * time.Millisecond}, http.NotFoundHandler())
	rc := wtDialRaw(t, addr, pool)
	if f := rc.next(http2.FrameGoAway, 0).(*http2.GoAwayFrame); f.ErrCode != http2.ErrCodeNo {
		t.Errorf("GOAWAY %v", f.ErrCode)
	}
	for {
		if _, err := rc.fr.ReadFrame(); err != nil {
			if err != io.EOF && !strings.Contains(err.Error(), "closed") {
				t.Errorf("after GOAWAY: %v, want the connection closed", err)
			}
			return
		}
	}
}

func TestH2Panic(t *testing.T) {
	addr, pool, _ := wtServe(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic(http.ErrAbortHandler)
		}
		io.WriteString(w, "ok")
	}))
	get := func(p string) []string {
		return []string{":method", "GET", ":scheme", "https", ":authority", addr, ":path", p}
	}
	rc := wtDialRaw(t, addr, pool)
	rc.headers(1, true, get("/panic")...)
	if f := rc.next(http2.FrameRSTStream, 1).(*http2.RSTStreamFrame); f.ErrCode != http2.ErrCodeInternal {
		t.Errorf("panic: %v, want INTERNAL_ERROR", f.ErrCode)
	}
	rc.headers(3, true, get("/")...)
	if h := rc.next(http2.FrameHeaders, 3).(*http2.MetaHeadersFrame); h.PseudoValue("status") != "200" {
		t.Errorf("after a panic: status %q", h.PseudoValue("status"))
	}
}
