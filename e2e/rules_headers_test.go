package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/webtier/webtier/e2e/peer"
	"github.com/webtier/webtier/proxy/proxytest"
)

// Error pages and the htpasswd file are read at load and again on every
// reload: a changed page is served after SIGHUP, a new user can log in,
// and an htpasswd file with a hash webtier refuses fails the reload with
// file, line and key while the previous config keeps serving. What the
// client and the backend see is asserted on real sockets.
func TestRouteRulesReload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	entry := func(user, pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return user + ":" + string(h) + "\n"
	}
	page := write("404.html", "<h1>Not here</h1><p>v1 {request_id}</p>\n")
	users := write("users", entry("alice", "pw-a"))
	b := peer.StartBackend(t, "127.0.0.1", "app")
	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners:
  - address: %q
    error_pages: {404: %q}
    server_header: webtier
routes:
  - host: app.test
    upstream: app
    basic_auth: {htpasswd_file: %q}
    response_headers: {set: {X-Request: "{request_id}"}}
upstreams:
  app:
    targets: [%q]
`, listen, page, users, b.URL())
	w := peer.StartWebtier(t, peer.Build(t), listen, cfg)

	fetch := func(host, user, pw string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", w.URL()+"/x", nil)
		req.Host = host
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
	notHere := regexp.MustCompile(`^<h1>Not here</h1><p>(v\d) ([0-9a-z]{26})</p>\n$`)
	res, body := fetch("nowhere.test", "", "")
	if m := notHere.FindStringSubmatch(body); res.StatusCode != 404 || m == nil || m[1] != "v1" {
		t.Fatalf("no route: %d %q; want 404 with page v1 and a request id", res.StatusCode, body)
	}
	res, _ = fetch("app.test", "alice", "pw-a")
	if res.StatusCode != 200 || res.Header.Get("Server") != "webtier" || len(res.Header.Get("X-Request")) != 26 {
		t.Fatalf("alice: %d Server %q X-Request %q; want 200, webtier, the request id", res.StatusCode,
			res.Header.Get("Server"), res.Header.Get("X-Request"))
	}
	if got := b.Last().Header.Get("Authorization"); got != "" {
		t.Errorf("the backend got Authorization %q; want it kept from the backend", got)
	}
	if got := b.Last().Header.Get("X-Request-Id"); got != res.Header.Get("X-Request") {
		t.Errorf("backend request id %q, client's X-Request %q; want the same", got, res.Header.Get("X-Request"))
	}
	if res, _ := fetch("app.test", "bob", "pw-b"); res.StatusCode != 401 {
		t.Fatalf("bob before the reload: %d; want 401", res.StatusCode)
	}

	write("404.html", "<h1>Not here</h1><p>v2 {request_id}</p>\n")
	write("users", entry("alice", "pw-a")+entry("bob", "pw-b"))
	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	w.WaitLog(t, "config reloaded")
	if _, body := fetch("nowhere.test", "", ""); !strings.Contains(body, "v2 ") {
		t.Errorf("after the reload: %q; want page v2", body)
	}
	if res, _ := fetch("app.test", "bob", "pw-b"); res.StatusCode != 200 {
		t.Errorf("bob after the reload: %d; want 200", res.StatusCode)
	}

	write("users", "carol:$apr1$abc$0123456789abcdefghijk.\n")
	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	w.WaitLog(t, "config reload failed")
	want := w.ConfigPath() + ":8: routes[0].basic_auth.htpasswd_file: " + users + ": line 1: user \\\"carol\\\" has an MD5"
	if !strings.Contains(w.Logs(), want) {
		t.Errorf("the failed reload's log does not say %q:\n%s", want, w.Logs())
	}
	if res, _ := fetch("app.test", "bob", "pw-b"); res.StatusCode != 200 {
		t.Errorf("bob after a failed reload: %d; want 200 (the config in force)", res.StatusCode)
	}
}

// Over a TLS listener with HTTP/2: a body without a length over
// max_body_size gets 413 with nothing complete reaching the backend, and
// security_headers sends HSTS (which it leaves out over plain HTTP).
func TestRouteRulesHTTP2(t *testing.T) {
	certFile, keyFile, _ := proxytest.WriteCert(t, t.TempDir(), "webtier-rules")
	b := peer.StartBackend(t, "127.0.0.1", "app")
	listen := peer.FreeAddr(t, "127.0.0.1")
	plain := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`listeners:
  - address: %q
    tls: {cert_file: %q, key_file: %q}
  - address: %q
routes:
  - upstream: app
    max_body_size: 1k
    security_headers: true
upstreams:
  app:
    targets: [%q]
`, listen, certFile, keyFile, plain, b.URL())
	peer.StartWebtier(t, peer.Build(t), listen, cfg)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // the test's own certificate
		ForceAttemptHTTP2: true,
	}}
	t.Cleanup(client.CloseIdleConnections)
	post := func(body io.Reader, length int64) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", "https://"+listen+"/up", body)
		req.ContentLength = length
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Fatalf("answered over %s; want HTTP/2", res.Proto)
		}
		return res
	}
	big := strings.Repeat("x", 64<<10)
	if res := post(strings.NewReader(big), int64(len(big))); res.StatusCode != 413 {
		t.Errorf("with a length over the limit: %d; want 413", res.StatusCode)
	}
	if n := b.Count(); n != 0 {
		t.Errorf("the backend answered %d requests; want none", n)
	}
	if res := post(io.MultiReader(strings.NewReader(big)), -1); res.StatusCode != 413 {
		t.Errorf("without a length, over the limit: %d; want 413", res.StatusCode)
	}
	// The backend may have seen the start of that one (the request is
	// sent as the body comes), but never more than the limit.
	if b.Count() != 0 && b.Last().BodyLen > 1024 {
		t.Errorf("the backend read %d bytes of the body; want it cut off at 1024", b.Last().BodyLen)
	}
	res := post(strings.NewReader("small"), -1)
	if res.StatusCode != 200 || b.Last().BodyLen != 5 {
		t.Fatalf("a small body: %d, backend got %d bytes; want 200 and 5", res.StatusCode, b.Last().BodyLen)
	}
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("HSTS over HTTPS: %q; want max-age=31536000", got)
	}
	pres, err := http.Get("http://" + plain + "/")
	if err != nil {
		t.Fatal(err)
	}
	pres.Body.Close()
	if got, ok := pres.Header["Strict-Transport-Security"]; ok || pres.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("over plain HTTP: HSTS %q, X-Content-Type-Options %q; want no HSTS and nosniff", got, pres.Header.Get("X-Content-Type-Options"))
	}
}
