package h1_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"

	"github.com/webtier/webtier/proxy/upstream/h1"
)

// A reverse proxy in front of one backend address. ReverseProxy supplies
// hop-by-hop header removal, X-Forwarded-* and error handling; the
// Transport carries the requests over pooled keep-alive connections.
func ExampleTransport() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s for %s", r.Method, r.URL, r.Header.Get("X-Forwarded-Host"))
	}))
	defer backend.Close()
	addr := backend.Listener.Addr().String()

	tr := h1.NewTransport(h1.Options{
		// The address is fixed: the Transport never resolves a name.
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", addr)
		},
	})
	defer tr.CloseIdleConnections()
	target, _ := url.Parse("http://" + addr)
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.SetXForwarded()
		},
	})
	defer proxy.Close()

	for _, path := range []string{"/a", "/b?x=1"} {
		resp, err := http.Get(proxy.URL + path)
		if err != nil {
			fmt.Println(err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.Status, strings.Replace(string(b), proxy.Listener.Addr().String(), "proxy", 1))
	}
	// Output:
	// 200 OK GET /a for proxy
	// 200 OK GET /b?x=1 for proxy
}
