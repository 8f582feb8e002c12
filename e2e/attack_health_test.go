package e2e

import (
	"fmt"
	"maps"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/net/http2"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// startHealthWebtier starts webtier in front of b with a plain listener
// (w.Addr()) and a TLS one (a self-signed certificate; its address is
// returned), info logs and extra, top-level YAML, appended.
func startHealthWebtier(t *testing.T, b *peer.RawBackend, extra string) (w *peer.Webtier, tlsAddr string) {
	t.Helper()
	certFile, keyFile, _ := proxytest.WriteCert(t, t.TempDir(), "webtier-attack")
	plain, tlsAddr := peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
	w = peer.StartWebtier(t, peer.Build(t), plain, fmt.Sprintf(`listeners:
  - address: %q
  - address: %q
    tls: {cert_file: %q, key_file: %q}
routes:
  - path: /
    upstream: app
upstreams:
  app:
    targets: [%q]
logging:
  level: info
  format: json
`, plain, tlsAddr, certFile, keyFile, b.URL())+extra)
	return w, tlsAddr
}

// Health endpoint (issue 19): webtier answers GET /health_check.html
// itself, so the balancer in front learns webtier's state, not a
// backend's. From the attacker's side: every spelling of the path that
// webtier (and so the backend) would read as the health path is answered
// by webtier and reaches no backend, whatever the Host, the method or a
// body hiding a request; a path that only looks like it (a ".." after it,
// an encoded "/", another case) is routed as any other path, and the
// backend gets exactly the path that was routed.
func TestAttackHealthPath(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w, tlsAddr := startHealthWebtier(t, b, "")

	vectors := []struct {
		name   string
		send   string
		status int
		body   string // webtier's answer; "" when proxied
		// proxied: the request-URI the backend must receive; "": nothing
		// may reach it.
		proxied string
	}{
		{"exact", "GET /health_check.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"any-host", "GET /health_check.html HTTP/1.1\r\nHost: internal.admin\r\n\r\n", 200, "ok\n", ""},
		{"query", "GET /health_check.html?x=../../admin HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"double-slash", "GET //health_check.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"dot-dot-into", "GET /static/../health_check.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"encoded-underscore", "GET /health%5Fcheck.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"encoded-letter", "GET /%68ealth_check%2ehtml HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"path-parameter", "GET /health_check.html;jsessionid=x HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		{"absolute-form", "GET http://a/health_check.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "ok\n", ""},
		// Connection: close: the attacker's reader, which does not know the
		// request was a HEAD, sees the body end at the close.
		{"head", "HEAD /health_check.html HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, "", ""},
		{"post", post("/health_check.html", "Content-Length: 3\r\n", "a=b"), 405, "405 Method Not Allowed: the health endpoint answers GET and HEAD\n", ""},
		{"smuggle-in-body", "GET /health_check.html HTTP/1.1\r\nHost: a\r\nContent-Length: " +
			fmt.Sprint(len(smuggled)) + "\r\n\r\n" + smuggled, 200, "ok\n", ""},
		{"smuggle-chunked", "GET /health_check.html HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
			fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(smuggled), smuggled), 200, "ok\n", ""},
		{"dot-dot-out", "GET /health_check.html/../x HTTP/1.1\r\nHost: a\r\n\r\n", 200, "", "/x"},
		{"encoded-slash", "GET /%2Fhealth_check.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "", "/%2Fhealth_check.html"},
		{"encoded-slash-after", "GET /health_check.html%2F.. HTTP/1.1\r\nHost: a\r\n\r\n", 200, "", "/health_check.html%2F.."},
		{"other-case", "GET /Health_Check.html HTTP/1.1\r\nHost: a\r\n\r\n", 200, "", "/Health_Check.html"},
		{"suffix", "GET /health_check.html.bak HTTP/1.1\r\nHost: a\r\n\r\n", 200, "", "/health_check.html.bak"},
		{"below", "GET /health_check.html/x HTTP/1.1\r\nHost: a\r\n\r\n", 200, "", "/health_check.html/x"},
	}
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			before := len(b.Requests())
			heard := attack(t, w.Addr(), v.send, false)
			after := b.Requests()[before:]
			if heard.first() != v.status {
				t.Fatalf("attacker got %s; want %d", heard, v.status)
			}
			switch {
			case v.proxied == "" && len(after) > 0:
				t.Errorf("backend received %s; want nothing (webtier answers the health path)", describeReqs(after))
			case v.proxied == "" && heard.bodies[0] != v.body:
				t.Errorf("attacker got %q; want webtier's %q", heard.bodies[0], v.body)
			case v.proxied != "" && (len(after) != 1 || after[0].RequestURI != v.proxied):
				t.Errorf("backend received %s; want exactly GET %s", describeReqs(after), v.proxied)
			}
		})
	}

	t.Run("h2", func(t *testing.T) {
		before := len(b.Requests())
		h := dialH2(t, tlsAddr, false)
		for i, path := range []string{"/health_check.html", "//health_check.html", "/x/../health_check.html"} {
			id := uint32(2*i + 1)
			if err := h.get(id, path); err != nil {
				t.Fatal(err)
			}
			if got := h.outcome(id); got != "status 200" {
				t.Errorf("h2 GET %s: %q; want status 200", path, got)
			}
		}
		if after := b.Requests()[before:]; len(after) > 0 {
			t.Errorf("backend received %s over HTTP/2; want nothing", describeReqs(after))
		}
	})
	// The smuggled requests above are not read as requests of their own
	// on the connection either.
	for _, r := range b.Requests() {
		if r.RequestURI == "/smuggled" {
			t.Errorf("backend received the smuggled request")
		}
	}
}

// During a drain (issue 19), what an attacker sends still goes through
// every rule, and a drain gives nothing more: the health endpoint says
// 503; pipelined HTTP/1 requests get one answer, with Connection: close,
// and the rest are never read as requests (nor forwarded); a new HTTP/2
// connection gets a GOAWAY with its first answer at the latest, the
// streams it names are answered, those after it never forwarded, and the
// connection closes.
func TestAttackDuringDrain(t *testing.T) {
	b := peer.StartRawBackend(t, nil)
	w, tlsAddr := startHealthWebtier(t, b, "drain:\n  wait: 10m\n")
	if err := w.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	w.WaitLog(t, "draining")

	heard := attack(t, w.Addr(), "GET /health_check.html HTTP/1.1\r\nHost: a\r\n\r\n", true)
	if heard.first() != 503 || heard.bodies[0] != "draining\n" || !heard.closed {
		t.Errorf("health during the drain: %s %q; want 503 draining, then the close", heard, heard.bodies)
	}

	before := len(b.Requests())
	heard = attack(t, w.Addr(), "GET /first HTTP/1.1\r\nHost: a\r\n\r\n"+smuggled+smuggled, true)
	got := b.Requests()[before:]
	if len(heard.statuses) != 1 || heard.first() != 200 || !heard.closed {
		t.Errorf("pipelined during the drain: %s; want one 200, then the close", heard)
	}
	if len(got) != 1 || got[0].RequestURI != "/first" {
		t.Errorf("backend received %s; want only GET /first", describeReqs(got))
	}

	for _, r := range b.Requests() {
		if r.RequestURI == "/smuggled" {
			t.Error("backend received a pipelined request sent during the drain")
		}
	}
	before = len(b.Requests())
	h := dialH2(t, tlsAddr, false)
	for _, id := range []uint32{1, 3, 5} {
		if err := h.get(id, fmt.Sprintf("/h2-%d", id)); err != nil {
			t.Fatal(err)
		}
	}
	var goAway bool
	var last uint32
	statuses := map[uint32]string{}
	for e := range h.events { // until the connection ends; dialH2's deadline bounds it
		switch {
		case e.typ == http2.FrameGoAway:
			goAway, last = e.code == http2.ErrCodeNo, e.last
		case e.typ == http2.FrameHeaders:
			statuses[e.stream] = e.status
		}
	}
	// The GOAWAY names the last stream the server takes (RFC 9113 6.8):
	// webtier's own server the first, net/http's (engine std) those it
	// read before the first answer went out. Those are answered; the
	// others are neither answered nor forwarded (the client may send
	// them again elsewhere).
	want, wantURIs := map[uint32]string{}, []string{}
	for _, id := range []uint32{1, 3, 5} {
		if id <= last {
			want[id] = "200"
			wantURIs = append(wantURIs, fmt.Sprintf("/h2-%d", id))
		}
	}
	if !goAway || last < 1 || !maps.Equal(statuses, want) {
		t.Errorf("h2 during the drain: GOAWAY NO_ERROR %v naming stream %d, answers %v; want the GOAWAY naming stream 1 or later, and the streams it names answered 200, no other", goAway, last, statuses)
	}
	got = b.Requests()[before:]
	var gotURIs []string
	for _, r := range got {
		gotURIs = append(gotURIs, r.RequestURI)
	}
	slices.Sort(gotURIs)
	if !slices.Equal(gotURIs, wantURIs) {
		t.Errorf("backend received %s over HTTP/2; want only %v", describeReqs(got), wantURIs)
	}
	t.Logf("h2 during the drain: GOAWAY naming stream %d, answers %v", last, statuses)
}
