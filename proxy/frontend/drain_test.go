package frontend

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http2"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/proxytest"
)

// drainServer serves one plain and one TLS listener, both with the
// default health path, in front of a backend that counts its requests.
type drainServer struct {
	srv       *Server
	plain     string // host:port
	tls       string
	roots     *tls.Config
	backend   atomic.Int64
	lastPath  atomic.Value
	serveDone chan error
}

func startDrainServer(t *testing.T, wait time.Duration, engine proxy.Engine) *drainServer {
	t.Helper()
	ds := &drainServer{serveDone: make(chan error, 1)}
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ds.backend.Add(1)
		ds.lastPath.Store(r.URL.EscapedPath())
		io.WriteString(w, "backend")
	}))
	t.Cleanup(backend.Close)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "webtier test")
	ds.roots = &tls.Config{RootCAs: roots}
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{
		{Name: "http", Address: "127.0.0.1:0", HealthPath: proxy.DefaultHealthPath, Engine: engine},
		{Name: "https", Address: "127.0.0.1:0", HealthPath: proxy.DefaultHealthPath, Engine: engine, TLS: &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}},
	}
	opts.Drain = proxy.DrainOptions{Wait: wait}
	s, err := NewServer(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ds.srv = s
	ds.plain, ds.tls = s.Addrs()[0].String(), s.Addrs()[1].String()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { ds.serveDone <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-ds.serveDone
	})
	return ds
}

// drainConn is a client HTTP/1.1 connection written by hand, so that the
// test sees each response's Connection field and how the connection ends.
type drainConn struct {
	net.Conn
	br *bufio.Reader
}

func dialDrain(t *testing.T, addr string, tlsConf *tls.Config) *drainConn {
	t.Helper()
	var c net.Conn
	var err error
	if tlsConf != nil {
		conf := tlsConf.Clone()
		conf.NextProtos = []string{"http/1.1"}
		c, err = tls.Dial("tcp", addr, conf)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang guard only
	return &drainConn{Conn: c, br: bufio.NewReader(c)}
}

func (c *drainConn) get(t *testing.T, target string, extra string) (*http.Response, string) {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: example.test\r\n"+extra+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", target, err)
	}
	return resp, string(body)
}

// closedWithFIN reports how the server ended c: nil after a FIN (EOF).
func (c *drainConn) closedWithFIN() error {
	n, err := c.br.Read(make([]byte, 1))
	switch {
	case n > 0:
		return errors.New("unexpected bytes")
	case err == io.EOF:
		return nil
	}
	return err
}

// Issue 19, health endpoint: webtier answers its health path itself on
// every engine (its own HTTP/1 server, a connection handed off to
// net/http, HTTP/1.1 over TLS, HTTP/2): 200 while serving, 503 while
// draining, 200 again after Undrain; the backend never sees it.
func TestServer_healthEndpointEveryEngine(t *testing.T) {
	ds := startDrainServer(t, time.Minute, proxy.DefaultEngine)
	h2c := &http.Client{Transport: &http.Transport{TLSClientConfig: ds.roots, ForceAttemptHTTP2: true}}
	defer h2c.CloseIdleConnections()
	check := func(t *testing.T, wantStatus int, wantBody string) {
		t.Helper()
		engines := []struct {
			name  string
			do    func() (*http.Response, string)
			proto string
		}{
			{"fast", func() (*http.Response, string) {
				return dialDrain(t, ds.plain, nil).get(t, proxy.DefaultHealthPath, "")
			}, "HTTP/1.1"},
			{"handoff", func() (*http.Response, string) {
				// An Expect header sends the connection to net/http.
				return dialDrain(t, ds.plain, nil).get(t, proxy.DefaultHealthPath, "Expect: 100-continue\r\nContent-Length: 0\r\n")
			}, "HTTP/1.1"},
			{"tls-http1", func() (*http.Response, string) {
				return dialDrain(t, ds.tls, ds.roots).get(t, proxy.DefaultHealthPath, "")
			}, "HTTP/1.1"},
			{"h2", func() (*http.Response, string) {
				resp, err := h2c.Get("https://" + ds.tls + proxy.DefaultHealthPath)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp, string(b)
			}, "HTTP/2.0"},
		}
		for _, e := range engines {
			resp, body := e.do()
			if resp.StatusCode != wantStatus || body != wantBody || resp.Proto != e.proto {
				t.Errorf("%s: %s %s %q; want %s %d %q", e.name, resp.Proto, resp.Status, body, e.proto, wantStatus, wantBody)
			}
			if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s: Cache-Control %q; want no-store", e.name, cc)
			}
		}
	}
	check(t, 200, "ok\n")
	ds.srv.Drain()
	check(t, 503, "draining\n")
	if err := ds.srv.Undrain(); err != nil {
		t.Fatal(err)
	}
	check(t, 200, "ok\n")
	if n := ds.backend.Load(); n != 0 {
		t.Errorf("the backend got %d health requests; want none", n)
	}
}

// Issue 19, health endpoint: which paths are the health endpoint. Every
// spelling the router (and so the backend) would read as the health path
// is answered by webtier; anything else is proxied as before.
func TestServer_healthPathMatching(t *testing.T) {
	ds := startDrainServer(t, time.Minute, proxy.DefaultEngine)
	tests := []struct {
		target  string
		proxied string // the backend's path; "": answered by webtier
	}{
		{"/health_check.html", ""},
		{"/health_check.html?probe=1", ""},
		{"//health_check.html", ""},
		{"/x/../health_check.html", ""},
		{"/./health_check.html", ""},
		{"/health%5Fcheck.html", ""},
		{"/%68ealth_check.html", ""},
		{"/health_check.html;jsessionid=1", ""},
		{"/health_check.html/../x", "/x"},
		{"/health_check.htmlx", "/health_check.htmlx"},
		{"/health_check.html/", "/health_check.html/"},
		{"/HEALTH_CHECK.HTML", "/HEALTH_CHECK.HTML"},
		{"/a/health_check.html", "/a/health_check.html"},
	}
	for _, tt := range tests {
		before := ds.backend.Load()
		resp, body := dialDrain(t, ds.plain, nil).get(t, tt.target, "")
		proxied := ds.backend.Load() != before
		switch {
		case tt.proxied == "" && (proxied || body != "ok\n"):
			t.Errorf("GET %s: %s %q, proxied %v; want webtier's ok", tt.target, resp.Status, body, proxied)
		case tt.proxied != "" && !proxied:
			t.Errorf("GET %s: %s %q; want it proxied", tt.target, resp.Status, body)
		case tt.proxied != "" && ds.lastPath.Load() != tt.proxied:
			t.Errorf("GET %s: the backend got %v; want %s", tt.target, ds.lastPath.Load(), tt.proxied)
		}
	}
	resp, _ := dialDrain(t, ds.plain, nil).get(t, proxy.DefaultHealthPath, "")
	if resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

// Issue 19, drain: from the first moment of a drain, HTTP/1 responses say
// Connection: close and end their connection, idle keep-alive connections
// are closed with a FIN (plain and TLS), HTTP/2 connections get a GOAWAY,
// and everything is still served until Stop; Undrain is refused once Stop
// has begun, and Serve returns. On both engines: with engine std,
// net/http's HTTP/2 server sends the GOAWAY (stdH2Drain).
func TestServer_drainConnections(t *testing.T) {
	for _, engine := range []proxy.Engine{proxy.EngineWebtier, proxy.EngineStd} {
		t.Run(string(engine), func(t *testing.T) { testDrainConnections(t, engine) })
	}
}

func testDrainConnections(t *testing.T, engine proxy.Engine) {
	ds := startDrainServer(t, 500*time.Millisecond, engine)
	busy := dialDrain(t, ds.plain, nil)
	idle := dialDrain(t, ds.plain, nil)
	tlsIdle := dialDrain(t, ds.tls, ds.roots)
	for name, c := range map[string]*drainConn{"busy": busy, "idle": idle, "tls": tlsIdle} {
		if resp, _ := c.get(t, "/app", ""); resp.Close {
			t.Fatalf("%s: Connection: close before the drain", name)
		}
	}
	h2conn := dialH2(t, ds.tls, ds.roots)

	ds.srv.Drain()
	resp, body := busy.get(t, "/app", "")
	if !resp.Close || body != "backend" {
		t.Errorf("during the drain: %s %q, Close %v; want the backend's answer with Connection: close", resp.Status, body, resp.Close)
	}
	for name, c := range map[string]*drainConn{"busy": busy, "idle": idle, "tls": tlsIdle} {
		if err := c.closedWithFIN(); err != nil {
			t.Errorf("%s connection: %v; want a FIN", name, err)
		}
	}
	if err := h2conn.waitGoAway(); err != nil {
		t.Errorf("h2: %v", err)
	}
	// New connections are still served.
	if resp, body := dialDrain(t, ds.plain, nil).get(t, "/app", ""); body != "backend" || !resp.Close {
		t.Errorf("new connection during the drain: %s %q, Close %v", resp.Status, body, resp.Close)
	}
	if !ds.srv.StopDrained() {
		t.Fatal("StopDrained: false while draining")
	}
	if err := <-ds.serveDone; err != nil {
		t.Errorf("Serve: %v", err)
	}
	ds.serveDone <- nil // for the cleanup
	if err := ds.srv.Undrain(); !errors.Is(err, ErrStopping) {
		t.Errorf("Undrain after Stop: %v; want ErrStopping", err)
	}
	if _, err := net.Dial("tcp", ds.plain); err == nil {
		t.Error("the listener still accepts after Stop")
	}
}

// Issue 19, undrain: a drain wait that ends as Undrain is called leaves
// the server serving.
func TestServer_stopDrainedAfterUndrain(t *testing.T) {
	ds := startDrainServer(t, time.Minute, proxy.DefaultEngine)
	undrained := ds.srv.Drain()
	if err := ds.srv.Undrain(); err != nil {
		t.Fatal(err)
	}
	<-undrained
	if ds.srv.StopDrained() {
		t.Fatal("StopDrained stopped an undrained server")
	}
	if resp, body := dialDrain(t, ds.plain, nil).get(t, "/app", ""); body != "backend" || resp.Close {
		t.Errorf("after Undrain: %s %q, Close %v; want keep-alive", resp.Status, body, resp.Close)
	}
}

type h2Raw struct {
	c  net.Conn
	fr *http2.Framer
}

func dialH2(t *testing.T, addr string, tlsConf *tls.Config) *h2Raw {
	t.Helper()
	conf := tlsConf.Clone()
	conf.NextProtos = []string{"h2"}
	c, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second)) // a hang guard only
	io.WriteString(c, http2.ClientPreface)
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// The server's SETTINGS: it is serving the connection.
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			if err := fr.WriteSettingsAck(); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	return &h2Raw{c: c, fr: fr}
}

// waitGoAway reads frames until a GOAWAY (NO_ERROR) and then the close.
func (h *h2Raw) waitGoAway() error {
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			return errors.New("no GOAWAY before " + err.Error())
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			if ga.ErrCode != http2.ErrCodeNo {
				return errors.New("GOAWAY " + ga.ErrCode.String())
			}
			// Frames may still come (a second GOAWAY, a PING, a
			// SETTINGS ack); then the connection closes.
			for {
				f, err := h.fr.ReadFrame()
				if err == nil {
					if _, ok := f.(*http2.DataFrame); ok {
						return errors.New("after the GOAWAY: a DATA frame")
					}
					continue
				}
				if err != io.EOF && !strings.Contains(err.Error(), "EOF") {
					return errors.New("after the GOAWAY: " + err.Error())
				}
				return nil
			}
		}
	}
}

// Issue 19, health_requires: the health endpoint fails while a required
// upstream has no address that takes requests (here: every address put in
// standby), and answers 200 again once one does; a reload changes the
// health path and what it requires.
func TestServer_healthRequires(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer backend.Close()
	opts := oneUpstream(t, backend, nil)
	opts.Listeners = []proxy.ListenerOptions{{Name: "http", Address: "127.0.0.1:0", HealthPath: "/ping", HealthRequires: []string{"app"}}}
	s, err := NewServer(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	serveServer(t, s)
	addr := s.Addrs()[0].String()
	health := func(path string) (int, string) {
		resp, body := dialDrain(t, addr, nil).get(t, path, "")
		return resp.StatusCode, body
	}
	if code, body := health("/ping"); code != 200 {
		t.Fatalf("with a usable address: %d %q; want 200", code, body)
	}
	ep := s.Handler().Pool("app").Endpoints()[0]
	s.Handler().Pool("app").SetStandby(ep.Addr(), true)
	if code, body := health("/ping"); code != 503 || body != "upstream app has no usable address\n" {
		t.Errorf("with every address in standby: %d %q; want 503 naming app", code, body)
	}
	s.Handler().Pool("app").SetStandby(ep.Addr(), false)
	if code, body := health("/ping"); code != 200 {
		t.Errorf("out of standby: %d %q; want 200", code, body)
	}

	next := oneUpstream(t, backend, nil)
	next.Listeners = []proxy.ListenerOptions{{Name: "http", Address: "127.0.0.1:0", HealthPath: "/lb", HealthFailStatus: 404}}
	if _, err := s.Reload(context.Background(), next, nil); err != nil {
		t.Fatal(err)
	}
	s.Drain()
	if code, body := health("/lb"); code != 404 || body != "draining\n" {
		t.Errorf("after a reload to /lb with status 404, draining: %d %q", code, body)
	}
	if code, body := health("/ping"); code != 200 || body != "" {
		t.Errorf("after the reload, the old path /ping: %d %q; want it proxied", code, body)
	}
}
