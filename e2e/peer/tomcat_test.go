package peer_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// These tests check the Tomcat peer itself (the echo page and the AJP
// connector's configuration), talking AJP13 with a small client written
// here from the protocol description, not with webtier's encoder.

// httpClient returns a client whose connections are closed when t ends.
func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return peer.Fetch(t, c, req)
}

func parseEcho(t *testing.T, body []byte) peer.Echo {
	t.Helper()
	e, err := peer.ParseEcho(body)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func startTomcatTimed(t *testing.T, o peer.TomcatOptions) *peer.Tomcat {
	t.Helper()
	start := time.Now()
	tc := peer.StartTomcat(t, o)
	t.Logf("StartTomcat(%+v): ready in %v (http %s, ajp %s, pid %d)",
		o, time.Since(start).Round(time.Millisecond), tc.HTTPAddr(), tc.AJPAddr(), tc.PID())
	return tc
}

func TestTomcat(t *testing.T) {
	t.Parallel()
	tc := startTomcatTimed(t, peer.TomcatOptions{})
	c := httpClient(t)
	base := "http://" + tc.HTTPAddr() + peer.EchoPath
	_, httpPort, _ := net.SplitHostPort(tc.HTTPAddr())

	if tc.Secret() != peer.DefaultAJPSecret {
		t.Errorf("Secret() = %q; want %q", tc.Secret(), peer.DefaultAJPSecret)
	}
	if want := fmt.Sprintf("127.0.0.1:%d", tc.AJPPort()); tc.AJPAddr() != want {
		t.Errorf("AJPAddr() = %q; want %q", tc.AJPAddr(), want)
	}

	// catalina.sh run execs java: the PID is the JVM's, which Stop signals.
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tc.PID())); err != nil || strings.TrimSpace(string(comm)) != "java" {
		t.Errorf("PID %d is %q (%v); want the java process", tc.PID(), comm, err)
	}

	t.Run("http-get", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, base+"?x=1&y=%20z", nil)
		req.Header.Add("X-Multi", "a")
		req.Header.Add("X-Multi", "b")
		start := time.Now()
		resp, body := peer.Fetch(t, c, req)
		t.Logf("warm GET took %v", time.Since(start).Round(time.Microsecond))
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d, Content-Type %q; want 200 application/json", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("Set-Cookie %q without ?session=1", sc)
		}
		e := parseEcho(t, body)
		port, _ := strconv.Atoi(httpPort)
		checks := []struct {
			name      string
			got, want any
		}{
			{"method", e.Method, "GET"},
			{"requestURI", e.RequestURI, "/echo.jsp"},
			{"queryString", str(e.QueryString), "x=1&y=%20z"},
			{"protocol", e.Protocol, "HTTP/1.1"},
			{"scheme", e.Scheme, "http"},
			{"isSecure", e.IsSecure, false},
			{"serverName", e.ServerName, "127.0.0.1"},
			{"serverPort", e.ServerPort, port},
			{"remoteAddr", e.RemoteAddr, "127.0.0.1"},
			{"localAddr", e.LocalAddr, "127.0.0.1"},
			{"localPort", e.LocalPort, port},
			{"remoteUser", str(e.RemoteUser), "<null>"},
			{"authType", str(e.AuthType), "<null>"},
			{"contentType", str(e.ContentType), "<null>"},
			{"contentLength", e.ContentLength, int64(-1)},
			{"bodyLength", e.BodyLength, int64(0)},
			{"bodySha256", e.BodySha256, sha256Hex(nil)},
			{"sessionId", str(e.SessionID), "<null>"},
			{"X-Multi", strings.Join(e.Header("x-multi"), "|"), "a|b"},
			{"Host", strings.Join(e.Header("host"), "|"), tc.HTTPAddr()},
			{"attributes", len(e.Attributes), 0},
			{"pad", str(e.Pad), "<null>"},
		}
		for _, ck := range checks {
			if ck.got != ck.want {
				t.Errorf("%s = %v; want %v", ck.name, ck.got, ck.want)
			}
		}
		if e.RemotePort <= 0 {
			t.Errorf("remotePort = %d", e.RemotePort)
		}
		t.Logf("echo JSON: %s", body)
	})

	t.Run("http-post-body", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			body    []byte
			ctype   string
			chunked bool
		}{
			{"1MiB", randomBytes(t, 1<<20), "application/octet-stream", false},
			{"1MiB-chunked", randomBytes(t, 1<<20), "application/octet-stream", true},
			// A form body must still be read as the body, not as parameters.
			{"form", []byte("status=500&a=1"), "application/x-www-form-urlencoded", false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				var r io.Reader = bytes.NewReader(tt.body)
				if tt.chunked {
					r = io.MultiReader(r) // hides the length: Go sends it chunked
				}
				req, _ := http.NewRequest(http.MethodPost, base, r)
				req.Header.Set("Content-Type", tt.ctype)
				resp, body := peer.Fetch(t, c, req)
				if resp.StatusCode != 200 {
					t.Fatalf("status %d; want 200", resp.StatusCode)
				}
				e := parseEcho(t, body)
				wantCL := int64(len(tt.body))
				if tt.chunked {
					wantCL = -1
				}
				if e.Method != "POST" || e.BodyLength != int64(len(tt.body)) || e.BodySha256 != sha256Hex(tt.body) ||
					e.ContentLength != wantCL || str(e.ContentType) != tt.ctype {
					t.Errorf("got method %s bodyLength %d sha %s contentLength %d contentType %s; want POST %d %s %d %s",
						e.Method, e.BodyLength, e.BodySha256, e.ContentLength, str(e.ContentType),
						len(tt.body), sha256Hex(tt.body), wantCL, tt.ctype)
				}
			})
		}
	})

	t.Run("status", func(t *testing.T) {
		resp, body := get(t, c, base+"?status=418")
		if resp.StatusCode != 418 {
			t.Errorf("status %d; want 418", resp.StatusCode)
		}
		parseEcho(t, body)
	})

	t.Run("pad-5MiB", func(t *testing.T) {
		const n = 5 << 20
		start := time.Now()
		resp, body := get(t, c, base+"?pad="+strconv.Itoa(n))
		took := time.Since(start)
		e := parseEcho(t, body)
		if resp.StatusCode != 200 || e.Pad == nil || len(*e.Pad) != n || strings.Trim(*e.Pad, "x") != "" {
			t.Fatalf("status %d, pad of %d bytes; want 200 and %d 'x'", resp.StatusCode, len(str(e.Pad)), n)
		}
		t.Logf("5 MiB response: %d bytes in %v", len(body), took.Round(time.Millisecond))
	})

	t.Run("cookies", func(t *testing.T) {
		resp, body := get(t, c, base+"?cookies=3")
		parseEcho(t, body)
		var got []string
		for _, ck := range resp.Cookies() {
			got = append(got, ck.Name+"="+ck.Value)
		}
		if strings.Join(got, " ") != "c1=v1 c2=v2 c3=v3" || len(resp.Header.Values("Set-Cookie")) != 3 {
			t.Errorf("Set-Cookie %q; want c1=v1, c2=v2, c3=v3", resp.Header.Values("Set-Cookie"))
		}
	})

	t.Run("session", func(t *testing.T) {
		resp, _ := get(t, c, base+"?session=1")
		id := sessionCookie(t, resp)
		if strings.Contains(id, ".") {
			t.Errorf("JSESSIONID %q has a route without JvmRoute", id)
		}
		req, _ := http.NewRequest(http.MethodGet, base, nil)
		req.Header.Set("Cookie", "JSESSIONID="+id)
		resp, body := peer.Fetch(t, c, req)
		if e := parseEcho(t, body); str(e.SessionID) != id {
			t.Errorf("sessionId = %s; want %s", str(e.SessionID), id)
		}
		if sc := resp.Header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("Set-Cookie %q without ?session=1", sc)
		}
	})

	t.Run("ajp-cping", func(t *testing.T) {
		conn := dialAJP(t, tc.AJPAddr())
		if _, err := conn.Write([]byte{0x12, 0x34, 0x00, 0x01, 0x0A}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 5)
		if _, err := io.ReadFull(conn, got); err != nil {
			t.Fatalf("no CPONG: %v", err)
		}
		if want := []byte{0x41, 0x42, 0x00, 0x01, 0x09}; !bytes.Equal(got, want) {
			t.Fatalf("got % x; want CPONG % x", got, want)
		}
		if err := peer.AJPPing(tc.AJPAddr(), 2*time.Second); err != nil {
			t.Errorf("AJPPing: %v", err)
		}
	})

	t.Run("ajp-forward", func(t *testing.T) {
		conn := dialAJP(t, tc.AJPAddr())
		// Two requests on one connection: the second proves END_RESPONSE
		// left it reusable.
		for i, pad := range []int{0, 20000} {
			req := ajpRequest{
				method: ajpGET, uri: peer.EchoPath, query: "x=1&pad=" + strconv.Itoa(pad),
				remoteAddr: "192.0.2.7", remoteHost: "client.example", serverName: "www.example", serverPort: 443,
				isSSL: true,
				headers: [][2]string{
					{"Host", "www.example"}, {"User-Agent", "ajp-test"}, {"X-Forwarded-For", "192.0.2.7"},
					{"X-Echo-Attrs", "X_TENANT"},
				},
				// AJP_REMOTE_PORT and AJP_LOCAL_ADDR are known to Tomcat
				// (as httpd sends them), so no pattern needs to allow them.
				attrs:      [][2]string{{"X_TENANT", "acme"}, {"AJP_REMOTE_PORT", "54321"}, {"AJP_LOCAL_ADDR", "10.0.0.5"}},
				remoteUser: "alice", authType: "Basic",
				secret: tc.Secret(),
			}
			resp := ajpDo(t, conn, req)
			if resp.status != 200 || !resp.reuse {
				t.Fatalf("request %d: status %d reuse %v; want 200, reuse", i, resp.status, resp.reuse)
			}
			if ct := resp.header("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if pad > 0 && resp.chunks < 2 {
				t.Errorf("%d-byte body came in %d SEND_BODY_CHUNK; want several", len(resp.body), resp.chunks)
			}
			e := parseEcho(t, resp.body)
			checks := []struct {
				name      string
				got, want any
			}{
				{"queryString", str(e.QueryString), req.query},
				{"scheme", e.Scheme, "https"},
				{"isSecure", e.IsSecure, true},
				{"serverName", e.ServerName, "www.example"},
				{"serverPort", e.ServerPort, 443},
				{"remoteAddr", e.RemoteAddr, "192.0.2.7"},
				// remote_host is ignored: with enableLookups="false" (the
				// default) getRemoteHost returns the address.
				{"remoteHost", e.RemoteHost, "192.0.2.7"},
				{"remotePort", e.RemotePort, 54321},
				{"localAddr", e.LocalAddr, "10.0.0.5"},
				{"remoteUser", str(e.RemoteUser), "alice"},
				{"authType", str(e.AuthType), "Basic"},
				{"user-agent", strings.Join(e.Header("User-Agent"), "|"), "ajp-test"},
				{"X_TENANT", e.Attributes["X_TENANT"], "acme"},
				{"pad", len(str(e.Pad)), pad},
			}
			for _, ck := range checks {
				if ck.got != ck.want {
					t.Errorf("request %d: %s = %v; want %v", i, ck.name, ck.got, ck.want)
				}
			}
			if i == 0 {
				t.Logf("AJP echo JSON: %s", resp.body)
			}
		}
	})

	t.Run("ajp-post-body", func(t *testing.T) {
		conn := dialAJP(t, tc.AJPAddr())
		body := randomBytes(t, 100_000)
		resp := ajpDo(t, conn, ajpRequest{
			method: ajpPOST, uri: peer.EchoPath, secret: tc.Secret(),
			headers: [][2]string{{"Content-Type", "application/octet-stream"}, {"Content-Length", strconv.Itoa(len(body))}},
			body:    body,
		})
		e := parseEcho(t, resp.body)
		if resp.status != 200 || e.BodyLength != int64(len(body)) || e.BodySha256 != sha256Hex(body) || e.ContentLength != int64(len(body)) {
			t.Errorf("status %d bodyLength %d sha %s contentLength %d; want 200 %d %s", resp.status,
				e.BodyLength, e.BodySha256, e.ContentLength, len(body), sha256Hex(body))
		}
	})

	t.Run("ajp-rejected", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			secret string
			attrs  [][2]string
		}{
			{"wrong-secret", "wrong-secret", nil},
			{"no-secret", "", nil},
			{"attribute-not-allowed", tc.Secret(), [][2]string{{"Y_NOTALLOWED", "1"}}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				conn := dialAJP(t, tc.AJPAddr())
				resp := ajpDo(t, conn, ajpRequest{method: ajpGET, uri: peer.EchoPath, secret: tt.secret, attrs: tt.attrs})
				if resp.status != 403 {
					t.Errorf("status %d; want 403", resp.status)
				}
				if bytes.Contains(resp.body, []byte(`"requestURI"`)) {
					t.Errorf("echo.jsp ran: %.200q", resp.body)
				}
			})
		}
	})
}

func TestTomcat_optionsAndRestart(t *testing.T) {
	t.Parallel()
	o := peer.TomcatOptions{Secret: "other&\"secret<", PacketSize: 16384, JvmRoute: "node7", AllowedAttributes: "^(X_|Z_).*"}
	tc := startTomcatTimed(t, o)
	c := httpClient(t)
	base := "http://" + tc.HTTPAddr() + peer.EchoPath

	resp, _ := get(t, c, base+"?session=1")
	if id := sessionCookie(t, resp); !strings.HasSuffix(id, ".node7") {
		t.Errorf("JSESSIONID %q; want it to end in .node7", id)
	}

	ajpCheck := func(t *testing.T) {
		t.Helper()
		conn := dialAJP(t, tc.AJPAddr())
		big := strings.Repeat("h", 12000) // fits a 16 KiB packet, not an 8 KiB one
		resp := ajpDo(t, conn, ajpRequest{
			method: ajpGET, uri: peer.EchoPath, secret: tc.Secret(), packetSize: 16384,
			headers: [][2]string{{"X-Big", big}, {"X-Echo-Attrs", "Z_ZONE"}},
			attrs:   [][2]string{{"Z_ZONE", "eu"}},
		})
		if resp.status != 200 {
			t.Fatalf("AJP with secret %q: status %d; want 200", tc.Secret(), resp.status)
		}
		e := parseEcho(t, resp.body)
		if got := e.Header("X-Big"); len(got) != 1 || got[0] != big {
			t.Errorf("X-Big header not echoed intact (%d values)", len(got))
		}
		if e.Attributes["Z_ZONE"] != "eu" {
			t.Errorf("attributes %v; want Z_ZONE=eu", e.Attributes)
		}
		conn = dialAJP(t, tc.AJPAddr())
		if resp := ajpDo(t, conn, ajpRequest{method: ajpGET, uri: peer.EchoPath, secret: peer.DefaultAJPSecret}); resp.status != 403 {
			t.Errorf("AJP with the default secret: status %d; want 403", resp.status)
		}
	}
	ajpCheck(t)

	httpAddr, ajpAddr, pid := tc.HTTPAddr(), tc.AJPAddr(), tc.PID()
	start := time.Now()
	tc.Stop(t)
	t.Logf("Stop took %v", time.Since(start).Round(time.Millisecond))
	if tc.PID() != 0 {
		t.Errorf("PID() = %d after Stop; want 0", tc.PID())
	}
	if err := peer.AJPPing(tc.AJPAddr(), time.Second); err == nil {
		t.Errorf("AJP CPING answered after Stop")
	}
	start = time.Now()
	tc.Restart(t)
	t.Logf("Restart (work/ kept) ready in %v", time.Since(start).Round(time.Millisecond))
	if tc.HTTPAddr() != httpAddr || tc.AJPAddr() != ajpAddr {
		t.Errorf("after Restart: http %s ajp %s; want %s %s", tc.HTTPAddr(), tc.AJPAddr(), httpAddr, ajpAddr)
	}
	if tc.PID() == 0 || tc.PID() == pid {
		t.Errorf("after Restart: PID %d (was %d)", tc.PID(), pid)
	}
	if n := strings.Count(tc.Log(), "Server startup in"); n != 2 {
		t.Errorf("log has %d \"Server startup in\" lines; want 2", n)
	}
	ajpCheck(t)
}

func sessionCookie(t *testing.T, resp *http.Response) string {
	t.Helper()
	for _, ck := range resp.Cookies() {
		if ck.Name == "JSESSIONID" {
			return ck.Value
		}
	}
	t.Fatalf("no JSESSIONID in Set-Cookie %q", resp.Header.Values("Set-Cookie"))
	return ""
}

// ---- A minimal AJP13 client (https://tomcat.apache.org/connectors-doc/ajp/ajpv13a.html).

const (
	ajpGET  = 2
	ajpPOST = 4
)

type ajpRequest struct {
	method                 byte
	uri, query             string
	remoteAddr, remoteHost string
	serverName             string
	serverPort             int
	isSSL                  bool
	headers                [][2]string
	attrs                  [][2]string // req_attribute (0x0A) name/value pairs
	remoteUser, authType   string
	secret                 string // "" sends none
	body                   []byte // sent as the first body packet, then on GET_BODY_CHUNK
	packetSize             int    // 0: 8192
}

type ajpResponse struct {
	status  int
	reason  string
	headers [][2]string
	body    []byte
	chunks  int
	reuse   bool
}

func (r ajpResponse) header(name string) string {
	for _, h := range r.headers {
		if strings.EqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

func dialAJP(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return conn
}

var ajpRequestHeaderCodes = map[string]uint16{
	"accept": 0xA001, "accept-charset": 0xA002, "accept-encoding": 0xA003, "accept-language": 0xA004,
	"authorization": 0xA005, "connection": 0xA006, "content-type": 0xA007, "content-length": 0xA008,
	"cookie": 0xA009, "cookie2": 0xA00A, "host": 0xA00B, "pragma": 0xA00C, "referer": 0xA00D,
	"user-agent": 0xA00E,
}

var ajpResponseHeaderNames = map[uint16]string{
	0xA001: "Content-Type", 0xA002: "Content-Language", 0xA003: "Content-Length", 0xA004: "Date",
	0xA005: "Last-Modified", 0xA006: "Location", 0xA007: "Set-Cookie", 0xA008: "Set-Cookie2",
	0xA009: "Servlet-Engine", 0xA00A: "Status", 0xA00B: "WWW-Authenticate",
}

func ajpString(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.WriteString(s)
	b.WriteByte(0)
}

// ajpPacket frames a server-bound payload: 0x12 0x34, length, payload.
func ajpPacket(payload []byte) []byte {
	return append([]byte{0x12, 0x34, byte(len(payload) >> 8), byte(len(payload))}, payload...)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// ajpDo writes a Forward Request (and body) to conn and reads the response
// up to END_RESPONSE.
func ajpDo(t *testing.T, conn net.Conn, r ajpRequest) ajpResponse {
	t.Helper()
	packetSize := r.packetSize
	if packetSize == 0 {
		packetSize = 8192
	}
	var p bytes.Buffer
	p.WriteByte(0x02) // JK_AJP13_FORWARD_REQUEST
	p.WriteByte(r.method)
	ajpString(&p, "HTTP/1.1")
	ajpString(&p, r.uri)
	ajpString(&p, orDefault(r.remoteAddr, "127.0.0.1"))
	ajpString(&p, orDefault(r.remoteHost, "127.0.0.1"))
	ajpString(&p, orDefault(r.serverName, "localhost"))
	port := r.serverPort
	if port == 0 {
		port = 80
	}
	_ = binary.Write(&p, binary.BigEndian, uint16(port))
	if r.isSSL {
		p.WriteByte(1)
	} else {
		p.WriteByte(0)
	}
	_ = binary.Write(&p, binary.BigEndian, uint16(len(r.headers)))
	for _, h := range r.headers {
		if code, ok := ajpRequestHeaderCodes[strings.ToLower(h[0])]; ok {
			_ = binary.Write(&p, binary.BigEndian, code)
		} else {
			ajpString(&p, h[0])
		}
		ajpString(&p, h[1])
	}
	if r.remoteUser != "" {
		p.WriteByte(0x03)
		ajpString(&p, r.remoteUser)
	}
	if r.authType != "" {
		p.WriteByte(0x04)
		ajpString(&p, r.authType)
	}
	if r.query != "" {
		p.WriteByte(0x05)
		ajpString(&p, r.query)
	}
	for _, a := range r.attrs {
		p.WriteByte(0x0A)
		ajpString(&p, a[0])
		ajpString(&p, a[1])
	}
	if r.secret != "" {
		p.WriteByte(0x0C)
		ajpString(&p, r.secret)
	}
	p.WriteByte(0xFF) // request_terminator
	if p.Len()+4 > packetSize {
		t.Fatalf("forward request of %d bytes does not fit a %d-byte packet", p.Len()+4, packetSize)
	}

	body := r.body
	maxChunk := packetSize - 6
	bodyPacket := func(max int) []byte {
		n := min(len(body), max, maxChunk)
		chunk := body[:n]
		body = body[n:]
		if n == 0 {
			return ajpPacket(nil) // empty packet: end of body
		}
		return ajpPacket(append([]byte{byte(n >> 8), byte(n)}, chunk...))
	}
	out := ajpPacket(p.Bytes())
	if len(body) > 0 {
		out = append(out, bodyPacket(maxChunk)...) // the first chunk goes unasked
	}
	if _, err := conn.Write(out); err != nil {
		t.Fatalf("write forward request: %v", err)
	}

	var resp ajpResponse
	br := bufio.NewReader(conn)
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			t.Fatalf("read AJP packet header: %v (so far: %+v)", err, resp)
		}
		if hdr[0] != 'A' || hdr[1] != 'B' {
			t.Fatalf("AJP packet starts % x; want 41 42", hdr[:2])
		}
		payload := make([]byte, binary.BigEndian.Uint16(hdr[2:]))
		if _, err := io.ReadFull(br, payload); err != nil {
			t.Fatalf("read AJP packet: %v", err)
		}
		rd := &ajpReader{t: t, b: payload[1:]}
		switch payload[0] {
		case 4: // SEND_HEADERS
			resp.status = int(rd.u16())
			resp.reason = rd.str()
			for n := rd.u16(); n > 0; n-- {
				var name string
				if len(rd.b) > 0 && rd.b[0] == 0xA0 {
					code := rd.u16()
					name = ajpResponseHeaderNames[code]
					if name == "" {
						name = fmt.Sprintf("0x%04X", code)
					}
				} else {
					name = rd.str()
				}
				resp.headers = append(resp.headers, [2]string{name, rd.str()})
			}
		case 3: // SEND_BODY_CHUNK
			n := int(rd.u16())
			resp.body = append(resp.body, rd.bytes(n)...)
			resp.chunks++
		case 6: // GET_BODY_CHUNK
			if _, err := conn.Write(bodyPacket(int(rd.u16()))); err != nil {
				t.Fatalf("write body chunk: %v", err)
			}
		case 5: // END_RESPONSE
			resp.reuse = rd.bytes(1)[0] == 1
			return resp
		default:
			t.Fatalf("unexpected AJP packet type %d: % x", payload[0], payload)
		}
	}
}

type ajpReader struct {
	t *testing.T
	b []byte
}

func (r *ajpReader) bytes(n int) []byte {
	if len(r.b) < n {
		r.t.Fatalf("AJP packet too short: need %d bytes, have %d", n, len(r.b))
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *ajpReader) u16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }

func (r *ajpReader) str() string {
	n := r.u16()
	if n == 0xFFFF {
		return ""
	}
	s := string(r.bytes(int(n)))
	r.bytes(1) // NUL
	return s
}
