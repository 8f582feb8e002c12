package frontend

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/compress"
	"github.com/webtier/webtier/proxy/proxytest"
	"github.com/webtier/webtier/proxy/static"
)

// BenchmarkStaticFile serves a file from a static route over loopback, on
// the own HTTP/1 server, with sendfile (ReadFrom) and with the copy
// through the buffered writer it replaces. The client's reading is in
// the figures too; compare the two rows.
func BenchmarkStaticFile(b *testing.B) {
	dir := b.TempDir()
	for name, size := range map[string]int{"100B": 100, "1MiB": 1 << 20} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Repeat("x", size)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	addrs := serveWith(b, proxy.Options{
		Listeners: []proxy.ListenerOptions{{Name: "bench", Address: "127.0.0.1:0"}},
		Routes:    []proxy.RouteOptions{{PathPrefix: "/", Static: &static.Options{Root: dir}}},
	}, zap.NewNop())
	for _, file := range []string{"100B", "1MiB"} {
		for _, mode := range []string{"sendfile", "copy"} {
			b.Run(file+"/"+mode, func(b *testing.B) {
				noSendfile = mode == "copy"
				defer func() { noSendfile = false }()
				tr := &http.Transport{}
				defer tr.CloseIdleConnections()
				client := &http.Client{Transport: tr}
				url := "http://" + addrs[0].String() + "/" + file
				buf := make([]byte, 64<<10)
				b.ReportAllocs()
				for b.Loop() {
					resp, err := client.Get(url)
					if err != nil {
						b.Fatal(err)
					}
					io.CopyBuffer(io.Discard, resp.Body, buf)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Fatalf("status %d", resp.StatusCode)
					}
				}
			})
		}
	}
}

// A static route with compression answers the same on every server: the
// own HTTP/1 (sendfile) and HTTP/2 servers and net/http's, plain and TLS.
func TestStaticRouteOnEveryServer(t *testing.T) {
	dir := t.TempDir()
	big := []byte(strings.Repeat("0123456789abcdef", (1<<20)/16))
	page := strings.Repeat("<p>a compressible line of html</p>\n", 200)
	os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644)
	os.WriteFile(filepath.Join(dir, "page.html"), []byte(page), 0o644)
	certFile, keyFile, roots := proxytest.WriteCert(t, t.TempDir(), "127.0.0.1")
	for _, engine := range []proxy.Engine{proxy.EngineWebtier, proxy.EngineStd} {
		for _, tlsOn := range []bool{false, true} {
			name := string(engine)
			if name == "" {
				name = "webtier"
			}
			if tlsOn {
				name += "-tls"
			}
			t.Run(name, func(t *testing.T) {
				lo := proxy.ListenerOptions{Name: "l", Address: "127.0.0.1:0", Engine: engine}
				scheme := "http"
				if tlsOn {
					lo.TLS = &proxy.TLSOptions{CertFile: certFile, KeyFile: keyFile}
					scheme = "https"
				}
				addrs := serveWith(t, proxy.Options{
					Listeners: []proxy.ListenerOptions{lo},
					Routes: []proxy.RouteOptions{{PathPrefix: "/", Static: &static.Options{Root: dir},
						Compress: &compress.Options{Types: []string{"text/html"}, Encodings: []string{"gzip"}}}},
				}, zap.NewNop())
				tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, ForceAttemptHTTP2: true}
				defer tr.CloseIdleConnections()
				c := &http.Client{Transport: tr}
				base := scheme + "://" + addrs[0].String()
				get := func(path string, hdr ...string) (*http.Response, []byte) {
					t.Helper()
					req, _ := http.NewRequest("GET", base+path, nil)
					for i := 0; i+1 < len(hdr); i += 2 {
						req.Header.Set(hdr[i], hdr[i+1])
					}
					resp, err := c.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					b, err := io.ReadAll(resp.Body)
					if err != nil {
						t.Fatal(err)
					}
					return resp, b
				}
				if resp, b := get("/big.bin"); resp.StatusCode != 200 || !bytes.Equal(b, big) {
					t.Errorf("big.bin: %d, %d bytes; want the file", resp.StatusCode, len(b))
				}
				if resp, b := get("/big.bin", "Range", "bytes=100-199"); resp.StatusCode != 206 || !bytes.Equal(b, big[100:200]) {
					t.Errorf("range: %d, %q", resp.StatusCode, b)
				}
				// Go's client asks for gzip itself and decodes it.
				resp, b := get("/page.html")
				if !resp.Uncompressed || string(b) != page {
					t.Errorf("page.html: compressed %v, %d bytes; want gzip decoded to the page", resp.Uncompressed, len(b))
				}
				if tlsOn && engine == proxy.EngineWebtier && resp.ProtoMajor != 2 {
					t.Errorf("got %s over TLS; want HTTP/2", resp.Proto)
				}
			})
		}
	}
}
