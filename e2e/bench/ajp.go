package main

// The "ajp" suite: a private Tomcat 10 with an HTTP connector (the ceiling,
// "direct") and an AJP connector with a secret, and webtier and httpd
// (mod_proxy_ajp) in front of the AJP connector. The CATALINA_BASE is
// e2e/peer's (peer.TomcatBase, as the e2e tests' Tomcat, shared/PEERS.md
// section 1), with benchmark JVM flags instead of the fast-start ones,
// connector settings for load, and a static file instead of the echo JSP;
// the benchmark starts and stops it itself, as its other peers.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

const (
	// ajpSecret is the AJP connector's secret (secretRequired="true"),
	// given to webtier (ajp.secret) and httpd (ProxyPass ... secret=).
	ajpSecret = "bench-ajp-s3cret"
	// tomcatReadyTimeout bounds Tomcat's start (~3-5 s alone; the machine
	// may be busy).
	tomcatReadyTimeout = 90 * time.Second
	// tomcatJavaOpts are the JVM flags. Unlike the e2e tests' fast-start
	// flags (-XX:TieredStopAtLevel=1: C1 only), the full tiered JIT (C2)
	// is left on and warmed up before measuring. Fixed 256 MiB heap (no
	// resizing during runs) with the throughput (parallel) collector, whose
	// threads default to one per core.
	tomcatJavaOpts = "-Djava.awt.headless=true -Djava.security.egd=file:/dev/./urandom " +
		"-Xms256m -Xmx256m -XX:+UseParallelGC -Xss512k"
)

// tomcatBodies is the static file every column of the suite serves.
var tomcatBodies = map[string]int{"/100.txt": 100}

// writeTomcat writes a private CATALINA_BASE under dir (port: the HTTP
// connector; e.ajpPort: the AJP one) and returns its command line
// (peer.TomcatBase.Command: catalina.sh run, which execs java in the
// foreground, so the PID is the JVM's; the caller's JAVA_OPTS and
// CATALINA_OPTS are dropped, ours are in bin/setenv.sh).
//
// server.xml: no shutdown port (stopped with SIGTERM), no access log
// valve. HTTP connector: maxKeepAliveRequests="-1" (the default 100 would
// make wrk reconnect every 100 requests, unlike every other column) and a
// keep-alive timeout above the pause between runs. AJP connector as in
// PEERS.md; AJP connections have no request limit and no idle timeout by
// default (connectionTimeout -1). Both connectors keep Tomcat's default
// NIO thread pool (maxThreads 200) and packetSize 8192 (webtier's and
// httpd's default too). web.xml maps only the default (static file)
// servlet, which is all the suite uses.
func writeTomcat(e *env, dir string, port, _ int) ([]string, []string, error) {
	base := peer.TomcatBase{
		Dir: dir, IP: "127.0.0.1", HTTPPort: port, AJPPort: e.ajpPort, Secret: ajpSecret,
		HTTPAttrs: `keepAliveTimeout="120000" maxKeepAliveRequests="-1" acceptCount="4096"`,
		AJPAttrs:  `acceptCount="4096"`,
		JavaOpts:  tomcatJavaOpts,
		Files:     map[string]string{"/100.txt": strings.Repeat("x", 99) + "\n"},
	}
	if err := base.Write(); err != nil {
		return nil, nil, err
	}
	return base.Command(), nil, nil
}

// tomcatAJPReady: the HTTP connector answering is not enough, a
// misconfigured AJP connector keeps its port bound and never answers
// (PEERS.md); CPING/CPONG shows it works.
func tomcatAJPReady(e *env) error {
	return peer.AJPPing(fmt.Sprintf("127.0.0.1:%d", e.ajpPort), 2*time.Second)
}

// tomcatVersion is Tomcat's and the JVM's version for the versions table.
func tomcatVersion() string {
	tc := versionOf([]string{"java", "-cp", peer.TomcatHome + "/lib/catalina.jar", "org.apache.catalina.util.ServerInfo"})
	tc = strings.TrimPrefix(tc, "Server version: ")
	j := versionOf([]string{"java", "-version"})
	return fmt.Sprintf("%s; %s; JAVA_OPTS %s", tc, j, tomcatJavaOpts)
}

// writeWebtierAJP: as writeWebtier (one listener, one route, webtier's
// defaults), with one ajp:// target and the connector's secret. Everything
// else in the ajp mapping is the default: packet_size 8192 (= Tomcat's),
// cping_idle 10s. -webtier-upstream keys apply here too.
func writeWebtierAJP(e *env, dir string, port, _ int) ([]string, []string, error) {
	conf := fmt.Sprintf(`listeners:
  - address: "127.0.0.1:%d"
routes:
  - path: /
    upstream: tomcat
upstreams:
  tomcat:
    targets: ["ajp://127.0.0.1:%d"]
    ajp:
      secret: %q
%sdrain:
  wait: 0s  # stopped between runs, with no balancer in front to wait for
%slogging:
  level: warn
  format: json
`, port, e.ajpPort, ajpSecret, upstreamExtra(e.webtierUpstream), accessLogSection(e.webtierAccessLog, dir))
	cfg := filepath.Join(dir, "webtier.yaml")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{e.webtierBin, "-config", cfg}, nil, nil
}

// writeHttpdAJP: the same private httpd as writeHttpd (mpm_event, one child
// of 64 threads, same keep-alive settings), plain HTTP only, with
// `ProxyPass / ajp://127.0.0.1:PORT/ secret=...`. mod_proxy_ajp keeps a
// pool of reusable AJP connections per child process (at most
// ThreadsPerChild, i.e. 64) by default.
func writeHttpdAJP(e *env, dir string, port, _ int) ([]string, []string, error) {
	return writeHttpdProxy(dir, port, httpdMPM(e), fmt.Sprintf("ajp://127.0.0.1:%d/ secret=%s", e.ajpPort, ajpSecret), "proxy_ajp")
}

// writeHttpdProxy writes a minimal httpd config that listens on port and
// proxies everything with `ProxyPass / <pass>`, loading mpm_event,
// authz_core, proxy and the extra modules, and returns its command line.
func writeHttpdProxy(dir string, port int, mpm, pass string, modules ...string) ([]string, []string, error) {
	conf := httpdHead(dir, httpdLoadModules(append([]string{"mpm_event", "authz_core", "proxy"}, modules...)...)) + fmt.Sprintf(`Listen 127.0.0.1:%[1]d

%[2]s
<Location />
  Require all granted
</Location>

ProxyPass / %[3]s
`, port, mpm, pass)
	cfg := filepath.Join(dir, "httpd.conf")
	if err := writeFile(cfg, conf); err != nil {
		return nil, nil, err
	}
	return []string{"apache2", "-f", cfg, "-DFOREGROUND"}, nil, nil
}

// --- connections to a backend port, from /proc/net/tcp{,6} ------------------
//
// Tomcat has no counter of accepted connections (nginx's stub_status is
// what the other tables use), so connSample reads the kernel's socket
// tables, which cover every process on the host (a JVM's sockets are IPv6
// ones, in tcp6). A connection opened during a run is either still open at
// its end (a server-side socket whose inode was not there before) or was
// closed meanwhile, leaving one socket in TIME_WAIT (on the side that closed
// first) with more than 60 s minus the run's length left. Connections that
// were open before and closed during the run also leave a TIME_WAIT socket:
// they are subtracted. Connections ended by a reset leave no TIME_WAIT.

// tcpTimeWaitTicks is TCP_TIMEWAIT_LEN (60 s) in USER_HZ, the unit of the
// timer field of /proc/net/tcp.
const tcpTimeWaitTicks = 60 * clockTicks

// connSample is one reading of the connections to one local port.
type connSample struct {
	at   time.Time
	open map[string]bool // inodes of server-side sockets, neither LISTEN nor TIME_WAIT
	tw   []int64         // ticks left of the TIME_WAIT sockets (either side)
}

func sampleConns(port int) (connSample, error) {
	cs := connSample{at: time.Now(), open: map[string]bool{}}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return cs, err
		}
		cs.add(string(b), port)
	}
	return cs, nil
}

// add parses one /proc/net/tcp{,6} table (header line first).
func (cs *connSample) add(table string, port int) {
	p := fmt.Sprintf(":%04X", port)
	for i, line := range strings.Split(table, "\n") {
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(line)
		if i == 0 || len(f) < 10 {
			continue
		}
		local, remote, state := f[1], f[2], f[3]
		serverSide := strings.HasSuffix(local, p)
		if !serverSide && !strings.HasSuffix(remote, p) {
			continue
		}
		switch state {
		case "0A": // LISTEN
		case "06": // TIME_WAIT
			_, when, _ := strings.Cut(f[5], ":")
			if left, err := strconv.ParseInt(when, 16, 64); err == nil {
				cs.tw = append(cs.tw, left)
			}
		default:
			if serverSide {
				cs.open[f[9]] = true
			}
		}
	}
}

// newConns is the number of connections opened between two samples.
func newConns(before, after connSample) int64 {
	var n int64
	for ino := range after.open {
		if !before.open[ino] {
			n++
		}
	}
	for ino := range before.open {
		if !after.open[ino] {
			n-- // closed during the run: its TIME_WAIT is counted below
		}
	}
	elapsed := int64(after.at.Sub(before.at).Seconds()*clockTicks) + 1
	for _, left := range after.tw {
		if left > tcpTimeWaitTicks-elapsed {
			n++
		}
	}
	return max(n, 0)
}

// installedTomcat reports whether Tomcat and a JVM are there.
func installedTomcat() bool { return len(peer.InstalledTomcat()) == 0 }
