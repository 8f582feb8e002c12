package frontend

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy"
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
