package httpd

import "testing"

// A <LocationMatch> translates only when its expression is a path prefix.
func TestRegexPrefix(t *testing.T) {
	for _, c := range []struct {
		re, want string
		ok       bool
	}{
		{`^/api/`, "/api/", true},
		{`^/api/.*`, "/api/", true},
		{`^/api/(.*)`, "/api/", true},
		{`^/app`, "/app", true},
		{`^/v1\.0/`, "/v1.0/", true},
		{`^/v1.0/`, "", false}, // . is any character
		{`/api/`, "", false},   // unanchored: matches inside the path
		{`^/api/$`, "", false}, // one path, not a prefix
		{`^/(a|b)/`, "", false},
		{`\.php$`, "", false},
		{`^/[a-z]+/`, "", false},
	} {
		got, ok := regexPrefix(c.re)
		if got != c.want || ok != c.ok {
			t.Errorf("regexPrefix(%q) = %q, %v; want %q, %v", c.re, got, ok, c.want, c.ok)
		}
	}
}

// SSLProtocol's list is read as httpd reads it.
func TestSSLProtocolMin(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
		st   Status
	}{
		{[]string{"-all", "+TLSv1.3"}, "1.3", Exact},
		{[]string{"TLSv1.3"}, "1.3", Exact},
		{[]string{"all", "-TLSv1.2"}, "1.3", Approx}, // SSLv3, 1.0, 1.1 still on
		{[]string{"all", "-SSLv3", "-TLSv1", "-TLSv1.1", "-TLSv1.2"}, "1.3", Exact},
		{[]string{"all", "-SSLv3", "-TLSv1", "-TLSv1.1"}, "1.2", Exact},
		{[]string{"+TLSv1.2"}, "1.2", Exact},
		{[]string{"TLSv1.2"}, "1.2", Approx}, // webtier offers 1.3 too
		{[]string{"all"}, "1.2", Approx},
	} {
		got, st, _ := sslProtocolMin(c.args)
		if got != c.want || st != c.st {
			t.Errorf("SSLProtocol %v: min_version %s (%v); want %s (%v)", c.args, got, st, c.want, c.st)
		}
	}
}

// LogFormat strings become the access log format that writes them.
func TestExpressFormat(t *testing.T) {
	for _, c := range []struct {
		f, want string
		st      Status
	}{
		{`%h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`, "combined", Exact},
		{`%h %l %u %t "%r" %>s %b`, "common", Exact},
		{`%v:%p %h %l %u %t "%r" %>s %O "%{Referer}i" "%{User-Agent}i"`, "combined", Approx},
		{`%h %t "%r" %>s %b %D "%{User-Agent}i"`, "json", Approx},
		{`%h %{X-Custom}i`, "", Left},
		{`%h %{cookie}n`, "", Left},
	} {
		got, st, _ := expressFormat(c.f)
		if got != c.want || st != c.st {
			t.Errorf("LogFormat %q: %q (%v); want %q (%v)", c.f, got, st, c.want, c.st)
		}
	}
}
