package static

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// tree makes a document root and, beside it, a directory a link may lead
// to, and returns the root.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "www")
	outside := filepath.Join(dir, "outside")
	files := map[string]string{
		"www/index.html":         "<h1>home</h1>",
		"www/a.txt":              "hello",
		"www/style.css":          "body{}",
		"www/noext":              "raw",
		"www/.env":               "SECRET=1",
		"www/.git/config":        "[core]",
		"www/sub/b.txt":          "b",
		"www/docs/index.html":    "docs",
		"www/page.html":          "plain page",
		"www/page.html.gz":       "GZ",
		"www/page.html.zst":      "ZST",
		"www/only-gz.js":         "js",
		"www/only-gz.js.gz":      "JSGZ",
		"www/docs/index.html.gz": "DOCSGZ",
		"outside/secret.txt":     "outside",
		"www.txt":                "sibling of root",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"www/link-in.txt":  "a.txt",
		"www/link-out.txt": "../outside/secret.txt",
		"www/link-abs.txt": filepath.Join(outside, "secret.txt"),
		"www/dir-out":      "../outside",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func TestServe(t *testing.T) {
	root := tree(t)
	def := Options{Root: root, Precompressed: true}
	tests := []struct {
		name   string
		opts   Options
		prefix string
		method string
		target string
		header map[string]string
		status int
		body   string // "" with a 404/400: not checked
		ctype  string
		enc    string
		loc    string
	}{
		{name: "file", target: "/a.txt", status: 200, body: "hello", ctype: "text/plain; charset=utf-8"},
		{name: "css", target: "/style.css", status: 200, body: "body{}", ctype: "text/css; charset=utf-8"},
		{name: "unknown-ext", target: "/noext", status: 200, body: "raw", ctype: "application/octet-stream"},
		{name: "index", target: "/", status: 200, body: "<h1>home</h1>", ctype: "text/html; charset=utf-8"},
		{name: "dir-index", target: "/docs/", status: 200, body: "docs"},
		{name: "dir-redirect", target: "/docs?x=1", status: 301, loc: "/docs/?x=1"},
		{name: "dir-no-index", target: "/sub/", status: 404},
		{name: "no-index-configured", opts: Options{Root: root, Index: []string{}}, target: "/", status: 404},
		{name: "file-with-slash", target: "/a.txt/", status: 404},
		{name: "missing", target: "/nope", status: 404},
		{name: "dotfile", target: "/.env", status: 404},
		{name: "dotdir", target: "/.git/config", status: 404},
		{name: "dotfile-allowed", opts: Options{Root: root, Dotfiles: true}, target: "/.env", status: 200, body: "SECRET=1"},
		{name: "dotdot", target: "/../www.txt", status: 400},
		{name: "encoded-slash", target: "/sub%2fb.txt", status: 400},
		{name: "encoded-slash-lower", target: "/sub%2Fb.txt", status: 400},
		{name: "encoded-backslash", target: "/sub%5cb.txt", status: 400},
		{name: "backslash", target: "/sub\\b.txt", status: 400},
		{name: "nul", target: "/a.txt%00.html", status: 400},
		{name: "link-inside", target: "/link-in.txt", status: 200, body: "hello"},
		{name: "link-out", target: "/link-out.txt", status: 404},
		{name: "link-abs-out", target: "/link-abs.txt", status: 404},
		{name: "dir-link-out", target: "/dir-out/secret.txt", status: 404},
		{name: "link-out-followed", opts: Options{Root: root, FollowSymlinks: true}, target: "/link-out.txt", status: 200, body: "outside"},
		{name: "dir-link-out-followed", opts: Options{Root: root, FollowSymlinks: true}, target: "/dir-out/secret.txt", status: 200, body: "outside"},
		{name: "fifo", target: "/fifo", status: 404},
		{name: "post", method: "POST", target: "/a.txt", status: 405},
		{name: "head", method: "HEAD", target: "/a.txt", status: 200, body: ""},
		{name: "alias", prefix: "/files/", target: "/files/a.txt", status: 200, body: "hello"},
		{name: "alias-root", prefix: "/files/", target: "/files/", status: 200, body: "<h1>home</h1>"},
		{name: "alias-no-slash", prefix: "/files", target: "/files/a.txt", status: 200, body: "hello"},
		{name: "alias-no-slash-sibling", prefix: "/files", target: "/filesa.txt", status: 404},
		{name: "gzip-sibling", target: "/page.html", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200, body: "GZ", enc: "gzip", ctype: "text/html; charset=utf-8"},
		{name: "zstd-preferred", target: "/page.html", header: map[string]string{"Accept-Encoding": "gzip, zstd"}, status: 200, body: "ZST", enc: "zstd"},
		{name: "client-q", target: "/page.html", header: map[string]string{"Accept-Encoding": "gzip;q=1, zstd;q=0.5"}, status: 200, body: "GZ", enc: "gzip"},
		{name: "q0", target: "/page.html", header: map[string]string{"Accept-Encoding": "gzip;q=0"}, status: 200, body: "plain page"},
		{name: "no-accept", target: "/page.html", status: 200, body: "plain page"},
		{name: "missing-zst-falls-to-gz", target: "/only-gz.js", header: map[string]string{"Accept-Encoding": "zstd, gzip;q=0.5"}, status: 200, body: "JSGZ", enc: "gzip", ctype: "text/javascript; charset=utf-8"},
		{name: "index-sibling", target: "/docs/", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200, body: "DOCSGZ", enc: "gzip"},
		{name: "precompressed-off", opts: Options{Root: root}, target: "/page.html", header: map[string]string{"Accept-Encoding": "gzip"}, status: 200, body: "plain page"},
		{name: "sibling-range", target: "/page.html", header: map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=1-"}, status: 206, body: "Z", enc: "gzip"},
		{name: "range", target: "/a.txt", header: map[string]string{"Range": "bytes=1-3"}, status: 206, body: "ell"},
		{name: "range-unsatisfiable", target: "/a.txt", header: map[string]string{"Range": "bytes=10-"}, status: 416},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			if o.Root == "" {
				o = def
			}
			h := New(o, tt.prefix)
			method := tt.method
			if method == "" {
				method = "GET"
			}
			r := httptest.NewRequest(method, "http://x"+tt.target, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d (%q); want %d", w.Code, w.Body.String(), tt.status)
			}
			if tt.status < 300 && w.Body.String() != tt.body {
				t.Errorf("body %q; want %q", w.Body.String(), tt.body)
			}
			if tt.status >= 400 && (strings.Contains(w.Body.String(), root) || strings.Contains(w.Body.String(), "outside")) {
				t.Errorf("error body %q tells where the files are", w.Body.String())
			}
			if tt.ctype != "" && w.Header().Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q; want %q", w.Header().Get("Content-Type"), tt.ctype)
			}
			if got := w.Header().Get("Content-Encoding"); got != tt.enc {
				t.Errorf("Content-Encoding %q; want %q", got, tt.enc)
			}
			if tt.loc != "" && w.Header().Get("Location") != tt.loc {
				t.Errorf("Location %q; want %q", w.Header().Get("Location"), tt.loc)
			}
			if o.Precompressed && tt.status == 200 && w.Header().Get("Vary") != "Accept-Encoding" {
				t.Errorf("Vary %q; want Accept-Encoding", w.Header().Get("Vary"))
			}
		})
	}
}

// Validators: a strong ETag that differs per encoding, Last-Modified, and
// the 304s and If-Range that depend on them.
func TestConditional(t *testing.T) {
	root := tree(t)
	h := New(Options{Root: root, Precompressed: true}, "/")
	get := func(target string, hdr ...string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "http://x"+target, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	first := get("/page.html")
	etag, lm := first.Header().Get("Etag"), first.Header().Get("Last-Modified")
	if !strings.HasPrefix(etag, `"`) || lm == "" {
		t.Fatalf("ETag %q, Last-Modified %q; want a strong ETag and a date", etag, lm)
	}
	gz := get("/page.html", "Accept-Encoding", "gzip")
	if gz.Header().Get("Etag") == etag {
		t.Errorf("the gzip sibling has the plain file's ETag %s", etag)
	}
	if w := get("/page.html", "If-None-Match", etag); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-None-Match with the ETag: %d %q; want 304 without body", w.Code, w.Body.String())
	}
	if w := get("/page.html", "If-None-Match", `"other"`); w.Code != 200 {
		t.Errorf("If-None-Match with another ETag: %d; want 200", w.Code)
	}
	if w := get("/page.html", "If-Modified-Since", lm); w.Code != 304 {
		t.Errorf("If-Modified-Since Last-Modified: %d; want 304", w.Code)
	}
	if w := get("/page.html", "If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT"); w.Code != 200 {
		t.Errorf("If-Modified-Since long ago: %d; want 200", w.Code)
	}
	if w := get("/page.html", "Range", "bytes=0-4", "If-Range", etag); w.Code != 206 || w.Body.String() != "plain" {
		t.Errorf("If-Range matching: %d %q; want 206 plain", w.Code, w.Body.String())
	}
	if w := get("/page.html", "Range", "bytes=0-4", "If-Range", `"old"`); w.Code != 200 {
		t.Errorf("If-Range not matching: %d; want 200 (whole file)", w.Code)
	}
}
