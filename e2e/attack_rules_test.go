package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/webtier/webtier/e2e/peer"
)

// The route rules of issue 21 (limits, access control, header variables)
// seen from the attacker's side, against one webtier on real sockets and
// a raw backend that records every byte it gets. One webtier serves every
// case: a route per host, and a second listener that trusts 127.0.0.0/8
// as the balancer in front.
func TestAttackRouteRules(t *testing.T) {
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("correct horse"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	htpasswd := filepath.Join(dir, "users")
	if err := os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b := peer.StartRawBackend(t, nil)
	direct := peer.FreeAddr(t, "127.0.0.1")
	viaELB := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners:
  - address: %q
    trusted_proxies: [10.0.0.0/8]
  - address: %q
    trusted_proxies: [127.0.0.0/8]
routes:
  - host: body.test
    upstream: app
    max_body_size: 1k
  - host: auth.test
    upstream: app
    basic_auth: {realm: Staff, htpasswd_file: %q}
    rate_limit: {requests_per_second: 0.001, burst: 3}
  - host: office.test
    upstream: app
    allow: [203.0.113.0/24]
  - upstream: app
    request_headers: {set: {X-Seen-Host: "{host}"}}
    response_headers: {set: {X-Echo-Host: "{host}", X-Client: "{client_ip}"}}
upstreams:
  app:
    targets: [%q]
logging:
  level: info
  format: json
`, direct, viaELB, htpasswd, b.URL())
	w := peer.StartWebtier(t, peer.Build(t), direct, cfg)
	_ = w

	// A body whose Content-Length is over max_body_size: 413 before the
	// backend sees a byte.
	t.Run("body over the limit by Content-Length", func(t *testing.T) {
		before := len(b.Conns())
		raw := rawExchange(t, direct, "POST /up HTTP/1.1\r\nHost: body.test\r\nContent-Length: 2048\r\n\r\n"+strings.Repeat("x", 2048))
		if !strings.HasPrefix(raw, "HTTP/1.1 413 ") {
			t.Fatalf("attacker got %q; want 413", clip([]byte(raw)))
		}
		if n := len(b.Conns()); n != before {
			t.Errorf("the backend got %d new connections; want none", n-before)
		}
	})

	// A chunked body that grows past the limit: the backend's request is
	// cut off, its connection closed and never reused, and the client
	// gets 413 (the backend had not answered).
	t.Run("body over the limit chunked", func(t *testing.T) {
		chunk := strings.Repeat("x", 4096)
		var body strings.Builder
		for range 16 {
			fmt.Fprintf(&body, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		body.WriteString("0\r\n\r\n")
		c, err := net.Dial("tcp", direct)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		res, _ := sendOn(t, c, br, "POST /chunked HTTP/1.1\r\nHost: body.test\r\nTransfer-Encoding: chunked\r\n\r\n"+body.String())
		if res.StatusCode != 413 {
			t.Fatalf("attacker got %d; want 413", res.StatusCode)
		}
		after := rawExchange(t, direct, "GET /after HTTP/1.1\r\nHost: body.test\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(after, "HTTP/1.1 200 ") {
			t.Fatalf("next request got %q; want 200", clip([]byte(after)))
		}
		for _, bc := range b.Conns() {
			got := bc.Bytes()
			if bytes.Contains(got, []byte("POST /chunked")) && bytes.Contains(got, []byte("GET /after")) {
				t.Errorf("the backend connection that carried the cut body was reused:\n%q", clip(got))
			}
			if bytes.Contains(got, []byte("POST /chunked")) && bytes.HasSuffix(got, []byte("\r\n0\r\n\r\n")) {
				t.Errorf("the backend got a complete request with a cut body (%d bytes on the connection)", len(got))
			}
		}
	})

	// Password guessing is stopped by the rate limit, checked before the
	// password: the 4th guess gets 429 with Retry-After, and so does the
	// right password from the same address.
	t.Run("basic auth brute force gets 429", func(t *testing.T) {
		before := len(b.Requests())
		guess := func(pw string) *netResponse {
			cred := base64.StdEncoding.EncodeToString([]byte("alice:" + pw))
			return parseRaw(t, rawExchange(t, direct, "GET / HTTP/1.1\r\nHost: auth.test\r\nAuthorization: Basic "+cred+"\r\nConnection: close\r\n\r\n"))
		}
		for i, pw := range []string{"123456", "password", "letmein"} {
			r := guess(pw)
			if r.status != 401 || r.header("WWW-Authenticate") != `Basic realm="Staff", charset="UTF-8"` {
				t.Fatalf("guess %d: %d %q; want 401 with the challenge", i+1, r.status, r.header("WWW-Authenticate"))
			}
		}
		for _, pw := range []string{"qwerty", "correct horse"} {
			r := guess(pw)
			if r.status != 429 || r.header("Retry-After") == "" {
				t.Fatalf("guess %q after the burst: %d Retry-After %q; want 429 with Retry-After", pw, r.status, r.header("Retry-After"))
			}
		}
		if n := len(b.Requests()) - before; n != 0 {
			t.Errorf("the backend got %d requests; want none", n)
		}
	})

	// X-Forwarded-For from a peer that is not a trusted proxy is not the
	// client address: forging an allowed address gets 403. Through the
	// listener that trusts the peer (the balancer), the same header is
	// believed.
	t.Run("forged X-Forwarded-For does not pass an allow list", func(t *testing.T) {
		req := "GET / HTTP/1.1\r\nHost: office.test\r\nX-Forwarded-For: 203.0.113.5\r\nConnection: close\r\n\r\n"
		if raw := rawExchange(t, direct, req); !strings.HasPrefix(raw, "HTTP/1.1 403 ") {
			t.Errorf("forged from an untrusted peer: %q; want 403", clip([]byte(raw)))
		}
		if raw := rawExchange(t, viaELB, req); !strings.HasPrefix(raw, "HTTP/1.1 200 ") {
			t.Errorf("from the trusted balancer: %q; want 200", clip([]byte(raw)))
		}
		spoofChain := "GET / HTTP/1.1\r\nHost: office.test\r\nX-Forwarded-For: 203.0.113.5, 198.51.100.9\r\nConnection: close\r\n\r\n"
		if raw := rawExchange(t, viaELB, spoofChain); !strings.HasPrefix(raw, "HTTP/1.1 403 ") {
			t.Errorf("client-written left part of the chain: %q; want 403", clip([]byte(raw)))
		}
	})

	// A Host carrying CR, LF or NUL cannot bring a header line of its own
	// into the response (or the backend's request) through {host}.
	t.Run("header injection via variables", func(t *testing.T) {
		for name, host := range map[string]string{
			"bare CR":  "a.test\rSet-Cookie: pwned=1",
			"NUL":      "a.test\x00Set-Cookie: pwned=1",
			"obs-fold": "a.test\r\n Set-Cookie: pwned=1",
			"space":    "a.test Set-Cookie: pwned=1",
		} {
			t.Run(name, func(t *testing.T) {
				before := len(b.Requests())
				raw := rawExchange(t, direct, "GET / HTTP/1.1\r\nHost: "+host+"\r\nConnection: close\r\n\r\n")
				t.Logf("attacker got %q", strings.SplitN(raw, "\r\n", 2)[0])
				for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' || r == 0 }) {
					if strings.HasPrefix(strings.ToLower(strings.TrimSpace(line)), "set-cookie") {
						t.Errorf("attacker got the header line %q:\n%q", line, raw)
					}
				}
				for _, r := range b.Requests()[before:] {
					if _, ok := r.Header["Set-Cookie"]; ok {
						t.Errorf("the backend got Set-Cookie: %q", r.Header["Set-Cookie"])
					}
				}
			})
		}
		// The variables work: a plain Host comes back.
		r := parseRaw(t, rawExchange(t, direct, "GET / HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\n\r\n"))
		if r.header("X-Echo-Host") != "plain.test" || r.header("X-Client") != "127.0.0.1" {
			t.Errorf("X-Echo-Host %q, X-Client %q; want plain.test, 127.0.0.1", r.header("X-Echo-Host"), r.header("X-Client"))
		}
		reqs := b.Requests()
		if got := reqs[len(reqs)-1].Header.Get("X-Seen-Host"); got != "plain.test" {
			t.Errorf("backend got X-Seen-Host %q; want plain.test", got)
		}
	})
}

// netResponse is a raw answer's status and header lines.
type netResponse struct {
	status int
	lines  []string
}

func (r *netResponse) header(name string) string {
	for _, l := range r.lines {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func parseRaw(t *testing.T, raw string) *netResponse {
	t.Helper()
	head, _, _ := strings.Cut(raw, "\r\n\r\n")
	lines := strings.Split(head, "\r\n")
	r := &netResponse{lines: lines[1:]}
	if _, err := fmt.Sscanf(lines[0], "HTTP/1.1 %d", &r.status); err != nil {
		t.Fatalf("not an HTTP/1.1 answer: %q", clip([]byte(raw)))
	}
	return r
}
