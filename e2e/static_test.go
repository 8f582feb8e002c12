package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/webtier/webtier/e2e/peer"
)

// staticSite is a document root for the static tests and what is in it.
type staticSite struct {
	root    string
	outside string // a directory beside the root
	big     []byte // big.bin, 1 MiB
	page    []byte // page.html, 20 KiB of HTML
}

// makeSite writes the document root: small and big files, a page with a
// precompressed sibling, a dotfile, and links that stay in or lead out.
func makeSite(t *testing.T) *staticSite {
	t.Helper()
	dir := t.TempDir()
	s := &staticSite{root: filepath.Join(dir, "www"), outside: filepath.Join(dir, "outside")}
	s.big = make([]byte, 1<<20)
	rand.Read(s.big)
	var page strings.Builder
	page.WriteString("<!doctype html><title>shop</title>\n")
	for i := 0; page.Len() < 20<<10; i++ {
		fmt.Fprintf(&page, "<div class=\"item\"><a href=\"/item/%d\">Item %d</a> <span class=\"price\">%d.50 EUR</span></div>\n", i, i, i%97)
	}
	s.page = []byte(page.String())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("precompressed page\n"))
	zw.Close()
	files := map[string][]byte{
		"www/index.html":        []byte("<h1>home</h1>\n"),
		"www/a.txt":             []byte("hello\n"),
		"www/big.bin":           s.big,
		"www/page.html":         s.page,
		"www/pre.html":          []byte("plain page\n"),
		"www/pre.html.gz":       gz.Bytes(),
		"www/.env":              []byte("SECRET=hunter2\n"),
		"www/docs/index.html":   []byte("docs\n"),
		"www/sub/b.txt":         []byte("b\n"),
		"outside/secret.txt":    []byte("outside the root\n"),
		"www-sibling/other.txt": []byte("sibling of the root\n"),
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name, target := range map[string]string{
		"www/link-in.txt":  "a.txt",
		"www/link-out.txt": "../outside/secret.txt",
		"www/dir-out":      "../outside",
	} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// rawClient is an HTTP client that shows encodings as sent (no transparent
// gzip).
func rawClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableCompression: true},
		Timeout:   attackRead,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

type got struct {
	status int
	header http.Header
	body   []byte
}

func fetch(t *testing.T, c *http.Client, method, url string, hdr ...string) got {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return got{resp.StatusCode, resp.Header, body}
}

// decodeBody decodes a response body by its Content-Encoding.
func decodeBody(t *testing.T, enc string, b []byte) []byte {
	t.Helper()
	switch enc {
	case "":
		return b
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gzip: %v", err)
		}
		return out
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		defer zr.Close()
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("zstd: %v", err)
		}
		return out
	}
	t.Fatalf("unexpected Content-Encoding %q", enc)
	return nil
}

// TestStatic: what a client sees of a static route over a real socket:
// types, validators, 304s, ranges, the 1 MiB file (sent with sendfile on
// the own engine) byte for byte, precompressed siblings, and compression
// of static and proxied responses, decoded back to the original.
func TestStatic(t *testing.T) {
	s := makeSite(t)
	events := make(chan struct{})
	b := peer.StartRawBackend(t, func(c *peer.RawConn, r peer.RawRequest) bool {
		var err error
		switch r.RequestURI {
		case "/api/page":
			body := s.page
			if r.Method == "HEAD" {
				body = nil
			}
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nEtag: \"v1\"\r\nContent-Length: %d\r\n\r\n%s", len(s.page), body)
		case "/api/chunked":
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(s.page), s.page)
		case "/api/notransform":
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nCache-Control: no-transform\r\nContent-Length: %d\r\n\r\n%s", len(s.page), s.page)
		case "/api/encoded":
			_, err = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: br\r\nContent-Length: 5\r\n\r\nbrbr\n")
		case "/api/events":
			// One event, then the next only once the client has
			// decoded the first: without flushes through the encoder
			// the client would wait for ever (bounded by attackRead).
			_, err = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
			ev := "data: first\n\n"
			fmt.Fprintf(c, "%x\r\n%s\r\n", len(ev), ev)
			select {
			case <-events:
			case <-time.After(attackRead):
			}
			ev = "data: second\n\n"
			fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", len(ev), ev)
		default:
			return peer.RawOK(c, r)
		}
		return err == nil
	})
	listen := peer.FreeAddr(t, "127.0.0.1")
	config := func(root, compress string) string {
		return fmt.Sprintf(`listeners:
  - address: %q
routes:
  - path: /
    static: {root: %q}
  - path: /c/
    static: {root: %q}
    compress: %s
  - path: /api/
    upstream: app
    compress: {types: [text/html, text/event-stream], min_size: 100}
upstreams:
  app:
    targets: [%q]
logging:
  level: info
  format: json
`, listen, root, s.root, compress, b.URL())
	}
	w := peer.StartWebtier(t, peer.Build(t), listen, config(s.root, "{}"))
	c := rawClient()
	base := w.URL()

	t.Run("file", func(t *testing.T) {
		g := fetch(t, c, "GET", base+"/a.txt")
		if g.status != 200 || string(g.body) != "hello\n" || g.header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Fatalf("got %d %q %q; want 200 hello text/plain", g.status, g.body, g.header.Get("Content-Type"))
		}
		if g.header.Get("Etag") == "" || g.header.Get("Last-Modified") == "" || g.header.Get("Accept-Ranges") != "bytes" {
			t.Errorf("header %v; want ETag, Last-Modified and Accept-Ranges: bytes", g.header)
		}
		if n := fetch(t, c, "GET", base+"/a.txt", "If-None-Match", g.header.Get("Etag")); n.status != 304 || len(n.body) != 0 {
			t.Errorf("If-None-Match: %d %q; want 304 without a body", n.status, n.body)
		}
		if n := fetch(t, c, "GET", base+"/a.txt", "If-Modified-Since", g.header.Get("Last-Modified")); n.status != 304 {
			t.Errorf("If-Modified-Since: %d; want 304", n.status)
		}
	})
	t.Run("index-and-redirect", func(t *testing.T) {
		if g := fetch(t, c, "GET", base+"/"); g.status != 200 || string(g.body) != "<h1>home</h1>\n" {
			t.Errorf("/: %d %q; want the index", g.status, g.body)
		}
		if g := fetch(t, c, "GET", base+"/docs"); g.status != 301 || g.header.Get("Location") != "/docs/" {
			t.Errorf("/docs: %d Location %q; want 301 to /docs/", g.status, g.header.Get("Location"))
		}
		if g := fetch(t, c, "GET", base+"/sub/"); g.status != 404 || strings.Contains(string(g.body), "b.txt") {
			t.Errorf("/sub/ (no index): %d %q; want 404 and no listing", g.status, g.body)
		}
	})
	t.Run("big-file", func(t *testing.T) {
		g := fetch(t, c, "GET", base+"/big.bin")
		if g.status != 200 || !bytes.Equal(g.body, s.big) || g.header.Get("Content-Length") != "1048576" {
			t.Fatalf("got %d, %d bytes (equal %v), Content-Length %q; want the 1 MiB file", g.status, len(g.body), bytes.Equal(g.body, s.big), g.header.Get("Content-Length"))
		}
		r := fetch(t, c, "GET", base+"/big.bin", "Range", "bytes=1000-200999")
		if r.status != 206 || !bytes.Equal(r.body, s.big[1000:201000]) || r.header.Get("Content-Range") != "bytes 1000-200999/1048576" {
			t.Errorf("range: %d, %d bytes, Content-Range %q; want 206 with bytes 1000-200999", r.status, len(r.body), r.header.Get("Content-Range"))
		}
		m := fetch(t, c, "GET", base+"/big.bin", "Range", "bytes=0-9,-10")
		if m.status != 206 || !strings.HasPrefix(m.header.Get("Content-Type"), "multipart/byteranges") ||
			!bytes.Contains(m.body, s.big[:10]) || !bytes.Contains(m.body, s.big[len(s.big)-10:]) {
			t.Errorf("two ranges: %d %q; want 206 multipart/byteranges with both", m.status, m.header.Get("Content-Type"))
		}
		if u := fetch(t, c, "GET", base+"/big.bin", "Range", "bytes=2000000-"); u.status != 416 {
			t.Errorf("range past the end: %d; want 416", u.status)
		}
		if h := fetch(t, c, "HEAD", base+"/big.bin"); h.status != 200 || len(h.body) != 0 || h.header.Get("Content-Length") != "1048576" {
			t.Errorf("HEAD: %d, %d bytes, Content-Length %q", h.status, len(h.body), h.header.Get("Content-Length"))
		}
	})
	t.Run("precompressed", func(t *testing.T) {
		g := fetch(t, c, "GET", base+"/pre.html", "Accept-Encoding", "gzip, deflate")
		if g.status != 200 || g.header.Get("Content-Encoding") != "gzip" || g.header.Get("Content-Type") != "text/html; charset=utf-8" ||
			string(decodeBody(t, "gzip", g.body)) != "precompressed page\n" || g.header.Get("Vary") != "Accept-Encoding" {
			t.Errorf("got %d %v; want the .gz sibling as gzip text/html with Vary", g.status, g.header)
		}
		if p := fetch(t, c, "GET", base+"/pre.html"); string(p.body) != "plain page\n" || p.header.Get("Content-Encoding") != "" {
			t.Errorf("without Accept-Encoding: %q %v; want the plain file", p.body, p.header)
		}
	})
	t.Run("compress-static", func(t *testing.T) {
		for _, enc := range []string{"gzip", "zstd"} {
			g := fetch(t, c, "GET", base+"/c/page.html", "Accept-Encoding", enc)
			// The server may measure a short compressed body itself:
			// a Content-Length, if any, is the compressed one.
			if g.header.Get("Content-Encoding") != enc || !strings.HasPrefix(g.header.Get("Etag"), "W/") ||
				g.header.Get("Vary") != "Accept-Encoding" || g.header.Get("Content-Length") == fmt.Sprint(len(s.page)) {
				t.Errorf("%s: header %v; want Content-Encoding %s, not the page's Content-Length, a weak ETag, Vary", enc, g.header, enc)
			}
			if d := decodeBody(t, g.header.Get("Content-Encoding"), g.body); !bytes.Equal(d, s.page) || len(g.body) >= len(s.page)/2 {
				t.Errorf("%s: %d bytes decoding to %d; want the %d-byte page, compressed", enc, len(g.body), len(d), len(s.page))
			}
			if n := fetch(t, c, "GET", base+"/c/page.html", "Accept-Encoding", enc, "If-None-Match", g.header.Get("Etag")); n.status != 304 || len(n.body) != 0 {
				t.Errorf("%s: revalidating with the weak ETag: %d; want 304", enc, n.status)
			}
		}
		if g := fetch(t, c, "GET", base+"/c/page.html", "Accept-Encoding", "gzip;q=0, zstd;q=0"); g.header.Get("Content-Encoding") != "" || !bytes.Equal(g.body, s.page) {
			t.Errorf("q=0: Content-Encoding %q; want the page as it is", g.header.Get("Content-Encoding"))
		}
		g := fetch(t, c, "GET", base+"/c/page.html", "Accept-Encoding", "gzip", "Range", "bytes=0-99")
		if g.status != 206 || g.header.Get("Content-Encoding") != "" || !bytes.Equal(g.body, s.page[:100]) {
			t.Errorf("range: %d %q; want 206 of the uncompressed bytes", g.status, g.header.Get("Content-Encoding"))
		}
		if g := fetch(t, c, "GET", base+"/c/a.txt", "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "" {
			t.Errorf("a 6-byte file (under min_size) was compressed")
		}
		if g := fetch(t, c, "GET", base+"/c/big.bin", "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "" || !bytes.Equal(g.body, s.big) {
			t.Errorf("application/octet-stream (not listed) was compressed or changed")
		}
	})
	t.Run("compress-proxied", func(t *testing.T) {
		for _, path := range []string{"/api/page", "/api/chunked"} {
			g := fetch(t, c, "GET", base+path, "Accept-Encoding", "br;q=1, gzip;q=0.8")
			if g.status != 200 || g.header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decodeBody(t, "gzip", g.body), s.page) {
				t.Errorf("%s: %d %v; want gzip decoding to the backend's page", path, g.status, g.header)
			}
		}
		if g := fetch(t, c, "GET", base+"/api/page", "Accept-Encoding", "zstd"); g.header.Get("Etag") != `W/"v1"` {
			t.Errorf("ETag %q; want the backend's made weak, W/\"v1\"", g.header.Get("Etag"))
		}
		if g := fetch(t, c, "GET", base+"/api/notransform", "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "" || !bytes.Equal(g.body, s.page) {
			t.Errorf("no-transform: Content-Encoding %q; want none", g.header.Get("Content-Encoding"))
		}
		if g := fetch(t, c, "GET", base+"/api/encoded", "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "br" || string(g.body) != "brbr\n" {
			t.Errorf("already encoded: %q %q; want the backend's br body as it is", g.header.Get("Content-Encoding"), g.body)
		}
		if g := fetch(t, c, "HEAD", base+"/api/page", "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "" {
			t.Errorf("HEAD answered with Content-Encoding %q", g.header.Get("Content-Encoding"))
		}
	})
	// Last: a reload changes the root and turns compression off.
	defer t.Run("reload", func(t *testing.T) {
		w.WriteConfig(t, config(s.outside, "{encodings: []}"))
		if err := w.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		w.WaitLog(t, "config reloaded")
		c := rawClient() // new connections: the old ones may finish on the old config
		if g := fetch(t, c, "GET", base+"/secret.txt"); g.status != 200 || string(g.body) != "outside the root\n" {
			t.Errorf("after reload: /secret.txt %d %q; want the new root's file", g.status, g.body)
		}
		if g := fetch(t, c, "GET", base+"/c/page.html", "Accept-Encoding", "gzip"); g.header.Get("Content-Encoding") != "" || !bytes.Equal(g.body, s.page) {
			t.Errorf("after reload: Content-Encoding %q; want none (encodings: [])", g.header.Get("Content-Encoding"))
		}
	})
	t.Run("event-stream-flushes", func(t *testing.T) {
		conn, err := net.Dial("tcp", w.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(attackRead))
		io.WriteString(conn, "GET /api/events HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q; want gzip", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("the gzip header did not come before the second event: %v", err)
		}
		br := bufio.NewReader(zr)
		line, err := br.ReadString('\n')
		if err != nil || line != "data: first\n" {
			t.Fatalf("first event %q, %v; want it decoded before the backend sends the second", line, err)
		}
		close(events)
		rest, err := io.ReadAll(br)
		if err != nil || string(rest) != "\ndata: second\n\n" {
			t.Errorf("rest %q, %v", rest, err)
		}
	})
}
