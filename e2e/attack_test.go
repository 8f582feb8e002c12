package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// The attack suite: what an attacker sends over raw sockets to the real
// webtier binary, and what a backend that records every byte (peer.RawBackend)
// received. Each case states the behaviour the security review asked for
// (issue 15); README's "Security" section lists the same table for
// operators. Tests here are named TestAttack* so that CI and a reviewer can
// run just them: go test -race -run TestAttack ./e2e/

// attackRead bounds waiting for webtier's answer to one attack, and for the
// connection to be closed when it must be. It bounds a wait for a signal
// (an answer, EOF); no assertion measures time.
const attackRead = 10 * time.Second

// smuggled is a complete request hidden in an attack; it must never reach
// a backend as a request of its own.
const smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

// attackHeard is what the attacker got back on one connection.
type attackHeard struct {
	statuses []int
	bodies   []string
	closed   bool  // the connection was closed by webtier (EOF or reset)
	err      error // what ended reading when not a close
}

func (h attackHeard) String() string {
	s := fmt.Sprintf("statuses %v", h.statuses)
	if h.closed {
		s += ", then closed"
	} else if h.err != nil {
		s += fmt.Sprintf(", connection still open (%v)", h.err)
	}
	return s
}

// first returns the first status, 0 if there was no answer.
func (h attackHeard) first() int {
	if len(h.statuses) == 0 {
		return 0
	}
	return h.statuses[0]
}

// attack sends raw on a new connection to addr while reading the answers:
// all of them until the connection closes when untilClose, otherwise just
// the first. Writing runs concurrently, so an answer sent before webtier
// read everything (a 431 after part of a big head) is still seen.
func attack(t *testing.T, addr, raw string, untilClose bool) attackHeard {
	t.Helper()
	return attackDial(t, func() (net.Conn, error) { return net.Dial("tcp", addr) }, raw, untilClose)
}

// attackDial is attack on a connection from dial.
func attackDial(t *testing.T, dial func() (net.Conn, error), raw string, untilClose bool) attackHeard {
	t.Helper()
	c, err := dial()
	if err != nil {
		t.Fatalf("dial webtier: %v", err)
	}
	defer c.Close()
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		_ = c.SetWriteDeadline(time.Now().Add(attackRead))
		_, _ = io.WriteString(c, raw) // webtier may close first; what it answered is what counts
	}()
	defer func() { c.Close(); <-wrote }()
	_ = c.SetReadDeadline(time.Now().Add(attackRead))
	return readAnswers(c, untilClose)
}

// readAnswers reads HTTP/1 responses from c (see attack).
func readAnswers(c net.Conn, untilClose bool) attackHeard {
	var h attackHeard
	br := bufio.NewReader(c)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			h.closed, h.err = isClosed(err), err
			return h
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		h.statuses = append(h.statuses, resp.StatusCode)
		h.bodies = append(h.bodies, string(body))
		if err != nil {
			h.closed, h.err = isClosed(err), err
			return h
		}
		if !untilClose || resp.StatusCode == http.StatusSwitchingProtocols {
			return h
		}
	}
}

// isClosed reports whether err means the peer closed the connection.
func isClosed(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "connection reset")
}

// seen is what the backends of a table received for one case.
type seen struct {
	reqs map[string][]peer.RawRequest // by backend name
	raw  map[string][]byte
}

// backendCheck asserts on what the backends saw; it returns a description
// of the violation, "" if none.
type backendCheck func(s seen) string

// nothingSeen: no backend received a byte.
func nothingSeen() backendCheck {
	return func(s seen) string {
		for name, raw := range s.raw {
			if len(raw) > 0 {
				return fmt.Sprintf("backend %s received %q; want nothing", name, clip(raw))
			}
		}
		return ""
	}
}

// oneRequest: backend at received exactly one request, with method and
// request-URI as given, and no other backend received anything. Extra
// checks run on that request and the raw bytes.
func oneRequest(at, method, uri string, extra ...func(r peer.RawRequest, raw []byte) string) backendCheck {
	return func(s seen) string {
		for name, raw := range s.raw {
			if name != at && len(raw) > 0 {
				return fmt.Sprintf("backend %s received %q; want the request at %s", name, clip(raw), at)
			}
		}
		rs := s.reqs[at]
		if len(rs) != 1 {
			return fmt.Sprintf("backend %s received %d requests %s; want exactly one (%s %s)", at, len(rs), describeReqs(rs), method, uri)
		}
		if rs[0].Method != method || rs[0].RequestURI != uri {
			return fmt.Sprintf("backend %s received %s %s; want %s %s", at, rs[0].Method, rs[0].RequestURI, method, uri)
		}
		for _, f := range extra {
			if msg := f(rs[0], s.raw[at]); msg != "" {
				return msg
			}
		}
		return ""
	}
}

// noSmuggling: whatever reached the backends, at most one request did, and
// never the hidden one.
func noSmuggling() backendCheck {
	return func(s seen) string {
		var all []peer.RawRequest
		for _, rs := range s.reqs {
			all = append(all, rs...)
		}
		if len(all) > 1 || slices.ContainsFunc(all, func(r peer.RawRequest) bool { return strings.Contains(r.RequestURI, "smuggled") }) {
			return fmt.Sprintf("backends received %s from one attacker message; want at most one, never /smuggled", describeReqs(all))
		}
		return ""
	}
}

// withHost checks the Host the backend received.
func withHost(host string) func(peer.RawRequest, []byte) string {
	return func(r peer.RawRequest, _ []byte) string {
		if r.Host != host {
			return fmt.Sprintf("backend received Host %q; want %q", r.Host, host)
		}
		return ""
	}
}

// without checks that the raw bytes the backend received do not contain
// any of subs (case-insensitive).
func without(subs ...string) func(peer.RawRequest, []byte) string {
	return func(_ peer.RawRequest, raw []byte) string {
		for _, sub := range subs {
			if bytes.Contains(bytes.ToLower(raw), bytes.ToLower([]byte(sub))) {
				return fmt.Sprintf("backend received %q in %q", sub, clip(raw))
			}
		}
		return ""
	}
}

func describeReqs(rs []peer.RawRequest) string {
	var b strings.Builder
	b.WriteString("[")
	for i, r := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", r.Method, r.RequestURI)
	}
	b.WriteString("]")
	return b.String()
}

// clip shortens raw for messages.
func clip(raw []byte) string {
	if len(raw) > 300 {
		return string(raw[:300]) + fmt.Sprintf("... (%d bytes)", len(raw))
	}
	return string(raw)
}

// h1Vector is one row of the HTTP/1 attack table.
type h1Vector struct {
	name string
	send string
	// status is the status the attacker must get first; 0: none, the
	// connection is closed without an answer. alt lists acceptable
	// alternatives (for example 400 or 501 for a refused encoding).
	status int
	alt    []int
	// closed: webtier must close the connection after its answer (all
	// answers are read until then); otherwise only the first is read.
	closed bool
	// answers, if not 0, is how many answers the attacker must get before
	// the close: 1 for a framing conflict, whose leftover bytes must not
	// be read as another request.
	answers int
	// tlsAnswers, if not 0, replaces answers on the TLS listener, where
	// net/http's server parses HTTP/1.1: it ignores Transfer-Encoding on
	// HTTP/1.0 (Go issue 12785), so the leftover chunked bytes are
	// answered 400 before the close. The backend check is the same.
	tlsAnswers int
	backend    backendCheck
}

// post is a request with a body made of the given header lines.
func post(path, headers, body string) string {
	return "POST " + path + " HTTP/1.1\r\nHost: a\r\n" + headers + "\r\n" + body
}

// h1Vectors is the HTTP/1 table. Backend "pub" serves /, "admin" /admin;
// route /hh goes to pub through an upstream with host_header app.internal.
func h1Vectors() []h1Vector {
	chunkOf := func(s string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(s), s) }
	many := func(n int, size int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-F-%d: %s\r\n", i, strings.Repeat("v", size))
		}
		return b.String()
	}
	get := func(path string) string { return "GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n" }
	return []h1Vector{
		// Smuggling basics: one attacker message, never two requests at
		// the backend; refused (400/501) or normalised and then closed.
		{name: "CL.TE", send: post("/cl-te", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", 5+len(smuggled)), "0\r\n\r\n"+smuggled),
			status: 200, closed: true, answers: 1, backend: noSmuggling()},
		{name: "TE.CL", send: post("/te-cl", "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n", chunkOf(smuggled)),
			status: 200, closed: true, answers: 1, backend: noSmuggling()},
		{name: "duplicate Content-Length", send: post("/dup-cl", fmt.Sprintf("Content-Length: 0\r\nContent-Length: %d\r\n", len(smuggled)), smuggled),
			status: 400, closed: true, backend: nothingSeen()},
		{name: "signed Content-Length +5", send: post("/signed-cl", "Content-Length: +5\r\n", "hello"+smuggled),
			status: 400, closed: true, backend: nothingSeen()},
		{name: "Transfer-Encoding xchunked", send: post("/xchunked", "Transfer-Encoding: xchunked\r\n", chunkOf(smuggled)),
			status: 400, alt: []int{501}, closed: true, backend: noSmuggling()},
		{name: "Transfer-Encoding with leading space and Content-Length", send: post("/sp-chunked", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding:  chunked\r\n", 5+len(smuggled)), "0\r\n\r\n"+smuggled),
			status: 200, closed: true, answers: 1, backend: noSmuggling()},
		// obs-fold may be refused or replaced by a space (RFC 9112 5.2).
		{name: "Transfer-Encoding obs-fold", send: post("/fold", "X-A: b\r\n Transfer-Encoding: chunked\r\n", chunkOf(smuggled)),
			status: 400, alt: []int{200}, closed: true, backend: noSmuggling()},
		{name: "Transfer-Encoding chunked, identity", send: post("/chunked-identity", "Transfer-Encoding: chunked, identity\r\n", chunkOf(smuggled)),
			status: 400, alt: []int{501}, closed: true, backend: noSmuggling()},
		{name: "Transfer-Encoding with tab before value", send: post("/te-tab", fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding:\tchunked\r\n", 5+len(smuggled)), "0\r\n\r\n"+smuggled),
			status: 200, closed: true, answers: 1, backend: noSmuggling()},
		{name: "Transfer-Encoding with tab before colon", send: post("/te-tab-name", "Transfer-Encoding\t: chunked\r\n", chunkOf(smuggled)),
			status: 400, closed: true, backend: nothingSeen()},
		{name: "space before colon", send: post("/sp-colon", fmt.Sprintf("Content-Length : %d\r\n", len(smuggled)), smuggled),
			status: 400, closed: true, backend: nothingSeen()},
		{name: "bare CR in a header", send: "GET /bare-cr HTTP/1.1\r\nHost: a\r\nX-A: b\rTransfer-Encoding: chunked\r\n\r\n" + chunkOf(smuggled),
			status: 400, closed: true, backend: nothingSeen()},
		{name: "NUL in a header", send: "GET /nul HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n",
			status: 400, closed: true, backend: nothingSeen()},
		{name: "invalid header name", send: "GET /bad-name HTTP/1.1\r\nHost: a\r\nX<A>: b\r\n\r\n",
			status: 400, closed: true, backend: nothingSeen()},

		// Framing conflicts (RFC 9112 6.1, 6.3): answered, then closed; the
		// pipelined request behind never reaches the backend.
		{name: "CL+TE then a pipelined request", send: post("/conflict", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n") + get("/second"),
			status: 200, closed: true, answers: 1, backend: oneRequest("pub", "POST", "/conflict")},
		{name: "HTTP/1.0 with Transfer-Encoding then a pipelined request",
			send:   "POST /h10-te HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get("/second"),
			status: 200, closed: true, answers: 1, tlsAnswers: 2, backend: noSmuggling()},

		// Header hygiene.
		{name: "underscore header names dropped", send: "GET /underscore HTTP/1.1\r\nHost: a\r\nX_Forwarded_For: 6.6.6.6\r\nFoo_Bar: 1\r\n\r\n",
			status: 200, backend: oneRequest("pub", "GET", "/underscore", without("X_Forwarded_For", "Foo_Bar", "6.6.6.6"))},
		{name: "query with ; passed byte for byte", send: get("/semi?a=1;b=2&c=%3B"),
			status: 200, backend: oneRequest("pub", "GET", "/semi?a=1;b=2&c=%3B")},
		{name: "HTTP/1.0 without Host, no route host or host_header", send: "GET /h10 HTTP/1.0\r\n\r\n",
			status: 400, closed: true, backend: nothingSeen()},
		{name: "HTTP/1.0 without Host, upstream host_header", send: "GET /hh/x HTTP/1.0\r\n\r\n",
			status: 200, closed: true, backend: oneRequest("pub", "GET", "/hh/x", withHost("app.internal"))},

		// Path normalisation: routing and the backend see the same path.
		{name: "encoded slash kept: /public/..%2fadmin", send: get("/public/..%2fadmin"),
			status: 200, backend: oneRequest("pub", "GET", "/public/..%2fadmin")},
		{name: "dot segments removed: /a/../admin", send: get("/a/../admin"),
			status: 200, backend: oneRequest("admin", "GET", "/admin")},
		{name: "encoded dots decoded: /public/%2e%2e/admin", send: get("/public/%2e%2e/admin"),
			status: 200, backend: oneRequest("admin", "GET", "/admin")},
		{name: "encoded unreserved decoded: /%61dmin/x", send: get("/%61dmin/x"),
			status: 200, backend: oneRequest("admin", "GET", "/admin/x")},
		{name: "climbing above the root: /%2e%2e/admin", send: get("/%2e%2e/admin"),
			status: 400, backend: nothingSeen()},
		{name: "climbing above the root: /../admin", send: get("/../admin"),
			status: 400, backend: nothingSeen()},

		// Limits (httpd LimitRequestFields, LimitRequestFieldSize,
		// LimitRequestLine; whole head 64 KiB).
		{name: "101 header fields", send: "GET /fields HTTP/1.1\r\nHost: a\r\n" + many(100, 1) + "\r\n",
			status: 431, backend: nothingSeen()},
		{name: "9 KiB header field", send: "GET /field HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("v", 9<<10) + "\r\n\r\n",
			status: 431, backend: nothingSeen()},
		{name: "70 KiB head", send: "GET /head HTTP/1.1\r\nHost: a\r\n" + many(10, 7<<10) + "\r\n",
			status: 431, closed: true, backend: nothingSeen()},
		{name: "9 KiB request line", send: get("/" + strings.Repeat("u", 9<<10)),
			status: 414, closed: true, backend: nothingSeen()},
	}
}

// tableConfig routes /admin to admin, /hh to pub with host_header
// app.internal, everything else to pub; defaults otherwise. listenerYAML
// is the listener's keys (address, tls).
func tableConfig(listenerYAML string, pub, admin *peer.RawBackend) string {
	return fmt.Sprintf(`listeners:
  - %s
routes:
  - path: /admin
    upstream: admin
  - path: /hh
    upstream: hh
  - path: /
    upstream: pub
upstreams:
  pub:
    targets: [%q]
  admin:
    targets: [%q]
  hh:
    targets: [%q]
    host_header: app.internal
logging:
  level: info
  format: json
`, listenerYAML, pub.URL(), admin.URL(), pub.URL())
}

// TestAttackHTTP1 runs the HTTP/1 table against webtier's plain listener
// (its own HTTP/1 server) with the default config: each row on a new
// connection, checking what the attacker got and what each backend
// received.
func TestAttackHTTP1(t *testing.T) {
	runH1Table(t, false)
}

// TestAttackHTTP1TLS runs the same table over TLS with ALPN http/1.1,
// which net/http's server reads: the limits, framing and header rules must
// hold on that path too.
func TestAttackHTTP1TLS(t *testing.T) {
	runH1Table(t, true)
}

func runH1Table(t *testing.T, overTLS bool) {
	pub := peer.StartRawBackend(t, nil)
	admin := peer.StartRawBackend(t, nil)
	backends := map[string]*peer.RawBackend{"pub": pub, "admin": admin}
	listen := peer.FreeAddr(t, "127.0.0.1")
	listener := fmt.Sprintf("address: %q", listen)
	dial := func() (net.Conn, error) { return net.Dial("tcp", listen) }
	if overTLS {
		certFile, keyFile, _ := proxytest.WriteCert(t, t.TempDir(), "webtier-attack")
		listener += fmt.Sprintf("\n    tls: {cert_file: %q, key_file: %q}", certFile, keyFile)
		dial = func() (net.Conn, error) {
			return tls.Dial("tcp", listen, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
		}
	}
	peer.StartWebtier(t, peer.Build(t), listen, tableConfig(listener, pub, admin))

	for _, v := range h1Vectors() {
		t.Run(v.name, func(t *testing.T) {
			mark := map[string]backendMark{}
			for name, b := range backends {
				mark[name] = markOf(b)
			}
			heard := attackDial(t, dial, v.send, v.closed)
			t.Logf("attacker got %s", heard)
			if st := heard.first(); st != v.status && !slices.Contains(v.alt, st) {
				t.Errorf("attacker got %s; want first status %d%s", heard, v.status, orAlso(v.alt))
			}
			answers := v.answers
			// tlsAnswers: what net/http's server answers, over TLS and on
			// every listener of engine std (WEBTIER_ENGINE=std).
			if (overTLS || peer.StdEngine()) && v.tlsAnswers > 0 {
				answers = v.tlsAnswers
			}
			if answers > 0 && len(heard.statuses) != answers {
				t.Errorf("attacker got %s; want %d answer(s), then the connection closed", heard, answers)
			}
			if v.closed && !heard.closed {
				t.Errorf("attacker got %s; want the connection closed after the answer", heard)
			}
			s := seen{reqs: map[string][]peer.RawRequest{}, raw: map[string][]byte{}}
			for name, b := range backends {
				s.reqs[name], s.raw[name] = mark[name].since(b)
			}
			if msg := v.backend(s); msg != "" {
				t.Errorf("%s (attacker got %s)", msg, heard)
			}
		})
	}
}

func orAlso(alt []int) string {
	if len(alt) == 0 {
		return ""
	}
	return fmt.Sprintf(" (or %v)", alt)
}

// backendMark is how much a RawBackend had received at one point, so that
// a case sees only what arrived after it.
type backendMark struct{ bytes, reqs []int }

func markOf(b *peer.RawBackend) backendMark {
	var m backendMark
	for _, c := range b.Conns() {
		m.bytes = append(m.bytes, len(c.Bytes()))
		m.reqs = append(m.reqs, len(c.Requests()))
	}
	return m
}

// since returns the requests and bytes b received after m was taken.
func (m backendMark) since(b *peer.RawBackend) ([]peer.RawRequest, []byte) {
	var reqs []peer.RawRequest
	var raw []byte
	for i, c := range b.Conns() {
		rs, bs := c.Requests(), c.Bytes()
		if i < len(m.reqs) {
			rs, bs = rs[m.reqs[i]:], bs[m.bytes[i]:]
		}
		reqs = append(reqs, rs...)
		raw = append(raw, bs...)
	}
	return reqs, raw
}

// attackConfig is a config with one listener (listenerExtra: YAML lines
// indented four spaces under it), one route for host (any host if "") to
// one upstream of the targets (upstreamExtra: lines indented four spaces).
func attackConfig(listen, host string, targets []string, listenerExtra, upstreamExtra string) string {
	route := "  - path: /\n"
	if host != "" {
		route = fmt.Sprintf("  - host: %q\n    path: /\n", host)
	}
	return fmt.Sprintf(`listeners:
  - address: %q
%sroutes:
%s    upstream: app
upstreams:
  app:
    targets: [%s]
%slogging:
  level: info
  format: json
`, listen, listenerExtra, route, quoteList(targets), upstreamExtra)
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// sendOn writes raw on c and reads the first answer.
func sendOn(t *testing.T, c net.Conn, br *bufio.Reader, raw string) (*http.Response, string) {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(attackRead))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("sending %q: %v", raw, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("reading the answer to %q: %v", raw, err)
	}
	return resp, string(body)
}

// Response-queue poisoning: the backend sends a stray response after a
// complete one, arriving once webtier has pooled the connection. A victim
// on a new TCP connection, whose request webtier sends on that pooled
// connection, must get its own answer, not the stray one; webtier closes
// the connection and logs a warning naming the backend's address.
func TestAttackResponsePoisoning(t *testing.T) {
	release := make(chan struct{})    // closed once the attacker has its answer
	strayed := make(chan struct{}, 1) // the stray bytes have been written
	b := peer.StartRawBackend(t, func(c *peer.RawConn, r peer.RawRequest) bool {
		if err := peer.WriteRawResponse(c, 200, r.RequestURI+"\n"); err != nil {
			return false
		}
		if r.RequestURI == "/poison" {
			select {
			case <-release:
			case <-time.After(attackRead):
			}
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nPOISONED")
			strayed <- struct{}{}
		}
		return true
	})
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "", []string{b.URL()}, "", ""))

	heard := attack(t, w.Addr(), "GET /poison HTTP/1.1\r\nHost: a\r\n\r\n", false)
	close(release)
	if heard.first() != 200 || heard.bodies[0] != "/poison\n" {
		t.Fatalf("attacker got %s %q; want 200 /poison", heard, heard.bodies)
	}
	select {
	case <-strayed:
	case <-time.After(2 * attackRead):
		t.Fatal("the backend did not send its stray response")
	}

	victim := attack(t, w.Addr(), "GET /victim HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true)
	if victim.first() != 200 || victim.bodies[0] != "/victim\n" {
		t.Errorf("victim on a new connection got %s %q; want 200 \"/victim\\n\" (its own answer)", victim, victim.bodies)
	}
	names := b.Addr()
	warned := slices.ContainsFunc(strings.Split(w.Logs(), "\n"), func(l string) bool {
		return strings.Contains(l, `"level":"warn"`) && strings.Contains(l, names)
	})
	if !warned {
		t.Errorf("webtier logged no warning naming %s for the unexpected bytes", names)
	}
}

// Buffer reuse: webtier gives a pooled backend connection's buffers to
// other connections while it waits. A backend response that fills the
// buffer, or one that sends more than its Content-Length in the same
// write, must never show through in another client's answer: each victim,
// on a new client connection, gets exactly its own body.
func TestAttackBufferReuse(t *testing.T) {
	secret := strings.Repeat("SECRET-", 16<<10/7)
	b := peer.StartRawBackend(t, func(c *peer.RawConn, r peer.RawRequest) bool {
		switch r.RequestURI {
		case "/fill": // a body as large as the read buffer
			return peer.WriteRawResponse(c, 200, secret) == nil
		case "/overflow": // 5 bytes declared, a second response's worth more sent with them
			_, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"+
				"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nSECRET"+secret)
			return err == nil
		}
		return peer.RawOK(c, r)
	})
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "", []string{b.URL()}, "", ""))

	for _, path := range []string{"/fill", "/overflow", "/fill"} {
		heard := attack(t, w.Addr(), "GET "+path+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true)
		if heard.first() != 200 {
			t.Fatalf("attacker's %s: %s; want 200", path, heard)
		}
		for i := range 3 {
			victim := attack(t, w.Addr(), "GET /victim HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true)
			if victim.first() != 200 || len(victim.bodies) != 1 || victim.bodies[0] != "/victim\n" {
				t.Errorf("after the attacker's %s, victim %d got %s %.60q; want 200 \"/victim\\n\" (its own answer only)", path, i, victim, victim.bodies)
			}
		}
	}
}

// Upgrade: h2c is never forwarded. The backend here answers 101 to
// /up whatever the request says (as Tomcat with Http2Protocol does to an
// h2c upgrade): the attacker must never get 101, the backend must never
// see an Upgrade header, and what the attacker sends next on the
// connection must go through webtier's rules, never as a tunnel carrying a
// forged X-Forwarded-For and Host: internal to the backend.
func TestAttackH2CUpgrade(t *testing.T) {
	b := peer.StartRawBackend(t, func(c *peer.RawConn, r peer.RawRequest) bool {
		if r.RequestURI == "/up" {
			_, err := io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
			return err == nil // and read what comes through the tunnel as requests
		}
		return peer.RawOK(c, r)
	})
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "app.example", []string{b.URL()}, "", ""))

	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	resp, _ := sendOn(t, c, br, "GET /up HTTP/1.1\r\nHost: app.example\r\nConnection: Upgrade, HTTP2-Settings\r\n"+
		"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if resp.StatusCode == http.StatusSwitchingProtocols {
		t.Errorf("attacker got 101 to Upgrade: h2c; want the upgrade refused (502 when the backend switches anyway)")
	} else if resp.StatusCode != http.StatusBadGateway {
		t.Errorf("attacker got %d; want 502 (the backend switched protocols without being asked)", resp.StatusCode)
	}
	// The next request, tunnelled if the upgrade went through.
	_ = c.SetDeadline(time.Now().Add(attackRead))
	_, _ = io.WriteString(c, "GET /internal HTTP/1.1\r\nHost: internal\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
	next := readAnswers(c, false)
	t.Logf("the request after the upgrade got %s", next)

	for _, r := range b.Requests() {
		if r.Header.Get("Upgrade") != "" || r.Header.Get("Http2-Settings") != "" {
			t.Errorf("backend received %s %s with Upgrade %q, HTTP2-Settings %q; want neither", r.Method, r.RequestURI,
				r.Header.Get("Upgrade"), r.Header.Get("Http2-Settings"))
		}
	}
	if msg := without("6.6.6.6", "Host: internal", "/internal")(peer.RawRequest{}, b.Received()); msg != "" {
		t.Errorf("a tunnelled request reached the backend: %s", msg)
	}
}

// A client cannot eject a healthy backend: twelve POSTs with a malformed
// chunked body (a client fault) must not count as backend failures. The
// upstream has two addresses, so that passive ejection (5 consecutive 5xx,
// at most 50% of the addresses) could take one out: webtier must log no
// state change for either, and a normal GET afterwards still reaches them.
func TestAttackClientEjection(t *testing.T) {
	bs := []*peer.RawBackend{peer.StartRawBackend(t, nil), peer.StartRawBackend(t, nil)}
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "", []string{bs[0].URL(), bs[1].URL()}, "", ""))

	var got []int
	for i := range 12 {
		h := attack(t, w.Addr(), post(fmt.Sprintf("/bad-chunk-%d", i), "Transfer-Encoding: chunked\r\n", "zz\r\n"), true)
		got = append(got, h.first())
	}
	t.Logf("the 12 malformed POSTs got %v", got)
	for _, b := range bs {
		if cs := stateChanges(w, b.Addr()); len(cs) > 0 {
			t.Errorf("client errors changed the state of healthy %s: %s", b.Addr(), describeChanges(cs))
		}
	}
	for i := range 2 {
		heard := attack(t, w.Addr(), "GET /after HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", true)
		if heard.first() != 200 || heard.bodies[0] != "/after\n" {
			t.Errorf("normal GET %d after the malformed POSTs got %s %q; want 200 from a backend", i, heard, heard.bodies)
		}
	}
}
