// Command bench is webtier's performance benchmark: it runs webtier,
// HAProxy, nginx, Apache httpd and Caddy side by side on loopback in front
// of one fast fixed-response nginx backend, loads each in interleaved rounds
// with wrk (and h2load for HTTP/2 over TLS), and prints Markdown tables of
// throughput, latency, CPU-seconds per 100k requests and memory, plus the
// memory cost of idle keep-alive client connections, then holds 10,000 and
// 19,000 idle connections against each freshly restarted proxy (RSS per
// connection, idle CPU; idlescale.go). webtier runs at its defaults, as a
// user following README.md runs it. The "ajp" scenario
// has columns of its own: webtier and httpd (mod_proxy_ajp) in front of a
// Tomcat 10 AJP connector, and Tomcat's HTTP connector direct. The
// "failover" scenario (failover.go) moves an upstream name's DNS record
// under load while the old backend vanishes, for every proxy that can
// follow DNS, in network and mount namespaces of its own.
//
//	go run ./e2e/bench                  # defaults: 3 rounds of 10 s runs, idle-at-scale, failover (~25 min)
//	go run ./e2e/bench -quick           # smoke run: 1 round of 3 s runs
//	go run ./e2e/bench -scenarios ajp   # the AJP leg only (~3 min)
//	go run ./e2e/bench -scenarios failover  # the DNS failover only (~4 min)
//
// See e2e/bench/README.md. It is never run by go test.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// Per-run overheads used for the runtime estimate printed up front.
const (
	runOverhead  = 1500 * time.Millisecond // tool start, /proc sampling, pause
	pauseBetween = 500 * time.Millisecond  // between two runs: TIME_WAIT and CPU settle
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// inst is one started target (a column).
type inst struct {
	t       *target
	port    int
	tlsPort int
	dir     string
	d       *daemon
	na      string // non-empty: not measured, and why
	naTLS   string // non-empty: h2 scenario not measured, and why
	version string
	nofile  string // lowest RLIMIT_NOFILE soft limit in its process tree
	// connPort, when not 0, is the backend port whose new TCP connections
	// (/proc/net/tcp) are the "backend conns" of a run (the ajp suite);
	// 0: the nginx backend's stub_status.
	connPort int
	// argv and extraEnv are its command line, kept to restart it fresh
	// (the idle-at-scale step).
	argv, extraEnv []string
}

type options struct {
	rounds    int
	load      loadOpts
	idle      int
	quick     bool
	out       string
	only      string
	scens     string
	noInstall bool
	webtier   string
	keep      bool
	// webtierUpstream is -webtier-upstream: keys added to webtier's
	// upstreams (none: webtier at its defaults).
	webtierUpstream string
	// webtierAccessLog is -webtier-access-log: webtier's access log
	// format ("off", as every peer's, unless asked for).
	webtierAccessLog string
	// scale is -idle-scale: the idle-at-scale step's connection counts
	// (none: skipped); scaleWindow the idle CPU window of each level.
	scale       []int
	scaleWindow time.Duration
	// cmdline is how the benchmark was started, for the summary table.
	cmdline string
}

func main() {
	if isFailoverChild() { // re-executed in namespaces of its own by runFailover
		os.Exit(failoverChildMain())
	}
	var o options
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds; tables show the median over rounds")
	flag.DurationVar(&o.load.duration, "duration", 10*time.Second, "duration of one load run (whole seconds)")
	flag.IntVar(&o.load.conns, "c", 50, "client connections per load run (wrk -c, h2load -c)")
	flag.IntVar(&o.load.threads, "t", 2, "load generator threads (wrk -t, h2load -t)")
	flag.IntVar(&o.load.h2Streams, "h2-streams", 5, "concurrent streams per HTTP/2 connection (h2load -m); h2load -c is -c divided by this")
	flag.IntVar(&o.idle, "idle", 2000, "idle keep-alive connections for the memory-per-connection test (0: skip)")
	flag.BoolVar(&o.quick, "quick", false, "smoke run: 1 round, 3 s runs, 200 idle connections")
	flag.StringVar(&o.out, "out", "", "also write the report (Markdown) to this file")
	flag.StringVar(&o.only, "proxies", "", "comma-separated columns to run (default all: "+targetNames()+")")
	flag.StringVar(&o.scens, "scenarios", "", "comma-separated scenarios to run (default all: "+scenarioKeys()+")")
	flag.BoolVar(&o.noInstall, "no-install", false, "do not apt-get install missing peers")
	flag.StringVar(&o.webtier, "webtier", "", "use this webtier binary instead of building ./cmd/webtier")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (configs, logs) for inspection")
	flag.StringVar(&o.webtierUpstream, "webtier-upstream", "", `extra keys for webtier's upstreams, "key: value" separated by ";" (default none: webtier at its defaults), e.g. "max_idle_per_address: 1024"`)
	flag.StringVar(&o.webtierAccessLog, "webtier-access-log", "off", `webtier's access_log format: off (default, as every peer here has none), combined, common or json; lines go to a file in the temp dir, to measure what the log costs`)
	scale := flag.String("idle-scale", "10000,19000", "idle-at-scale step: connection counts held idle against each freshly started proxy (\"\" or 0: skip; -quick skips it unless given)")
	flag.DurationVar(&o.scaleWindow, "idle-cpu-window", 10*time.Second, "idle-at-scale step: how long idle CPU is measured with 1 and with N connections")
	flag.BoolVar(&oneSession, "one-session", false, "start every peer and load tool in the benchmark's own session instead of one session each (as systemd starts services); see childAttr")
	flag.Parse()
	if o.quick { // flags given explicitly win over -quick
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["rounds"] {
			o.rounds = 1
		}
		if !set["duration"] {
			o.load.duration = 3 * time.Second
		}
		if !set["idle"] {
			o.idle = 200
		}
		if !set["idle-scale"] {
			*scale = ""
		}
	}
	var err error
	if o.scale, err = parseScale(*scale); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	o.cmdline = commandLine(os.Args[1:])
	if o.rounds < 1 || o.load.duration < time.Second || o.load.conns < o.load.threads || o.load.threads < 1 || o.idle < 0 || o.load.h2Streams < 1 || o.scaleWindow < time.Second {
		fmt.Fprintln(os.Stderr, "bench: need -rounds >= 1, -duration >= 1s, -t >= 1, -c >= -t, -idle >= 0, -h2-streams >= 1, -idle-cpu-window >= 1s")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = run(ctx, o)
	stop()
	if err != nil {
		logf("error: %v", err)
		if ctx.Err() != nil {
			os.Exit(130)
		}
		os.Exit(1)
	}
}

func targetNames() string {
	var s []string
	for _, t := range targets {
		s = append(s, t.name)
	}
	return strings.Join(s, ",")
}

func scenarioKeys() string {
	var s []string
	for _, sc := range scenarios {
		s = append(s, sc.key)
	}
	return strings.Join(s, ",")
}

func selected(list, name string) bool {
	if list == "" {
		return true
	}
	for _, s := range strings.Split(list, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

func run(ctx context.Context, o options) (err error) {
	start := time.Now()

	// Scenarios, and the suites (backends) they need.
	var scs []scenario
	suites := map[string]bool{}
	needH2, failover := false, false
	for _, sc := range scenarios {
		if selected(o.scens, sc.key) {
			if sc.suite == failoverSuite {
				failover = true // its own peers and rounds: runFailover
				continue
			}
			scs = append(scs, sc)
			suites[sc.suite] = true
			needH2 = needH2 || sc.tool == "h2load"
		}
	}
	if len(scs) == 0 && !failover {
		return fmt.Errorf("-scenarios %q selects nothing (known: %s)", o.scens, scenarioKeys())
	}
	// Columns: the targets of those suites; the suites' backends always.
	var ts []*target
	for _, t := range targets {
		if !suites[t.suite] {
			continue
		}
		if !t.direct && !selected(o.only, t.name) && (t.proxy == "" || !selected(o.only, t.proxy)) {
			continue
		}
		ts = append(ts, t)
	}
	var pkgs []string
	if len(scs) > 0 {
		pkgs = append(pkgs, "wrk")
	}
	if failover {
		pkgs = append(pkgs, failoverPackages(o.only)...)
	}
	if needH2 {
		pkgs = append(pkgs, "nghttp2-client")
	}
	for _, t := range ts {
		if t.pkg != "" && !slices.Contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	if !o.noInstall {
		if err := installPeers(ctx, pkgs); err != nil {
			return err
		}
	}
	if len(scs) > 0 && !installed("wrk") {
		return fmt.Errorf("wrk is required (apt-get install wrk)")
	}
	for _, t := range ts { // the load generator and the backends
		if t.direct && !installed(t.pkg) {
			return fmt.Errorf("%s is required for scenarios %q (apt-get install %s)", t.pkg, t.suite, t.pkg)
		}
		if t.name == "tomcat" && !installedTomcat() {
			return fmt.Errorf("%s or java is missing (apt-get install tomcat10)", peer.TomcatCatalinaSh)
		}
	}
	if needH2 && !installed("nghttp2-client") {
		scs = slices.DeleteFunc(scs, func(sc scenario) bool {
			if sc.tool == "h2load" {
				logf("h2load (nghttp2-client) is missing: skipping scenario %q", sc.key)
				return true
			}
			return false
		})
	}

	held := o.idle // the most client connections a proxy must hold at once
	if len(o.scale) > 0 {
		held = max(held, o.scale[len(o.scale)-1])
	}
	e := &env{connCap: max(4096, held+1024)}
	if e.webtierUpstream, err = parseUpstreamKeys(o.webtierUpstream); err != nil {
		return err
	}
	switch o.webtierAccessLog {
	case "off", "combined", "common", "json":
		e.webtierAccessLog = o.webtierAccessLog
	default:
		return fmt.Errorf("-webtier-access-log %q: want off, combined, common or json", o.webtierAccessLog)
	}
	lim := raiseNofile(uint64(2*e.connCap + 1024))
	e.nofile = lim
	if lim < uint64(o.idle+256) {
		logf("RLIMIT_NOFILE is %d: lowering -idle from %d to %d", lim, o.idle, lim-256)
		o.idle = int(lim) - 256
	}
	for _, n := range o.scale {
		if why := scaleFdLimit(n, lim); why != "" {
			logf("idle-at-scale, %d connections: %s", n, why)
		}
	}

	dir, err := os.MkdirTemp("", "webtier-bench-")
	if err != nil {
		return err
	}
	// Workers of nginx and httpd run as www-data and read files under dir.
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	defer func() {
		stopAll()
		if o.keep {
			logf("kept %s", dir)
		} else {
			os.RemoveAll(dir)
		}
	}()

	var insts []*inst
	for _, t := range ts {
		in := &inst{t: t, dir: filepath.Join(dir, t.name)}
		if t.pkg != "" && !installed(t.pkg) {
			in.na = "n/a: " + t.pkg + " not installed"
		}
		if !t.tls {
			in.naTLS = t.noTLS
		}
		insts = append(insts, in)
	}
	ports, err := freePorts(2*len(insts) + 1)
	if err != nil {
		return err
	}
	e.ajpPort = ports[len(ports)-1]
	backends := map[string]*inst{} // suite -> its direct column
	for i, in := range insts {
		in.port, in.tlsPort = ports[2*i], ports[2*i+1]
		if err := os.MkdirAll(in.dir, 0o755); err != nil {
			return err
		}
		if in.t.direct {
			backends[in.t.suite] = in
		}
		// New AJP connections to Tomcat are counted in /proc/net/tcp. Not
		// for the direct column: those are wrk's -c connections, and wrk
		// resets most of them at exit (unread responses), which leaves
		// no trace to count.
		if in.t.suite == "ajp" && !in.t.direct {
			in.connPort = e.ajpPort
		}
	}
	if b := backends[""]; b != nil {
		e.backendPort = b.port
	}
	if err := writeCert(e, dir); err != nil {
		return err
	}
	if o.webtier != "" {
		e.webtierBin, err = filepath.Abs(o.webtier)
	} else {
		logf("building webtier")
		e.webtierBin, err = buildWebtier(ctx, dir)
	}
	if err != nil {
		return err
	}

	// Start each suite's backend, then its proxies (targets order).
	for _, in := range insts {
		if in.na != "" {
			continue
		}
		if in.argv, in.extraEnv, err = in.t.write(e, in.dir, in.port, in.tlsPort); err != nil {
			return err
		}
		if in.d, err = startDaemon(in.t.name, in.dir, in.extraEnv, in.argv...); err != nil {
			if in.t.direct {
				return err
			}
			in.na = "n/a: " + err.Error()
			continue
		}
		if err := in.waitReady(ctx, e); err != nil {
			if in.t.direct || ctx.Err() != nil {
				return err
			}
			logf("%s did not start: %v", in.t.name, err)
			in.na = "n/a: did not start or wrong responses (see log with -keep)"
			continue
		}
		if in.naTLS == "" {
			if err := checkHTTP(fmt.Sprintf("https://127.0.0.1:%d", in.tlsPort), true, in.t.bodiesOrDefault()); err != nil {
				logf("%s: HTTP/2 over TLS check failed: %v", in.t.name, err)
				in.naTLS = "n/a: HTTP/2+TLS check failed"
			}
		}
		in.nofile = treeNofile(in.d.pid())
		logf("%s ready on 127.0.0.1:%d (pid %d, max open files %s)", in.t.name, in.port, in.d.pid(), in.nofile)
	}
	for _, in := range insts {
		if in.t.versionFn != nil {
			in.version = in.t.versionFn()
			continue
		}
		argv := append([]string(nil), in.t.version...)
		if in.t.bin == "webtier" {
			argv[0] = e.webtierBin
		}
		in.version = versionOf(argv)
	}

	// Header and estimate.
	nRuns, nIdle := 0, 0
	var warmTotal time.Duration
	for _, in := range insts {
		if in.na != "" {
			continue
		}
		for _, sc := range scs {
			if sc.suite == in.t.suite && (!sc.tls || in.naTLS == "") {
				nRuns++
			}
		}
		if in.t.suite == "" {
			nIdle++
		}
		warmTotal += warmDuration(in.t.suite, o.load.duration) + runOverhead
	}
	perRun := o.load.duration + runOverhead
	est := time.Duration(o.rounds*nRuns)*perRun + warmTotal
	if o.idle > 0 {
		est += time.Duration(nIdle) * (3*time.Second + time.Duration(o.idle)*time.Millisecond)
	}
	if len(o.scale) > 0 && nIdle > 1 {
		est += time.Duration(nIdle-1) * scaleEstimate(o.scale, o.scaleWindow)
	}
	if failover {
		est += failoverEstimate(o.rounds, len(failoverProxies(o.only)))
	}
	rep := &report{opts: o, scs: scs, insts: insts, machine: machine(), date: time.Now().UTC().Format("2006-01-02 15:04 MST"),
		wrkVersion: versionOf([]string{"wrk", "-v"}), h2Version: versionOf([]string{"h2load", "--version"}),
		results: map[string]map[string][]runRec{}}
	fmt.Print(rep.header())
	logf("%d rounds × %d runs of %s (+ warm-up, idle test of %d connections): estimated remaining runtime %s (set up took %s)",
		o.rounds, nRuns, o.load.duration, o.idle, est.Round(time.Second), time.Since(start).Round(time.Second))

	// Warm-up (not recorded): pools, caches, page faults, and Tomcat's JIT.
	for _, in := range insts {
		if in.na != "" {
			continue
		}
		sc := warmScenario(in.t.suite)
		warm := loadOpts{duration: warmDuration(in.t.suite, o.load.duration), conns: o.load.conns, threads: o.load.threads, h2Streams: o.load.h2Streams}
		res, err := runLoad(ctx, sc, fmt.Sprintf("http://127.0.0.1:%d%s", in.port, sc.path), warm, dir)
		if err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			logf("warm-up %s: %v", in.t.name, err)
		} else if in.t.suite != "" {
			logf("warm-up %s: %.0f req/s for %s%s", in.t.name, res.rps, warm.duration, errSuffix(res))
		}
	}

	// Idle keep-alive connections (fresh processes, before the load rounds;
	// the nginx suite only).
	if o.idle > 0 && nIdle > 0 {
		rep.idle = map[string]idleResult{}
		for _, in := range insts {
			if in.na != "" || in.t.suite != "" {
				continue
			}
			r := measureIdle(ctx, in.d.pid(), fmt.Sprintf("127.0.0.1:%d", in.port), "/100", o.idle)
			if ctx.Err() != nil {
				return errInterrupted
			}
			rep.idle[in.t.name] = r
			if r.err != nil {
				logf("idle %s: %v", in.t.name, r.err)
			} else {
				logf("idle %s: %d held (%d closed by server), RSS %+.1f KiB/conn, PSS %+.1f KiB/conn",
					in.t.name, r.held, r.closedByServer, r.rssPerConnKiB(), r.pssPerConnKiB())
			}
		}
	}

	// Interleaved rounds: for each round, each scenario, each of its columns.
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range scs {
			for _, in := range insts {
				if in.t.suite != sc.suite || in.na != "" || (sc.tls && in.naTLS != "") {
					continue
				}
				if in.d.exited() {
					logf("%s exited; log:\n%s", in.t.name, in.d.logTail())
					in.na = "n/a: exited during the benchmark"
					continue
				}
				rec, err := measureRun(ctx, sc, in, backends[sc.suite], o.load, dir)
				if ctx.Err() != nil {
					return errInterrupted
				}
				if err != nil {
					logf("round %d %s %s: %v", round, sc.key, in.t.name, err)
					rec = runRec{failed: err.Error()}
				} else {
					be := ""
					if sc.backendCPU != "" {
						be = fmt.Sprintf("  %s CPU %.2f s/100k", sc.backendCPU, rec.backendCPUPer100k)
					}
					conns := fmt.Sprint(rec.newConns)
					if rec.newConns < 0 {
						conns = "n/a"
					}
					logf("round %d/%d %-6s %-8s %9.0f req/s  p50 %s  p99 %s  CPU %.2f s/100k%s  RSS %.1f MiB  backend conns %s%s",
						round, o.rounds, sc.key, in.t.name, rec.res.rps, fmtDur(rec.res.p50), fmtDur(rec.res.p99),
						rec.cpuPer100k, be, float64(rec.rssKiB)/1024, conns, errSuffix(rec.res))
				}
				rep.add(sc.key, in.t.name, rec)
				time.Sleep(pauseBetween)
			}
		}
	}
	if len(o.scale) > 0 && nIdle > 0 { // the HTTP suite ran
		if err := runScale(ctx, e, o, insts, rep, lim); err != nil {
			return err
		}
	}
	if failover {
		rep.failover = runFailover(ctx, o, e.webtierBin, dir)
		if ctx.Err() != nil {
			return errInterrupted
		}
	}
	rep.elapsed = time.Since(start)

	// webtier logs at warn: any line is worth reading.
	for _, in := range insts {
		if in.t.isWebtier() && in.d != nil {
			n, first := logLines(in.d.logPath, 10)
			rep.webtierLogs = append(rep.webtierLogs, webtierLog{name: in.t.name, lines: n, first: first})
			if n > 0 {
				logf("%s logged %d line(s) (level warn and above); first %d:\n%s", in.t.name, n, len(first), strings.Join(first, "\n"))
			}
		}
	}

	md := rep.markdown()
	fmt.Print(md)
	if o.out != "" {
		if err := os.WriteFile(o.out, []byte(rep.header()+md), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	return nil
}

// bodiesOrDefault are the paths checked at start-up and their sizes.
func (t *target) bodiesOrDefault() map[string]int {
	if t.bodies == nil {
		return backendBodies
	}
	return t.bodies
}

// waitReady waits until the started target answers its bodies (and its
// extra readiness check passes).
func (in *inst) waitReady(ctx context.Context, e *env) error {
	timeout := in.t.readyTimeout
	if timeout == 0 {
		timeout = 20 * time.Second
	}
	var ready func() error
	if in.t.ready != nil {
		ready = func() error { return in.t.ready(e) }
	}
	return waitReady(ctx, in.d, fmt.Sprintf("http://127.0.0.1:%d", in.port), in.t.bodiesOrDefault(), timeout, ready)
}

// restart stops the target by PID and starts it again with the same
// command line: a fresh process, as after a deploy.
func (in *inst) restart(ctx context.Context, e *env) error {
	in.d.stop()
	d, err := startDaemon(in.t.name, in.dir, in.extraEnv, in.argv...)
	if err != nil {
		return err
	}
	in.d = d
	return in.waitReady(ctx, e)
}

// runScale runs the idle-at-scale step against every proxy of the HTTP
// suite in turn, each restarted first.
func runScale(ctx context.Context, e *env, o options, insts []*inst, rep *report, lim uint64) error {
	rep.scale = map[string]scaleResult{}
	for _, in := range insts {
		if in.na != "" || in.t.suite != "" || in.t.direct {
			continue
		}
		var r scaleResult
		if err := in.restart(ctx, e); err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			r.err = fmt.Errorf("restart: %w", err)
			in.na = "n/a: did not restart for the idle-at-scale step"
		} else {
			r = measureScale(ctx, in.d.pid(), fmt.Sprintf("127.0.0.1:%d", in.port), o.scale, o.scaleWindow, lim)
		}
		if ctx.Err() != nil {
			return errInterrupted
		}
		rep.scale[in.t.name] = r
		if r.err != nil {
			logf("idle-at-scale %s: %v", in.t.name, r.err)
			continue
		}
		logf("idle-at-scale %s: fresh RSS %.1f MiB, idle CPU with 1 connection %.2f ms/s", in.t.name, float64(r.freshRSS)/1024, r.oneCPU)
		for _, lv := range r.levels {
			switch {
			case lv.skipped != "":
				logf("idle-at-scale %s %d: %s", in.t.name, lv.want, lv.skipped)
			case lv.err != nil:
				logf("idle-at-scale %s %d: %v", in.t.name, lv.want, lv.err)
			default:
				logf("idle-at-scale %s %d: %d held (%d closed by server), RSS %+.2f KiB/conn, PSS %+.2f KiB/conn, idle CPU %.2f ms/s",
					in.t.name, lv.want, lv.held, lv.closedByServer, lv.rssPerConnKiB, lv.pssPerConnKiB, lv.cpuMsPerSec)
			}
		}
	}
	return nil
}

// scaleEstimate is the idle-at-scale step's time per proxy: restart,
// settles, one CPU window per count plus one, and about 2,000 connections
// opened per second.
func scaleEstimate(levels []int, window time.Duration) time.Duration {
	n := levels[len(levels)-1]
	return 5*time.Second + time.Duration(len(levels)+1)*(window+scaleSettle) + time.Duration(n)*time.Second/2000
}

// warmScenario is the load of a suite's warm-up: its first scenario.
func warmScenario(suite string) scenario {
	for _, sc := range scenarios {
		if sc.suite == suite {
			return sc
		}
	}
	return scenarios[0]
}

// warmDuration is the warm-up run per column: 2 s for the nginx and
// static suites (pools, page faults); for Tomcat's suite 5 s per column (2 s with -quick
// and shorter runs), so that its JIT (C2) has compiled the hot paths of
// both connectors before measuring: 15 s of load in all.
func warmDuration(suite string, d time.Duration) time.Duration {
	if suite == "" || suite == "static" {
		return min(d, 2*time.Second)
	}
	return max(2*time.Second, min(d, 5*time.Second))
}

// logLines counts the non-empty lines of a log and returns the first n.
func logLines(path string, n int) (int, []string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil
	}
	count := 0
	var first []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" {
			continue
		}
		count++
		if len(first) < n {
			first = append(first, l)
		}
	}
	return count, first
}

func errSuffix(r loadResult) string {
	if r.errors == 0 {
		return ""
	}
	return fmt.Sprintf("  ERRORS: %d (%s)", r.errors, r.errText)
}

// runRec is one measured run.
type runRec struct {
	res        loadResult
	cpuSec     float64 // CPU-seconds of the target's process tree during the run
	cpuPer100k float64
	// backendCPUPer100k is the backend's CPU per 100k requests (scenarios
	// with backendCPU set; for the direct column its own).
	backendCPUPer100k float64
	rssKiB            uint64 // after the run
	pssKiB            uint64
	newConns          int64 // connections the backend accepted during the run; -1: not counted
	failed            string
}

// measureRun samples the target's process tree (and the backend's, for
// scenarios that report it), runs the load, samples again.
func measureRun(ctx context.Context, sc scenario, in, backend *inst, o loadOpts, dir string) (runRec, error) {
	var rec runRec
	scheme, port := "http", in.port
	if sc.tls {
		scheme, port = "https", in.tlsPort
	}
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, sc.path)
	conns := func() (int64, connSample, error) {
		if in.t.suite != "" && in.connPort == 0 {
			return 0, connSample{}, nil // not counted
		}
		if in.connPort != 0 {
			cs, err := sampleConns(in.connPort)
			return 0, cs, err
		}
		n, err := backendAccepts(backend.port)
		return n, connSample{}, err
	}
	withBackend := sc.backendCPU != "" && backend != nil && backend != in
	acc0, peers0, err := conns()
	if err != nil {
		return rec, err
	}
	var be0, be1 treeSample
	if withBackend {
		if be0, err = sampleTree(backend.d.pid()); err != nil {
			return rec, err
		}
	}
	before, err := sampleTree(in.d.pid())
	if err != nil {
		return rec, err
	}
	res, err := runLoad(ctx, sc, url, o, dir)
	if err != nil {
		return rec, err
	}
	after, err := sampleTree(in.d.pid())
	if err != nil {
		return rec, err
	}
	if withBackend {
		if be1, err = sampleTree(backend.d.pid()); err != nil {
			return rec, err
		}
	}
	acc1, peers1, err := conns()
	if err != nil {
		return rec, err
	}
	switch {
	case in.connPort != 0:
		rec.newConns = newConns(peers0, peers1)
	case in.t.suite != "":
		rec.newConns = -1 // not counted
	default:
		// The status request of acc1 was itself one accepted connection.
		rec.newConns = acc1 - acc0 - 1
	}
	rec.res = res
	rec.cpuSec = float64(after.cpuTicks-before.cpuTicks) / clockTicks
	if res.requests > 0 {
		rec.cpuPer100k = rec.cpuSec / float64(res.requests) * 1e5
		rec.backendCPUPer100k = rec.cpuPer100k
		if withBackend {
			rec.backendCPUPer100k = float64(be1.cpuTicks-be0.cpuTicks) / clockTicks / float64(res.requests) * 1e5
		}
	}
	rec.rssKiB, rec.pssKiB = after.rssKiB, after.pssKiB
	return rec, nil
}
