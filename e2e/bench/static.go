package main

// The "static" suite (issue 21): files served by webtier's static routes
// against nginx serving the same directory (root, sendfile on, two
// workers: one per core), and on-the-fly gzip of an HTML page (webtier's
// compress, klauspost/compress gzip level 1; nginx's gzip on at its
// default level 1). nginx is the suite's "direct" column: there is no
// backend, and "req/s vs direct" is webtier ÷ nginx.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// staticPage is the 20 KiB HTML page of the gzip20k scenario: a product
// list, about as compressible as a real one.
var staticPage = func() string {
	var b strings.Builder
	b.WriteString("<!doctype html><html><head><title>shop</title></head><body>\n")
	for i := 0; b.Len() < 20<<10; i++ {
		fmt.Fprintf(&b, "<div class=\"item\"><a href=\"/item/%d\">Item %d</a> <span class=\"price\">%d.50 EUR</span></div>\n", i, i, (i*37)%97)
	}
	b.WriteString("</body></html>\n")
	return b.String()
}()

// staticBodies are the suite's files, by path, and their sizes.
var staticBodies = map[string]int{"/100.txt": 100, "/1m.bin": 1 << 20, "/page.html": len(staticPage)}

// writeStaticFiles writes the suite's files under dir/www and returns it.
func writeStaticFiles(dir string) (string, error) {
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return "", err
	}
	files := map[string]string{
		"100.txt":   strings.Repeat("x", 99) + "\n",
		"1m.bin":    strings.Repeat("0123456789abcdef", (1<<20)/16),
		"page.html": staticPage,
	}
	for name, body := range files {
		if err := writeFile(filepath.Join(www, name), body); err != nil {
			return "", err
		}
	}
	return www, nil
}

// writeNginxStatic: nginx as a web server, as a Debian install serves
// /var/www/html (sendfile on, tcp_nopush on, gzip on), with two workers.
func writeNginxStatic(e *env, dir string, port, _ int) ([]string, []string, error) {
	www, err := writeStaticFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;          # one per core (= auto on the 2-core machine)
user www-data;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
worker_rlimit_nofile %[4]d;
events { worker_connections %[5]d; }
http {
  access_log off;
  %[6]s
  include /etc/nginx/mime.types;
  sendfile on;
  tcp_nopush on;
  gzip on;                   # gzip_types text/html (the default), level 1 (the default)
  keepalive_timeout 120s;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:%[2]d backlog=4096;
    root %[3]s;
  }
}
`, dir, port, www, nginxRlimit(e), e.connCap, nginxTempPaths(dir))
	cfg := filepath.Join(dir, "nginx.conf")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"nginx", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log")}, nil, nil
}

// writeWebtierStatic: one listener, one static route with compression for
// text/html (gzip only: wrk asks for gzip) and no precompressed siblings
// (nginx's gzip_static is off by default too).
func writeWebtierStatic(e *env, dir string, port, _ int) ([]string, []string, error) {
	www, err := writeStaticFiles(dir)
	if err != nil {
		return nil, nil, err
	}
	conf := fmt.Sprintf(`listeners:
  - address: "127.0.0.1:%d"
routes:
  - path: /
    static: {root: %q, precompressed: false}
    compress: {types: [text/html], encodings: [gzip]}
drain:
  wait: 0s  # stopped between runs, with no balancer in front to wait for
%slogging:
  level: warn
  format: json
`, port, www, accessLogSection(e.webtierAccessLog, dir))
	cfg := filepath.Join(dir, "webtier.yaml")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{e.webtierBin, "-config", cfg}, nil, nil
}
