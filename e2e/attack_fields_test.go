package e2e

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// Response splitting from behind: a backend (compromised, or an
// application that copies user input into a header name) sends header or
// trailer fields whose name or value holds a CR, a NUL or a space around
// a second "Set-Cookie: ...". Whatever the backend client lets through,
// the attacker's client must never see that Set-Cookie as a header line of
// its own, whether it ends lines at CRLF, at LF or at a bare CR: webtier
// answers without the field (or with CR and NUL turned into spaces), or
// 502, or cuts the body off; never two headers.
func TestAttackBackendHeaderSplitting(t *testing.T) {
	const cookie = "Set-Cookie: pwned=1"
	chunked := func(trailer, field string) string {
		return "HTTP/1.1 200 OK\r\nTrailer: " + trailer + "\r\nTransfer-Encoding: chunked\r\n\r\n" +
			"3\r\nok\n\r\n0\r\n" + field + "\r\n\r\n"
	}
	answers := map[string]string{
		"/name-cr":       "HTTP/1.1 200 OK\r\nX-Evil\r" + cookie + "\r\nContent-Length: 3\r\n\r\nok\n",
		"/name-crlf-cr":  "HTTP/1.1 200 OK\r\nX-Evil\r\r\n" + cookie + "\r\nX: y\r\nContent-Length: 3\r\n\r\nok\n",
		"/name-space":    "HTTP/1.1 200 OK\r\nX-Evil " + cookie + "\r\nContent-Length: 3\r\n\r\nok\n",
		"/name-nul":      "HTTP/1.1 200 OK\r\nX-Evil\x00" + cookie + "\r\nContent-Length: 3\r\n\r\nok\n",
		"/value-cr":      "HTTP/1.1 200 OK\r\nX-A: a\r" + cookie + "\r\nContent-Length: 3\r\n\r\nok\n",
		"/value-nul":     "HTTP/1.1 200 OK\r\nX-A: a\x00" + cookie + "\r\nContent-Length: 3\r\n\r\nok\n",
		"/trailer-name":  chunked("X-Evil", "X-Evil\r"+cookie),
		"/trailer-value": chunked("X-T", "X-T: a\r"+cookie),
	}
	b := peer.StartRawBackend(t, func(c *peer.RawConn, r peer.RawRequest) bool {
		answer, ok := answers[r.RequestURI]
		if !ok {
			return peer.RawOK(c, r)
		}
		_, err := io.WriteString(c, answer)
		return err == nil
	})
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "", []string{b.URL()}, "", ""))

	for uri := range answers {
		t.Run(strings.TrimPrefix(uri, "/"), func(t *testing.T) {
			raw := rawExchange(t, w.Addr(), "GET "+uri+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			status, _, _ := strings.Cut(raw, "\r\n")
			t.Logf("attacker got %q", status)
			if !strings.HasPrefix(raw, "HTTP/1.1 200 ") && !strings.HasPrefix(raw, "HTTP/1.1 502 ") {
				t.Errorf("attacker got %q; want 200 or 502", clip([]byte(raw)))
			}
			for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' }) {
				if strings.HasPrefix(strings.ToLower(line), "set-cookie") {
					t.Errorf("attacker got the header line %q the backend hid in a field:\n%q", line, raw)
				}
			}
			head, _, _ := strings.Cut(raw, "\r\n\r\n")
			for _, line := range strings.Split(head, "\r\n")[1:] {
				if name, _, ok := strings.Cut(line, ":"); !ok || !isToken(name) {
					t.Errorf("attacker got the header line %q, whose name is not a token:\n%q", line, raw)
				}
			}
		})
	}
}

// rawExchange sends raw on a new connection to addr and returns every
// byte webtier sent until it closed the connection.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial webtier: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(attackRead))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatalf("sending %q: %v", raw, err)
	}
	got, err := io.ReadAll(c)
	if err != nil && !isClosed(err) {
		t.Fatalf("reading the answer to %q: %v (got %q)", raw, err, got)
	}
	return string(got)
}

// isToken reports whether s is an RFC 9110 token, what a field name must be.
func isToken(s string) bool {
	return s != "" && strings.IndexFunc(s, func(r rune) bool {
		return r > '~' || r <= ' ' || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", r)
	}) < 0
}
