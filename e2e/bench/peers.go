package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// env is what every peer config needs to know about the run.
type env struct {
	backendPort int    // backend nginx, plain HTTP/1.1
	certFile    string // self-signed ECDSA P-256 cert for 127.0.0.1 (PEM)
	keyFile     string // its key (PKCS#8 PEM)
	comboFile   string // cert+key in one file (HAProxy's crt)
	connCap     int    // client connections each proxy must be able to hold (idle test + load)
	nofile      uint64 // RLIMIT_NOFILE in force, which the peers inherit (0: unknown)
	webtierBin  string
	ajpPort     int // Tomcat's AJP connector (the "ajp" suite)
	// webtierUpstream are extra "key: value" lines for webtier's upstream
	// (-webtier-upstream); none by default: webtier runs at its defaults.
	webtierUpstream []string
	// webtierAccessLog is webtier's access_log format (-webtier-access-log;
	// "off" or "" for none, as every peer).
	webtierAccessLog string
}

// target is one column of the tables: a proxy, or a backend measured
// without a proxy ("direct").
type target struct {
	name string // unique: results, log file and config dir are keyed by it
	// suite is the backend the target belongs to: "" for the nginx backend
	// (scenarios ka100, ka8k, close, h2), "ajp" for Tomcat. A scenario
	// loads only the targets of its suite; a suite's targets are started
	// only when one of its scenarios is selected.
	suite string
	// direct marks the suite's backend: started first, always measured
	// (the ceiling), never filtered out by -proxies.
	direct bool
	// proxy is the name -proxies selects this target by, when not name
	// ("webtier-ajp" is selected by "webtier").
	proxy   string
	label   string   // row name in the scenario tables ("" = name)
	pkg     string   // Debian package providing it ("" = built from this repo)
	bin     string   // executable
	version []string // command printing the version (first line is used)
	// versionFn, when set, is used instead of version.
	versionFn func() string
	// bodies are the paths checked at start-up and their sizes (nil:
	// backendBodies).
	bodies map[string]int
	// readyTimeout bounds the start-up (0: 20 s).
	readyTimeout time.Duration
	// ready, when set, is an extra readiness check after the HTTP one.
	ready func(e *env) error
	// write creates the private config under dir and returns the command
	// line and extra environment. port is the plain HTTP listener; tlsPort
	// is the HTTP/2+TLS listener, 0 when the target has no TLS.
	write func(e *env, dir string, port, tlsPort int) (argv, extraEnv []string, err error)
	// tls says whether the target can terminate TLS + HTTP/2 (h2 scenario).
	tls   bool
	noTLS string // why not, shown in the h2 table
}

// targets lists the columns in table order. "direct" is special: it is the
// backend itself (started first by startBackend), measured without a proxy.
var targets = []*target{
	{name: "direct", direct: true, label: "direct (backend, no proxy)", pkg: "nginx", bin: "nginx",
		version: []string{"nginx", "-v"}, write: writeBackend, tls: true},
	{name: "webtier", bin: "webtier", version: []string{"webtier", "version"}, write: writeWebtier, tls: true},
	{name: "haproxy", pkg: "haproxy", bin: "haproxy", version: []string{"haproxy", "-v"}, write: writeHAProxy, tls: true},
	{name: "nginx", pkg: "nginx", bin: "nginx", version: []string{"nginx", "-v"}, write: writeNginxProxy, tls: true},
	{name: "httpd", pkg: "apache2", bin: "apache2", version: []string{"apache2", "-v"}, write: writeHttpd, tls: true},
	{name: "caddy", pkg: "caddy", bin: "caddy", version: []string{"caddy", "version"}, write: writeCaddy, tls: true},

	// The "ajp" suite (ajp.go): Tomcat's HTTP connector is the ceiling;
	// webtier and httpd (mod_proxy_ajp) reach it over its AJP connector.
	{name: "tomcat", suite: "ajp", direct: true, label: "direct (Tomcat HTTP connector, no proxy)", pkg: "tomcat10",
		bin: peer.TomcatCatalinaSh, versionFn: tomcatVersion, write: writeTomcat, bodies: tomcatBodies,
		readyTimeout: tomcatReadyTimeout, ready: tomcatAJPReady, noTLS: "n/a"},
	{name: "webtier-ajp", suite: "ajp", proxy: "webtier", label: "webtier → Tomcat AJP", bin: "webtier",
		version: []string{"webtier", "version"}, write: writeWebtierAJP, bodies: tomcatBodies, noTLS: "n/a"},
	{name: "httpd-ajp", suite: "ajp", proxy: "httpd", label: "httpd (mod_proxy_ajp) → Tomcat AJP", pkg: "apache2",
		bin: "apache2", version: []string{"apache2", "-v"}, write: writeHttpdAJP, bodies: tomcatBodies, noTLS: "n/a"},

	// The "static" suite (static.go): nginx serving files is the
	// reference; webtier's static route and compression against it.
	{name: "nginx-static", suite: "static", direct: true, label: "nginx (root, sendfile, gzip on)", pkg: "nginx", bin: "nginx",
		version: []string{"nginx", "-v"}, write: writeNginxStatic, bodies: staticBodies, noTLS: "n/a"},
	{name: "webtier-static", suite: "static", proxy: "webtier", label: "webtier (static, compress)", bin: "webtier",
		version: []string{"webtier", "version"}, write: writeWebtierStatic, bodies: staticBodies, noTLS: "n/a"},
}

// rowLabel is the target's name in the scenario tables.
func (t *target) rowLabel() string {
	if t.label != "" {
		return t.label
	}
	return t.name
}

// isWebtier reports whether the target is a webtier column (the reference
// of the "vs webtier" ratios).
func (t *target) isWebtier() bool { return t.bin == "webtier" }

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o644)
}

// --- backend: private nginx serving fixed bodies -------------------------

// backendBodies are the fixed responses, by path.
var backendBodies = map[string]int{"/100": 100, "/8k": 8192}

// writeBackend writes the backend nginx config: one worker (as the issue
// asks), static files (a `return` string cannot hold 8 KiB in nginx's config
// parser), no access log, keep-alive that never recycles the proxies'
// upstream connections. It also listens with TLS + HTTP/2 on tlsPort, the
// ceiling ("direct") of the h2 scenario.
func writeBackend(e *env, dir string, port, tlsPort int) ([]string, []string, error) {
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, nil, err
	}
	for path, n := range backendBodies {
		body := strings.Repeat("x", n-1) + "\n"
		if err := writeFile(filepath.Join(www, strings.TrimPrefix(path, "/")), body); err != nil {
			return nil, nil, err
		}
	}
	conf := fmt.Sprintf(`# backend: fixed-response origin, the ceiling ("direct")
daemon off;
master_process on;
worker_processes 1;
user www-data;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
worker_rlimit_nofile %[5]d;
events { worker_connections %[4]d; }
http {
  access_log off;
  %[6]s
  default_type application/octet-stream;
  sendfile on;
  tcp_nopush on;
  etag off;
  open_file_cache max=16 inactive=60s;
  keepalive_timeout 120s;
  keepalive_requests 10000000;  # never close a proxy's pooled upstream connection
  ssl_certificate %[7]s;
  ssl_certificate_key %[8]s;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  server {
    listen 127.0.0.1:%[2]d backlog=4096;
    listen 127.0.0.1:%[3]d ssl http2 backlog=4096;
    root %[9]s;
    location = /100 { }
    location = /8k { }
    location = /status { stub_status; }  # "accepts": upstream connections the proxies opened
    location / { return 404; }
  }
}
`, dir, port, tlsPort, e.connCap, nginxRlimit(e), nginxTempPaths(dir), e.certFile, e.keyFile, www)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"nginx", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log")}, nil, nil
}

func nginxTempPaths(dir string) string {
	var b strings.Builder
	for _, k := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "%s_temp_path %s/tmp_%s; ", k, dir, k)
	}
	return b.String()
}

// --- webtier ----------------------------------------------------------------

// writeWebtier: a plain listener and a TLS one (HTTP/2 and HTTP/1.1 by
// ALPN, TLS 1.2+), one route, one upstream by IP (no DNS), written as the
// README's Configuration section has a user write it: every key that
// tunes performance (listener and upstream timeouts, the backend pool,
// GOMAXPROCS) is left at webtier's default, so the tables show what a user
// gets: the backend pool has no per-address cap (the connections the load
// left idle are kept, within backends.max_idle), so the h2 scenario's
// streams do not reconnect above a cap. Only -webtier-upstream adds keys
// to the upstream (e.g. to compare a pool size). webtier's access log is
// off, as every peer's here (its default is on: -webtier-access-log
// measures what it costs); logging at warn keeps stderr quiet (any line is
// a finding, quoted in the report).
func writeWebtier(e *env, dir string, port, tlsPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`listeners:
  - address: "127.0.0.1:%d"
  - address: "127.0.0.1:%d"
    tls: {cert_file: %q, key_file: %q}
routes:
  - path: /
    upstream: backend
upstreams:
  backend:
    targets: ["http://127.0.0.1:%d"]
%sdrain:
  wait: 0s  # stopped between runs, with no balancer in front to wait for
%slogging:
  level: warn
  format: json
`, port, tlsPort, e.certFile, e.keyFile, e.backendPort, upstreamExtra(e.webtierUpstream), accessLogSection(e.webtierAccessLog, dir))
	cfg := filepath.Join(dir, "webtier.yaml")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{e.webtierBin, "-config", cfg}, nil, nil
}

// accessLogSection is webtier's access_log section: off, or format to a
// file in dir (what a deployment writes to, rather than a pipe).
func accessLogSection(format, dir string) string {
	if format == "" || format == "off" {
		return "access_log: {format: \"off\"}  # as every peer here\n"
	}
	return fmt.Sprintf("access_log: {format: %q, path: %q}\n", format, filepath.Join(dir, "access.log"))
}

// upstreamExtra renders the -webtier-upstream keys as lines of the
// upstream mapping ("" when there are none).
func upstreamExtra(kv []string) string {
	var b strings.Builder
	for _, l := range kv {
		b.WriteString("    " + l + "\n")
	}
	return b.String()
}

// parseUpstreamKeys parses -webtier-upstream: "key: value" items separated
// by ";" (a value may hold commas, as in a flow list). It checks only the
// form; webtier itself rejects unknown keys and bad values at start-up.
func parseUpstreamKeys(s string) ([]string, error) {
	var out []string
	for _, item := range strings.Split(s, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" || strings.ContainsAny(v, "\r\n") || !upstreamKeyRE.MatchString(k) {
			return nil, fmt.Errorf("-webtier-upstream: %q is not \"key: value\" (items separated by \";\", e.g. \"max_idle_per_address: 1024; idle_timeout: 90s\")", item)
		}
		out = append(out, k+": "+v)
	}
	return out, nil
}

var upstreamKeyRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// --- HAProxy ------------------------------------------------------------------

// haproxyLimits is the global section's connection limit: maxconn
// e.connCap, and "no strict-limits" when RLIMIT_NOFILE is below what
// HAProxy reserves for it. HAProxy counts two descriptors per connection
// (the client's and the server's: maxsock = 2 × maxconn + a few) and by
// default refuses to start below that ("FD limit (20000) too low for
// maxconn=20024/maxsock=40065"); an idle client connection holds one, so
// with no strict-limits it still holds the idle-at-scale step's 19,000
// under a limit of 20,000.
func haproxyLimits(e *env) string {
	s := fmt.Sprintf("maxconn %d              # room for the idle-connection tests", e.connCap)
	if e.nofile != 0 && uint64(2*e.connCap+haproxyFdOverhead) > e.nofile {
		s += fmt.Sprintf("\n  no strict-limits           # RLIMIT_NOFILE %d < 2 x maxconn: start anyway (idle clients need 1 fd each)", e.nofile)
	}
	return s
}

// haproxyFdOverhead covers HAProxy's descriptors besides 2 × maxconn
// (listeners, pollers, pipes per thread), with room to spare.
const haproxyFdOverhead = 64

// nginxRlimit is worker_rlimit_nofile: two descriptors per connection, at
// most the limit in force (a worker cannot raise it above the hard limit
// without CAP_SYS_RESOURCE; it would log an alert for every start).
func nginxRlimit(e *env) int {
	want := 2*e.connCap + 64
	if e.nofile != 0 && uint64(want) > e.nofile {
		return int(e.nofile)
	}
	return want
}

// writeHAProxy: one process (-db, foreground), nbthread 2 = the 2 cores;
// no "log" lines, so no logging; http-keep-alive (default) on both sides
// with "http-reuse always" for the upstream (see below); X-Forwarded-For
// added as webtier does.
func writeHAProxy(e *env, dir string, port, tlsPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`global
  nbthread 2                 # one thread per core
  %[4]s
  ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
  mode http
  option http-keep-alive     # default: keep-alive on the client and server side
  http-reuse always          # default "safe" (and "aggressive") never reuse an idle server
                             # connection for the first request of a client connection: with
                             # Connection: close that was a new backend connection per request
  option forwardfor
  timeout connect 2s
  timeout client 120s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 120s

frontend fe
  bind 127.0.0.1:%[1]d
  bind 127.0.0.1:%[2]d ssl crt %[5]s alpn h2,http/1.1
  default_backend be

backend be
  server s1 127.0.0.1:%[3]d
`, port, tlsPort, e.backendPort, haproxyLimits(e), e.comboFile)
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"haproxy", "-f", cfg, "-db"}, nil, nil
}

// --- nginx as a proxy -----------------------------------------------------------

// writeNginxProxy: worker_processes 2 (= "auto" here, one per core, as
// nginx recommends); upstream keepalive 64 with HTTP/1.1 and an empty
// Connection header; proxy_buffering on (default); X-Forwarded-* as webtier.
func writeNginxProxy(e *env, dir string, port, tlsPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;          # one per core (= auto on the 2-core machine)
user www-data;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
worker_rlimit_nofile %[6]d;
events { worker_connections %[5]d; }
http {
  access_log off;
  %[7]s
  keepalive_timeout 120s;
  keepalive_requests 100000; # default 1000: its GOAWAY made h2load count failed streams
  ssl_certificate %[8]s;
  ssl_certificate_key %[9]s;
  ssl_protocols TLSv1.2 TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  upstream backend {
    server 127.0.0.1:%[4]d;
    keepalive 64;            # idle upstream connections kept per worker
  }
  server {
    listen 127.0.0.1:%[2]d backlog=4096;
    listen 127.0.0.1:%[3]d ssl http2 backlog=4096;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $host;
    }
  }
}
`, dir, port, tlsPort, e.backendPort, e.connCap, nginxRlimit(e), nginxTempPaths(dir), e.certFile, e.keyFile)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"nginx", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log")}, nil, nil
}

// --- Apache httpd (mpm_event + mod_proxy_http) ---------------------------------

// httpdThreads is the worker thread pool of the single httpd child process.
const httpdThreads = 64

// writeHttpd: a private config that includes nothing from /etc/apache2
// (see shared/PEERS.md). mpm_event with ONE child process and a pool of
// httpdThreads threads (sized for 2 cores; idle keep-alive connections do
// not hold a thread with event). AsyncRequestWorkerFactor is raised so that
// one process may hold the idle-connection test's connections: the event MPM
// accepts at most ThreadsPerChild + factor × idle threads connections per
// process. mod_proxy pools and reuses backend connections by default
// (disablereuse=Off); keepalive=On adds TCP keepalive probes on them.
// MaxKeepAliveRequests 100000 (default 100), as nginx's keepalive_requests
// (default 1000): a client connection is not recycled during a run, as with
// webtier, HAProxy and Caddy, which have no such limit.
// No access log: mod_log_config is built in, and no CustomLog is set.
func writeHttpd(e *env, dir string, port, tlsPort int) ([]string, []string, error) {
	load := httpdLoadModules("mpm_event", "authz_core", "proxy", "proxy_http", "ssl", "socache_shmcb", "http2")
	conf := httpdHead(dir, load) + fmt.Sprintf(`Listen 127.0.0.1:%[2]d
Listen 127.0.0.1:%[3]d https

%[6]s
<Location />
  Require all granted
</Location>

ProxyPreserveHost On
ProxyPass / http://127.0.0.1:%[4]d/ keepalive=On

# mod_http2's own stream worker pool (server-wide only: ignored inside a
# VirtualHost), sized for 2 cores: its default, derived from ThreadsPerChild
# 64, halved h2 throughput and doubled CPU per request here.
H2MinWorkers 4
H2MaxWorkers 8

SSLSessionCache "shmcb:%[1]s/ssl_scache(512000)"
SSLProtocol -all +TLSv1.2 +TLSv1.3
<VirtualHost 127.0.0.1:%[3]d>
  SSLEngine on
  SSLCertificateFile %[5]s
  SSLCertificateKeyFile %[7]s
  Protocols h2 http/1.1
  ProxyPreserveHost On
  ProxyPass / http://127.0.0.1:%[4]d/ keepalive=On
</VirtualHost>
`, dir, port, tlsPort, e.backendPort, e.certFile, httpdMPM(e), e.keyFile)
	cfg := filepath.Join(dir, "httpd.conf")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	// -DFOREGROUND: the parent stays in the foreground, so our child PID is
	// httpd's parent process and its worker child is our grandchild.
	return []string{"apache2", "-f", cfg, "-DFOREGROUND"}, nil, nil
}

// httpdHead is the start of every httpd config: its files under dir, the
// www-data user, and the LoadModule lines load.
func httpdHead(dir, load string) string {
	return fmt.Sprintf(`ServerRoot "%[1]s"
DefaultRuntimeDir "%[1]s"
PidFile "%[1]s/httpd.pid"
ErrorLog "%[1]s/error.log"
LogLevel warn
ServerName 127.0.0.1
User www-data
Group www-data
%[2]s
`, dir, load)
}

// httpdLoadModules returns the LoadModule lines for mods.
func httpdLoadModules(mods ...string) string {
	var load strings.Builder
	for _, m := range mods {
		fmt.Fprintf(&load, "LoadModule %s_module /usr/lib/apache2/modules/mod_%s.so\n", m, m)
	}
	return load.String()
}

// httpdMPM is the process/thread and keep-alive part of both httpd
// configs (see writeHttpd).
func httpdMPM(e *env) string {
	factor := e.connCap/httpdThreads + 2
	return fmt.Sprintf(`# mpm_event: one child process, one thread pool for the 2 cores
ServerLimit 1
StartServers 1
ThreadLimit %[1]d
ThreadsPerChild %[1]d
MaxRequestWorkers %[1]d
MinSpareThreads 8
MaxSpareThreads %[1]d
AsyncRequestWorkerFactor %[2]d
MaxConnectionsPerChild 0
ListenBacklog 4096

Timeout 60
KeepAlive On
KeepAliveTimeout 120
MaxKeepAliveRequests 100000
`, httpdThreads, factor)
}

// --- Caddy ------------------------------------------------------------------------

// writeCaddy: admin API off, automatic HTTPS off, HTTP/1.1 and HTTP/2 only
// (no HTTP/3 UDP listener); reverse_proxy's transport keeps up to 64 idle
// upstream connections per host (its default is 32). No access log (no
// `log` directive). GOMAXPROCS is Go's default (= 2 cores). Caddy's own
// state goes to XDG dirs under the temp dir.
func writeCaddy(e *env, dir string, port, tlsPort int) ([]string, []string, error) {
	proxy := fmt.Sprintf(`reverse_proxy 127.0.0.1:%d {
		transport http {
			keepalive 90s
			keepalive_idle_conns 128
			keepalive_idle_conns_per_host 64
		}
	}`, e.backendPort)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	servers {
		protocols h1 h2
		timeouts {
			idle 120s
		}
	}
}

http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	%[3]s
}

https://127.0.0.1:%[2]d {
	bind 127.0.0.1
	tls %[4]s %[5]s
	%[3]s
}
`, port, tlsPort, proxy, e.certFile, e.keyFile)
	cfg := filepath.Join(dir, "Caddyfile")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	extra := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir + "/data", "XDG_CONFIG_HOME=" + dir + "/config"}
	return []string{"caddy", "run", "--config", cfg, "--adapter", "caddyfile"}, extra, nil
}
