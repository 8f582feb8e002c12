// Command bench is webtier's performance benchmark: it runs webtier,
// HAProxy, nginx, Apache httpd and Caddy side by side on loopback in front
// of one fast fixed-response nginx backend, loads each in interleaved rounds
// with wrk (and h2load for HTTP/2 over TLS), and prints Markdown tables of
// throughput, latency, CPU-seconds per 100k requests and memory, plus the
// memory cost of idle keep-alive client connections.
//
//	go run ./e2e/bench            # defaults: 3 rounds of 10 s runs (~14 min)
//	go run ./e2e/bench -quick     # smoke run: 1 round of 3 s runs
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
	"strings"
	"syscall"
	"time"
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
}

func main() {
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
	}
	if o.rounds < 1 || o.load.duration < time.Second || o.load.conns < o.load.threads || o.load.threads < 1 || o.idle < 0 || o.load.h2Streams < 1 {
		fmt.Fprintln(os.Stderr, "bench: need -rounds >= 1, -duration >= 1s, -t >= 1, -c >= -t, -idle >= 0, -h2-streams >= 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
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
	if !o.noInstall {
		if err := installPeers(ctx); err != nil {
			return err
		}
	}
	for _, pkg := range []string{"wrk", "nginx"} { // the load generator and the backend
		if !installed(pkg) {
			return fmt.Errorf("%s is required (apt-get install %s)", pkg, pkg)
		}
	}
	var scs []scenario
	for _, sc := range scenarios {
		if !selected(o.scens, sc.key) {
			continue
		}
		if sc.tool == "h2load" && !installed("nghttp2-client") {
			logf("h2load (nghttp2-client) is missing: skipping scenario %q", sc.key)
			continue
		}
		scs = append(scs, sc)
	}

	e := &env{connCap: max(4096, o.idle+1024)}
	if lim := raiseNofile(uint64(2*e.connCap + 1024)); lim < uint64(o.idle+256) {
		logf("RLIMIT_NOFILE is %d: lowering -idle from %d to %d", lim, o.idle, lim-256)
		o.idle = int(lim) - 256
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

	// Columns.
	var insts []*inst
	for _, t := range targets {
		if !selected(o.only, t.name) && t.name != "direct" { // the backend always runs and is always measured
			continue
		}
		in := &inst{t: t, dir: filepath.Join(dir, t.name)}
		if t.pkg != "" && !installed(t.pkg) {
			in.na = "n/a: " + t.pkg + " not installed"
		}
		if !t.tls {
			in.naTLS = t.noTLS
		}
		insts = append(insts, in)
	}
	ports, err := freePorts(2 * len(insts))
	if err != nil {
		return err
	}
	for i, in := range insts {
		in.port, in.tlsPort = ports[2*i], ports[2*i+1]
		if err := os.MkdirAll(in.dir, 0o755); err != nil {
			return err
		}
	}
	backend := insts[0] // "direct" is first in targets
	e.backendPort = backend.port
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

	// Start the backend, then every proxy.
	for _, in := range insts {
		if in.na != "" {
			continue
		}
		write := in.t.write
		if in.t.name == "direct" {
			write = writeBackend
		}
		argv, extra, err := write(e, in.dir, in.port, in.tlsPort)
		if err != nil {
			return err
		}
		if in.d, err = startDaemon(in.t.name, in.dir, extra, argv...); err != nil {
			if in == backend {
				return err
			}
			in.na = "n/a: " + err.Error()
			continue
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", in.port)
		if err := waitReady(ctx, in.d, base); err != nil {
			if in == backend || ctx.Err() != nil {
				return err
			}
			logf("%s did not start: %v", in.t.name, err)
			in.na = "n/a: did not start (see log with -keep)"
			continue
		}
		if err := checkHTTP(base, false); err != nil {
			logf("%s: %v", in.t.name, err)
			in.na = "n/a: wrong responses"
			continue
		}
		if in.naTLS == "" {
			if err := checkHTTP(fmt.Sprintf("https://127.0.0.1:%d", in.tlsPort), true); err != nil {
				logf("%s: HTTP/2 over TLS check failed: %v", in.t.name, err)
				in.naTLS = "n/a: HTTP/2+TLS check failed"
			}
		}
		in.nofile = treeNofile(in.d.pid())
		logf("%s ready on 127.0.0.1:%d (pid %d, max open files %s)", in.t.name, in.port, in.d.pid(), in.nofile)
	}
	for _, in := range insts {
		argv := append([]string(nil), in.t.version...)
		if in.t.name == "webtier" {
			argv[0] = e.webtierBin
		}
		in.version = versionOf(argv)
	}

	// Header and estimate.
	nRuns := 0
	for _, sc := range scs {
		for _, in := range insts {
			if in.na == "" && (!sc.tls || in.naTLS == "") {
				nRuns++
			}
		}
	}
	perRun := o.load.duration + runOverhead
	est := time.Duration(o.rounds*nRuns)*perRun + time.Duration(len(insts))*(3*time.Second+time.Duration(o.idle)*time.Millisecond) +
		time.Duration(len(insts))*3*time.Second
	rep := &report{opts: o, scs: scs, insts: insts, machine: machine(), date: time.Now().UTC().Format("2006-01-02 15:04 MST"),
		wrkVersion: versionOf([]string{"wrk", "-v"}), h2Version: versionOf([]string{"h2load", "--version"}),
		results: map[string]map[string][]runRec{}}
	fmt.Print(rep.header())
	logf("%d rounds × %d runs of %s (+ idle test, %d connections): estimated remaining runtime %s (set up took %s)",
		o.rounds, nRuns, o.load.duration, o.idle, est.Round(time.Second), time.Since(start).Round(time.Second))

	// Warm-up (not recorded): pools, caches, page faults.
	warm := loadOpts{duration: min(o.load.duration, 2*time.Second), conns: o.load.conns, threads: o.load.threads, h2Streams: o.load.h2Streams}
	for _, in := range insts {
		if in.na != "" {
			continue
		}
		if _, err := runLoad(ctx, scenarios[0], fmt.Sprintf("http://127.0.0.1:%d%s", in.port, scenarios[0].path), warm, dir); err != nil {
			if ctx.Err() != nil {
				return errInterrupted
			}
			logf("warm-up %s: %v", in.t.name, err)
		}
	}

	// Idle keep-alive connections (fresh processes, before the load rounds).
	if o.idle > 0 {
		rep.idle = map[string]idleResult{}
		for _, in := range insts {
			if in.na != "" {
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

	// Interleaved rounds: for each round, each scenario, each column.
	for round := 1; round <= o.rounds; round++ {
		for _, sc := range scs {
			for _, in := range insts {
				if in.na != "" || (sc.tls && in.naTLS != "") {
					continue
				}
				if in.d.exited() {
					logf("%s exited; log:\n%s", in.t.name, in.d.logTail())
					in.na = "n/a: exited during the benchmark"
					continue
				}
				rec, err := measureRun(ctx, sc, in, backend.port, o.load, dir)
				if ctx.Err() != nil {
					return errInterrupted
				}
				if err != nil {
					logf("round %d %s %s: %v", round, sc.key, in.t.name, err)
					rec = runRec{failed: err.Error()}
				} else {
					logf("round %d/%d %-6s %-8s %9.0f req/s  p50 %s  p99 %s  CPU %.2f s/100k  RSS %.1f MiB  backend conns %d%s",
						round, o.rounds, sc.key, in.t.name, rec.res.rps, fmtDur(rec.res.p50), fmtDur(rec.res.p99),
						rec.cpuPer100k, float64(rec.rssKiB)/1024, rec.newConns, errSuffix(rec.res))
				}
				rep.add(sc.key, in.t.name, rec)
				time.Sleep(pauseBetween)
			}
		}
	}
	rep.elapsed = time.Since(start)

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
	rssKiB     uint64 // after the run
	pssKiB     uint64
	newConns   int64 // connections the backend accepted during the run
	failed     string
}

// measureRun samples the target's process tree, runs the load, samples again.
func measureRun(ctx context.Context, sc scenario, in *inst, backendPort int, o loadOpts, dir string) (runRec, error) {
	var rec runRec
	scheme, port := "http", in.port
	if sc.tls {
		scheme, port = "https", in.tlsPort
	}
	url := fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, port, sc.path)
	acc0, err := backendAccepts(backendPort)
	if err != nil {
		return rec, err
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
	acc1, err := backendAccepts(backendPort)
	if err != nil {
		return rec, err
	}
	// The status request of acc1 was itself one accepted connection.
	rec.newConns = acc1 - acc0 - 1
	rec.res = res
	rec.cpuSec = float64(after.cpuTicks-before.cpuTicks) / clockTicks
	if res.requests > 0 {
		rec.cpuPer100k = rec.cpuSec / float64(res.requests) * 1e5
	}
	rec.rssKiB, rec.pssKiB = after.rssKiB, after.pssKiB
	return rec, nil
}
