package ajp_test

import (
	"context"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/webtier/webtier/proxy/upstream/ajp"
)

// A reverse proxy in front of one Tomcat AJP connector. ReverseProxy
// supplies hop-by-hop header removal, X-Forwarded-* and error handling;
// the Transport speaks AJP.
func ExampleTransport() {
	tomcat := "127.0.0.1:8009"
	tr := ajp.NewTransport(ajp.Options{
		Secret: "s3cret-ajp", // the secret of Tomcat's AJP Connector
		Dial: func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", tomcat)
		},
		OnError: func(kind string) {
			// Count kind (ajp.KindSecret: a wrong secret, ...); the error
			// itself reaches ReverseProxy's ErrorHandler, which logs it
			// and answers 502.
		},
	})
	target, _ := url.Parse("http://tomcat.invalid") // only the path matters for AJP
	proxy := &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // Tomcat sees the client's host name
			r.SetXForwarded()
			r.Out = r.Out.WithContext(ajp.WithRoute(r.Out.Context(), "node1"))
		},
	}
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	_ = srv // srv.ListenAndServe()

	// Active health check: a new connection answering CPING.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := tr.CPing(ctx); err != nil {
		log.Print(err)
	}
}
