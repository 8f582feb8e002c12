package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// rulesConfig is a config whose only route has the given extra keys, one
// per line after "    " (with no listener keys, routes[0] is at line 4 and its keys start at line 5).
func rulesConfig(listenerKeys, routeKeys string) string {
	return "listeners:\n  - address: \":8080\"\n" + listenerKeys +
		"routes:\n  - upstream: app\n" + routeKeys +
		"upstreams: {app: {targets: [http://10.0.0.5], response_header_timeout: 30s}}\n"
}

func TestRuleKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	write("users", "alice:"+string(hash)+"\n")
	write("md5users", "alice:"+string(hash)+"\nbob:$apr1$x$y\n")
	write("502.html", "<p>{request_id}</p>")

	tests := []struct {
		name     string
		listener string
		route    string
		errKey   string // "" for no error
		errLine  int
		errMsg   string
	}{
		{name: "all keys", route: "    request_headers: {set: {X-A: '{client_ip}'}, add: {X-B: b}, unset: [X-C], edit: [{name: X-D, match: '^a(.*)', replace: 'b$1'}]}\n" +
			"    response_headers: {set: {X-E: e}}\n    security_headers: true\n    error_pages: {502: 502.html}\n    error_pages_backend: true\n" +
			"    max_body_size: 10MiB\n    timeout: 5s\n    allow: [10.0.0.0/8]\n    deny: [10.9.9.9]\n" +
			"    basic_auth: {realm: Staff, htpasswd_file: users}\n    rate_limit: {requests_per_second: 0.5, burst: 3}\n",
			listener: "    server_header: \"\"\n    response_headers: {unset: [X-Powered-By]}\n    error_pages: {502: 502.html}\n"},
		{name: "refused request field", route: "    request_headers: {set: {X-Forwarded-For: x}}\n",
			errKey: "routes[0].request_headers.set.X-Forwarded-For", errLine: 5, errMsg: "written by webtier"},
		{name: "refused host", route: "    request_headers:\n      unset: [Host]\n",
			errKey: "routes[0].request_headers.unset[0]", errLine: 6, errMsg: "host_header"},
		{name: "refused response framing", route: "    response_headers: {add: {Transfer-Encoding: chunked}}\n",
			errKey: "routes[0].response_headers.add.Transfer-Encoding", errLine: 5, errMsg: "frames the message"},
		{name: "unknown variable", route: "    response_headers: {set: {X-A: '{clientip}'}}\n",
			errKey: "routes[0].response_headers.set.X-A", errLine: 5, errMsg: "unknown variable {clientip}"},
		{name: "bad regexp", route: "    response_headers: {edit: [{name: X-A, match: '(', replace: x}]}\n",
			errKey: "routes[0].response_headers.edit[0].match", errLine: 5, errMsg: "not a regular expression"},
		{name: "page missing", route: "    error_pages: {502: nope.html}\n",
			errKey: "routes[0].error_pages.502", errLine: 5, errMsg: "nope.html"},
		{name: "page status", route: "    error_pages: {500: 502.html}\n",
			errKey: "routes[0].error_pages.500", errLine: 5, errMsg: "404, 502, 503, 504"},
		{name: "md5 htpasswd", route: "    basic_auth: {htpasswd_file: md5users}\n",
			errKey: "routes[0].basic_auth.htpasswd_file", errLine: 5, errMsg: "line 2: user \"bob\" has an MD5"},
		{name: "no htpasswd", route: "    basic_auth: {realm: x}\n",
			errKey: "routes[0].basic_auth.htpasswd_file", errLine: 5, errMsg: "htpasswd -B"},
		{name: "bad size", route: "    max_body_size: 10 parsecs\n",
			errKey: "routes[0].max_body_size", errLine: 5, errMsg: "not a size"},
		{name: "bad timeout", route: "    timeout: soon\n",
			errKey: "routes[0].timeout", errLine: 5, errMsg: "not a duration"},
		{name: "bad cidr", route: "    allow: [10.0.0.0/33]\n",
			errKey: "routes[0].allow[0]", errLine: 5, errMsg: "not an IP address or CIDR"},
		{name: "bad rate", route: "    rate_limit: {requests_per_second: fast}\n",
			errKey: "routes[0].rate_limit.requests_per_second", errLine: 5, errMsg: "not a rate"},
		{name: "bad server header", listener: "    server_header: \"a\\r\\nb\"\n",
			errKey: "listeners[0].server_header", errLine: 3, errMsg: "Server value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "webtier.yaml")
			write("webtier.yaml", rulesConfig(tt.listener, tt.route))
			cfg, err := Load(path)
			if tt.errKey == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load error = %v; want Errors", err)
			}
			for _, e := range errs {
				if e.Key == tt.errKey && e.Line == tt.errLine && strings.Contains(e.Msg, tt.errMsg) {
					return
				}
			}
			_ = cfg
			t.Errorf("Load error = %v; want one at line %d, key %s, containing %q", err, tt.errLine, tt.errKey, tt.errMsg)
		})
	}
}

func TestRuleKeysValues(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "502.html")
	if err := os.WriteFile(page, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(filepath.Join(dir, "webtier.yaml"), []byte(rulesConfig("",
		"    max_body_size: 512k\n    timeout: 5s\n    rate_limit: {requests_per_second: 2.5}\n    error_pages: {502: 502.html}\n")))
	if err != nil {
		t.Fatal(err)
	}
	rr := cfg.Proxy.Routes[0].Rules
	if rr == nil || rr.Access == nil {
		t.Fatalf("Rules = %+v", rr)
	}
	a := rr.Access
	if a.MaxBodySize != 512<<10 || a.Timeout != 5*time.Second || a.RateLimit.Rate != 2.5 || a.RateLimit.Burst != 3 ||
		a.RateLimit.MaxClients != 100000 {
		t.Errorf("Access = %+v, RateLimit %+v", a, a.RateLimit)
	}
	if p := rr.ErrorPages[502]; string(p.Body) != "x" || p.File != page || !strings.HasPrefix(p.ContentType, "text/html") {
		t.Errorf("page = %+v", p)
	}
	if cfg.Proxy.Listeners[0].Rules != nil {
		t.Error("a listener without rule keys has Rules")
	}
	backendOnly, err := Parse("w.yaml", []byte(rulesConfig("", "    error_pages_backend: true\n")))
	if err != nil {
		t.Fatal(err)
	}
	if rr := backendOnly.Proxy.Routes[0].Rules; rr == nil || !rr.ErrorPagesBackend {
		t.Errorf("error_pages_backend alone: Rules = %+v; want ErrorPagesBackend", rr)
	}
	plain, err := Parse("w.yaml", []byte(rulesConfig("", "")))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Proxy.Routes[0].Rules != nil {
		t.Error("a route without rule keys has Rules: it would cost every request")
	}
}
