package proxy

import (
	"net/url"
	"strings"
	"testing"
)

// The one decision on paths: what the router matches (Path) and what the
// backend receives (EscapedPath) are the same path.
func TestCleanPath(t *testing.T) {
	tests := []struct {
		target   string // the request target as sent
		wantRaw  string // what the backend receives; "" for 400
		wantPath string // what the router matches
	}{
		{"/a/../b", "/b", "/b"},
		{"/a/./b", "/a/b", "/a/b"},
		{"/%2e%2e/admin", "", ""},
		{"/public/..%2fadmin", "/public/..%2fadmin", "/public/../admin"}, // one segment below /public/
		{"/public/%2e%2e/admin", "/admin", "/admin"},
		{"/public/%2E./admin", "/admin", "/admin"},
		{"/%61dmin", "/admin", "/admin"},
		{"//admin", "/admin", "/admin"}, // merged, as httpd, nginx and Tomcat do
		{"/a//b///c/", "/a/b/c/", "/a/b/c/"},
		{"//", "/", "/"},
		{"/public//..//admin", "/admin", "/admin"},
		{"/a/..", "/", "/"},
		{"/a/.", "/a/", "/a/"},
		{"/..", "", ""},
		{"/a/../..", "", ""},
		{"/a%00b", "/a%00b", "/a\x00b"},
		{`/a\b`, "/a%5Cb", `/a\b`},
		{`/public/..\admin`, "/public/..%5Cadmin", `/public/..\admin`},
		{"/a%5cb", "/a%5cb", `/a\b`},
		// Go's EscapedPath re-encodes the decoded path when the raw one
		// has a byte it would escape, turning the kept %2F into "/".
		{`/x\/..%2fadmin`, "/x%5C/..%2fadmin", `/x\/../admin`},
		{"/~user/%7Euser", "/~user/~user", "/~user/~user"},
		{"/a%2Fb/%3B", "/a%2Fb/%3B", "/a/b/;"},
		{"/a;jsessionid=1", "/a;jsessionid=1", "/a;jsessionid=1"},
		// Tomcat reads "..;x" as "..": refused rather than routed as a
		// segment of its own.
		{"/public/..;/admin", "", ""},
		{"/public/%2e%2e;x=1/admin", "", ""},
		{"/public/.;/admin", "", ""},
		{"/public/..%3b/admin", "/public/..%3b/admin", "/public/..;/admin"},
		{"/a/...;/b", "/a/...;/b", "/a/...;/b"},
		{"/..a/.b/a..", "/..a/.b/a..", "/..a/.b/a.."},
		{"/a%20b/../c", "/c", "/c"},
		{"/", "/", "/"},
		{"/api/v1/users?x=/../", "/api/v1/users", "/api/v1/users"},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			u, err := url.ParseRequestURI(tt.target)
			if err != nil {
				t.Fatal(err)
			}
			q := u.RawQuery
			got, err := cleanPath(u)
			if tt.wantRaw == "" {
				if err == nil {
					t.Errorf("cleanPath(%q) = %q; want an error", tt.target, got.EscapedPath())
				}
				return
			}
			if err != nil {
				t.Fatalf("cleanPath(%q): %v", tt.target, err)
			}
			if g := got.EscapedPath(); g != tt.wantRaw {
				t.Errorf("backend gets %q; want %q", g, tt.wantRaw)
			}
			if got.Path != tt.wantPath {
				t.Errorf("router matches %q; want %q", got.Path, tt.wantPath)
			}
			if got.RawQuery != q {
				t.Errorf("query %q; want %q", got.RawQuery, q)
			}
			if p, _, _ := strings.Cut(tt.target, "?"); p == tt.wantRaw && got != u {
				t.Errorf("an unchanged path was copied")
			}
		})
	}
}

// BenchmarkCleanPath: a path that needs no change must cost nothing.
func BenchmarkCleanPath(b *testing.B) {
	for _, target := range []string{"/api/v1/users/12345", "/static/app.v2.min.js", "/a(1)!", "/public/%2e%2e/admin"} {
		u, err := url.ParseRequestURI(target)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(target, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := cleanPath(u); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
