package main

// Peers of the failover scenario, all inside its network namespace (see
// failover.go): a BIND 9 authoritative for foZone, two fixed-response
// backends on foOldIP and foNewIP (same port), the nftables black hole,
// and the proxies, each configured to re-resolve foName against that BIND.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

const (
	foZone = "bench.test"
	// foName is the upstream name every proxy follows.
	foName = "app." + foZone
	// foTTL is the TTL of foName's A record, in seconds.
	foTTL = 1
	// foOldIP and foNewIP are the backends the record moves between.
	foOldIP = "127.0.0.2"
	foNewIP = "127.0.0.3"
	// foDNSAddr is where BIND listens inside the namespace: port 53, so
	// that glibc (httpd) can use it through resolv.conf, which has no port.
	foDNSAddr = "127.0.0.1:53"
	// foConnectTimeout is the connect timeout every proxy gets (webtier's
	// default connect_timeout), so that a black-holed address costs each
	// of them the same at most.
	foConnectTimeout = 2 * time.Second
	// foBody is the size of every backend answer.
	foBody = 100
)

// --- BIND -------------------------------------------------------------------

// foBIND is a private named, authoritative for foZone, that takes dynamic
// updates from 127.0.0.0/8 without TSIG: e2e/peer's BIND configuration
// (peer.BINDConfig, shared/PEERS.md section 3) on port 53, started and
// stopped by the benchmark as its other peers.
type foBIND struct {
	dir string
	d   *daemon
}

func startFoBIND(ctx context.Context, dir string) (*foBIND, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(foDNSAddr)
	p, _ := strconv.Atoi(port)
	cfg := peer.BINDConfig{Dir: dir, Port: p, Zone: foZone + ".",
		Records: []peer.Record{{Name: "app", TTL: foTTL, Type: "A", Value: foOldIP}}}
	if err := cfg.Write(); err != nil {
		return nil, err
	}
	if err := cfg.Check(ctx); err != nil {
		return nil, err
	}
	d, err := startDaemon("named", dir, nil, cfg.Command()...)
	if err != nil {
		return nil, err
	}
	b := &foBIND{dir: dir, d: d}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := lookupA(ctx)
		if err == nil && slices.Equal(got, []string{foOldIP}) {
			return b, nil
		}
		if d.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("named did not answer %s A = %s on %s (last: %v %v); log:\n%s", foName, foOldIP, foDNSAddr, got, err, d.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lookupA asks BIND for foName's A records (Go's resolver, no cache).
func lookupA(ctx context.Context) ([]string, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{Timeout: time.Second}).DialContext(ctx, network, foDNSAddr)
	}}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := r.LookupIP(ctx, "ip4", foName+".")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, ip := range ips {
		out = append(out, ip.String())
	}
	slices.Sort(out)
	return out, nil
}

// setA points foName at ip with the real nsupdate and returns once BIND
// serves it (nsupdate takes 0.2-0.7 s, PEERS.md), with the first instant a
// query (sent every 2 ms meanwhile) saw BIND serve it.
func (b *foBIND) setA(ctx context.Context, ip string) (served time.Time, err error) {
	pctx, stop := context.WithCancel(ctx)
	seen := make(chan time.Time, 1)
	go func() {
		defer close(seen)
		for pctx.Err() == nil {
			sent := time.Now()
			if got, err := lookupA(pctx); err == nil && slices.Equal(got, []string{ip}) {
				seen <- sent // the answer left BIND after this instant
				return
			}
			sleepCtx(pctx, 2*time.Millisecond)
		}
	}()
	err = b.update(ctx, ip)
	if err == nil {
		select {
		case served = <-seen:
		case <-time.After(time.Second):
		}
	}
	stop()
	return served, err
}

func (b *foBIND) update(ctx context.Context, ip string) error {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := peer.NSUpdate(cctx, foDNSAddr, foZone, fmt.Sprintf("update delete %s. A", foName),
		fmt.Sprintf("update add %s. %d A %s", foName, foTTL, ip)); err != nil {
		return fmt.Errorf("%s A %s: %w", foName, ip, err)
	}
	for {
		got, err := lookupA(cctx)
		if err == nil && slices.Equal(got, []string{ip}) {
			return nil
		}
		if cctx.Err() != nil {
			return fmt.Errorf("after nsupdate BIND does not serve %s A %s (last: %v %v)", foName, ip, got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- backends ---------------------------------------------------------------

// foBackend is a fixed-response HTTP/1.1 server on one address: 200,
// "X-Backend: <ip>", a foBody-byte body. revive replaces it with a fresh
// server on the same address.
type foBackend struct {
	ip, addr string
	count    atomic.Int64

	mu  sync.Mutex // guards srv
	srv *http.Server
}

// startFoBackends starts a backend on each ip, all on one free port.
func startFoBackends(ips ...string) ([]*foBackend, error) {
	for range 20 {
		l0, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			return nil, err
		}
		port := strconv.Itoa(l0.Addr().(*net.TCPAddr).Port)
		lns := []net.Listener{l0}
		for _, ip := range ips[1:] {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			lns = append(lns, l)
		}
		if len(lns) < len(ips) {
			for _, l := range lns {
				l.Close()
			}
			continue
		}
		var bs []*foBackend
		for i, ip := range ips {
			b := &foBackend{ip: ip, addr: net.JoinHostPort(ip, port)}
			b.serve(lns[i])
			bs = append(bs, b)
		}
		return bs, nil
	}
	return nil, fmt.Errorf("no port free on all of %v", ips)
}

func (b *foBackend) port() int {
	_, p, _ := net.SplitHostPort(b.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (b *foBackend) serve(ln net.Listener) {
	body := []byte(strings.Repeat("x", foBody-1) + "\n")
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.count.Add(1)
			w.Header().Set("X-Backend", b.ip)
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			_, _ = w.Write(body)
		}),
		IdleTimeout:       120 * time.Second,
		ReadHeaderTimeout: 10 * time.Second,
	}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// revive closes the server (listener and every connection, including the
// ones stuck behind a black hole) and starts a fresh one on the same
// address, so no byte queued for the old connections reaches the new one.
func (b *foBackend) revive() error {
	b.close()
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			b.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("revive backend %s: %w", b.addr, err)
}

func (b *foBackend) close() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// --- the black hole -----------------------------------------------------------

// foBlackholeTable is the nftables table of the black hole, in the
// scenario's own network namespace.
const foBlackholeTable = "webtier_bench_vanish"

// blackhole drops every TCP packet to and from addr ("ip:port"), as an ELB
// node that vanishes: connects time out, established connections hang. It
// drops in the input hook, which sees every packet on lo once in both
// directions after the sender's TCP counted it as sent, so the sender
// retransmits as it would towards a vanished host (an output-hook drop
// fails the send locally instead; see peer.Blackhole). It refuses to run
// outside the scenario's namespace.
func blackhole(addr, hostNetns string) error {
	if err := checkOwnNetns(hostNetns); err != nil {
		return fmt.Errorf("refusing to run nft: %w", err)
	}
	ip, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	rules := fmt.Sprintf(`table inet %[1]s {
  chain input {
    type filter hook input priority filter; policy accept;
    ip daddr %[2]s tcp dport %[3]s drop
    ip saddr %[2]s tcp sport %[3]s drop
  }
}
`, foBlackholeTable, ip, port)
	return runNft(rules, "-f", "-")
}

// unblackhole removes the black hole (no error when there is none).
func unblackhole(hostNetns string) error {
	if err := checkOwnNetns(hostNetns); err != nil {
		return fmt.Errorf("refusing to run nft: %w", err)
	}
	out, err := exec.Command("nft", "list", "tables").CombinedOutput()
	if err != nil {
		return fmt.Errorf("nft list tables: %v: %s", err, out)
	}
	if !strings.Contains(string(out), foBlackholeTable) {
		return nil
	}
	return runNft("", "delete", "table", "inet", foBlackholeTable)
}

func runNft(stdin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nft", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nft %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// checkOwnNetns makes sure this process is not in the host's network
// namespace (hostNetns is the parent's /proc/self/ns/net link).
func checkOwnNetns(hostNetns string) error {
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	if hostNetns == "" || self == hostNetns {
		return errors.New("this process is in the host's network namespace")
	}
	return nil
}

// --- the proxies ----------------------------------------------------------------

// foTarget is one proxy of the failover table.
type foTarget struct {
	name    string
	pkg     string   // Debian package ("" = built from this repo)
	version []string // command printing the version
	// dns says how the proxy is made to follow DNS (the table's column).
	dns string
	// write creates the private config under dir and returns the command
	// line and extra environment; port is its listener, backendPort the
	// backends' port.
	write func(fx *foEnv, dir string, port, backendPort int) (argv, extraEnv []string, err error)
}

// foEnv is what the config writers need to know.
type foEnv struct {
	webtierBin string
	// resolvConf is empty when /etc/resolv.conf points at BIND in this
	// namespace (glibc's resolver, httpd), else why it does not.
	resolvConf string
}

var foTargets = []*foTarget{
	{name: "webtier", version: []string{"webtier", "version"}, write: writeFoWebtier,
		dns: "`targets: [http://app.bench.test:PORT]`, `resolver.nameservers`; refresh by TTL (1 s, `min_ttl` 1s)"},
	{name: "haproxy", pkg: "haproxy", version: []string{"haproxy", "-v"}, write: writeFoHAProxy,
		dns: "`resolvers` (`hold valid 1s`, `timeout resolve 1s`) + `server ... resolvers bind init-addr none`"},
	{name: "nginx", pkg: "nginx", version: []string{"nginx", "-v"}, write: writeFoNginx,
		dns: "`resolver 127.0.0.1 valid=1s` + `set $app app.bench.test; proxy_pass http://$app:PORT`"},
	{name: "httpd", pkg: "apache2", version: []string{"apache2", "-v"}, write: writeFoHttpd,
		dns: "`ProxyPass / http://app.bench.test:PORT/ addressttl=1` (glibc resolver, resolv.conf → BIND)"},
	{name: "caddy", pkg: "caddy", version: []string{"caddy", "version"}, write: writeFoCaddy,
		dns: "`reverse_proxy { dynamic a app.bench.test PORT { refresh 1s; resolvers 127.0.0.1:53 } }`"},
}

// writeFoWebtier: one route to an upstream whose target is the name, the
// resolver pointed at BIND; everything else is webtier's default
// (connect_timeout 2s, race_delay 250ms, retries for requests never sent,
// rescue_grace 1s, min_ttl 1s). Logging at info: every DNS answer change
// and address state change is one line, which the report quotes when a
// request failed.
func writeFoWebtier(fx *foEnv, dir string, port, backendPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`listeners:
  - address: "127.0.0.1:%[1]d"
    name: bench-failover
routes:
  - path: /
    upstream: app
upstreams:
  app:
    targets: ["http://%[2]s:%[3]d"]
resolver:
  nameservers: [%[4]q]
drain:
  wait: 0s  # stopped between runs, with no balancer in front to wait for
access_log: {format: "off"}  # as every peer here
logging:
  level: info
  format: json
`, port, foName, backendPort, foDNSAddr)
	cfg := filepath.Join(dir, "webtier.yaml")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{fx.webtierBin, "-config", cfg}, nil, nil
}

// writeFoHAProxy: the bench's HAProxy (nbthread 2, keep-alive both sides,
// default http-reuse safe) with a resolvers section: HAProxy ignores DNS
// TTLs, so "hold valid 1s" makes it re-resolve a valid answer every second
// (default 10s) and "timeout resolve 1s" is the base period. "init-addr
// none" starts the server without an address until the first answer
// (instead of resolving through libc at start-up).
func writeFoHAProxy(_ *foEnv, dir string, port, backendPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`global
  nbthread 2
  maxconn 4096

defaults
  mode http
  option http-keep-alive
  option forwardfor
  timeout connect %[4]s
  timeout client 120s
  timeout server 60s
  timeout http-request 10s
  timeout http-keep-alive 120s

resolvers bind
  nameserver bind %[3]s
  accepted_payload_size 1232
  resolve_retries 3
  timeout resolve 1s
  timeout retry 1s
  hold valid 1s

frontend fe
  bind 127.0.0.1:%[1]d
  default_backend be

backend be
  server app %[5]s:%[2]d resolvers bind resolve-prefer ipv4 init-addr none
`, port, backendPort, foDNSAddr, durationSpec(foConnectTimeout), foName)
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"haproxy", "-f", cfg, "-db"}, nil, nil
}

// writeFoNginx: nginx re-resolves a name only when proxy_pass has a
// variable (open-source nginx 1.22 has no "server ... resolve" in upstream
// blocks); the answer is cached for valid=1s. Such an implicit upstream has
// no keep-alive pool: nginx opens a backend connection per request.
func writeFoNginx(_ *foEnv, dir string, port, backendPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
user www-data;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
worker_rlimit_nofile 8256;
events { worker_connections 4096; }
http {
  access_log off;
  %[2]s
  keepalive_timeout 120s;
  keepalive_requests 100000;
  resolver 127.0.0.1 valid=%[5]ds ipv6=off;
  resolver_timeout 2s;
  server {
    listen 127.0.0.1:%[3]d backlog=4096;
    location / {
      set $app %[6]s;
      proxy_pass http://$app:%[4]d;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_connect_timeout %[7]s;
    }
  }
}
`, dir, nginxTempPaths(dir), port, backendPort, foTTL, foName, durationSpec(foConnectTimeout))
	cfg := filepath.Join(dir, "nginx.conf")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"nginx", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log")}, nil, nil
}

// writeFoHttpd: the bench's private httpd (mpm_event, one child of 64
// threads) with ProxyPass to the name. addressttl (mod_proxy, httpd
// 2.4.59 and later) makes the worker resolve the name again (through
// glibc, i.e. resolv.conf, which has no port: hence BIND on port 53 of the
// namespace and a private resolv.conf) once the address is older than 1 s;
// without it httpd resolves once per child process.
func writeFoHttpd(fx *foEnv, dir string, port, backendPort int) ([]string, []string, error) {
	if fx.resolvConf != "" {
		return nil, nil, fmt.Errorf("glibc cannot reach the test DNS: %s", fx.resolvConf)
	}
	pass := fmt.Sprintf("http://%s:%d/ addressttl=%d connectiontimeout=%d",
		foName, backendPort, foTTL, int(foConnectTimeout/time.Second))
	return writeHttpdProxy(dir, port, httpdMPM(&env{connCap: 4096}), pass, "proxy_http")
}

// writeFoCaddy: Caddy 2.6's dynamic upstreams, source "a": the name is
// looked up again once the answer is older than refresh (default 1m), on
// the request path, through the given resolvers.
func writeFoCaddy(_ *foEnv, dir string, port, backendPort int) ([]string, []string, error) {
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	servers {
		protocols h1
		timeouts {
			idle 120s
		}
	}
}

http://127.0.0.1:%[1]d {
	bind 127.0.0.1
	reverse_proxy {
		dynamic a %[3]s %[2]d {
			refresh %[5]ds
			resolvers %[4]s
			dial_timeout 2s
		}
		transport http {
			dial_timeout %[6]s
			keepalive 90s
			keepalive_idle_conns_per_host 64
		}
	}
}
`, port, backendPort, foName, foDNSAddr, foTTL, durationSpec(foConnectTimeout))
	cfg := filepath.Join(dir, "Caddyfile")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	extra := []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir + "/data", "XDG_CONFIG_HOME=" + dir + "/config"}
	return []string{"caddy", "run", "--config", cfg, "--adapter", "caddyfile"}, extra, nil
}

// durationSpec writes d as whole seconds ("2s"), the form every peer's
// config accepts.
func durationSpec(d time.Duration) string {
	return fmt.Sprintf("%ds", int(d/time.Second))
}
