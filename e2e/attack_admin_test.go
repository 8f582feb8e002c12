package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/webtier/webtier/e2e/peer"
)

// startAdminWebtier starts webtier with attackConfig's listener, route and
// upstream (upstreamExtra under it) on the targets, and an admin listener
// (adminExtra: lines indented two spaces under it), each on a free
// loopback port; extra is top-level YAML, appended. It returns the admin
// listener's base URL.
func startAdminWebtier(t *testing.T, targets []string, upstreamExtra, adminExtra, extra string) (w *peer.Webtier, base string) {
	t.Helper()
	listen, adminAddr := peer.FreeAddr(t, "127.0.0.1"), peer.FreeAddr(t, "127.0.0.1")
	conf := attackConfig(listen, "", targets, "", upstreamExtra) + fmt.Sprintf("admin:\n  address: %q\n", adminAddr) + adminExtra + extra
	return peer.StartWebtier(t, peer.Build(t), listen, conf), "http://" + adminAddr
}

// The admin listener from the attacker's side (issue 19): a page on
// another site that makes the operator's browser POST a form (no custom
// header possible without a CORS preflight), a DNS-rebinding page that
// reaches it under its own name, a link or image (GET), a request without
// the bearer token, and an oversized body. None changes anything: the
// address stays running and every request is refused with the status
// that says why.
func TestAttackAdminCrossSite(t *testing.T) {
	a := peer.StartBackend(t, "127.0.0.1", "a")
	w, base := startAdminWebtier(t, []string{"http://" + a.Addr()}, "", "", "")
	standby := `{"upstream":"app","address":"` + a.Addr() + `"}`
	form := "upstream=app&address=" + a.Addr()

	send := func(method, path, host, ctype, body string, hdr map[string]string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if host != "" {
			req.Host = host
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	evil := map[string]string{"Origin": "http://attacker.example", "Sec-Fetch-Site": "cross-site"}
	_, tok := send("GET", "/api/csrf-token", "", "", "", nil)
	tok = strings.TrimSpace(tok)
	for _, tt := range []struct {
		name             string
		method, path     string
		host, ctype, bod string
		hdr              map[string]string
		code             int
	}{
		{"cross-site form POST", "POST", "/api/standby", "", "application/x-www-form-urlencoded", form, evil, 403},
		{"cross-site text/plain POST of JSON", "POST", "/api/standby", "", "text/plain", standby, evil, 403},
		{"cross-site POST with a stolen-looking token but a foreign Origin", "POST", "/api/standby", "", "application/json", standby,
			map[string]string{"Origin": "http://attacker.example", "X-Webtier-Token": tok}, 403},
		{"same-origin-looking POST without the token", "POST", "/api/standby", "", "application/json", standby,
			map[string]string{"Origin": base, "Sec-Fetch-Site": "same-origin"}, 403},
		{"DNS rebinding: status", "GET", "/api/status", "attacker.example:80", "", "", nil, 421},
		{"DNS rebinding: token", "GET", "/api/csrf-token", "attacker.example:80", "", "", nil, 421},
		{"DNS rebinding: action", "POST", "/api/standby", "attacker.example:80", "application/json", standby,
			map[string]string{"Origin": "http://attacker.example:80", "X-Webtier-Token": tok}, 421},
		{"link or image: GET on an action", "GET", "/api/standby?upstream=app&address=" + a.Addr(), "", "", "", nil, 405},
		{"oversized body", "POST", "/api/standby", "", "application/json", `{"upstream":"` + strings.Repeat("a", 8<<10) + `"}`,
			map[string]string{"X-Webtier-Token": tok}, 400},
		{"newline in a field", "POST", "/api/standby", "", "application/json", `{"upstream":"app","address":"1.2.3.4:80\n\"level\":\"x"}`,
			map[string]string{"X-Webtier-Token": tok}, 400},
	} {
		if code, body := send(tt.method, tt.path, tt.host, tt.ctype, tt.bod, tt.hdr); code != tt.code {
			t.Errorf("%s: %d %s; want %d", tt.name, code, body, tt.code)
		}
	}
	_, st := send("GET", "/api/status", "", "", "", nil)
	if !strings.Contains(st, `"state": "running"`) || strings.Contains(st, `"state": "standby"`) {
		t.Errorf("an attack changed the address's state:\n%s", st)
	}
	if n := strings.Count(w.Logs(), "admin request refused"); n < 6 {
		t.Errorf("%d refused requests logged; want at least 6", n)
	}
}

// With a token, nothing of the data or the actions is served without it;
// the token is compared whole.
func TestAttackAdminToken(t *testing.T) {
	a := peer.StartBackend(t, "127.0.0.1", "a")
	_, base := startAdminWebtier(t, []string{"http://" + a.Addr()}, "", "  token: \"correct-horse-battery\"\n", "")
	for _, tt := range []struct {
		method, path, auth string
		code               int
	}{
		{"GET", "/api/status", "", 401},
		{"GET", "/api/status", "Bearer correct-horse", 401},
		{"GET", "/api/status", "Bearer correct-horse-battery-staple", 401},
		{"GET", "/api/csrf-token", "", 401},
		{"POST", "/api/reload", "", 401},
		{"POST", "/api/reload", "Basic Y29ycmVjdC1ob3JzZS1iYXR0ZXJ5", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/", "", 200}, // the page itself holds no data
		{"GET", "/api/status", "Bearer correct-horse-battery", 200},
	} {
		req, _ := http.NewRequest(tt.method, base+tt.path, nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.code {
			t.Errorf("%s %s with %q: %d; want %d", tt.method, tt.path, tt.auth, resp.StatusCode, tt.code)
		}
		if tt.code == 401 && strings.Contains(string(b), "upstream") {
			t.Errorf("%s %s: a refused request got data: %s", tt.method, tt.path, b)
		}
	}
}
