package main

// The "failover" scenario (the resilience issue's "vanish"): an upstream
// name's A record moves from the old backend to the new one while 20
// keep-alive clients load the proxy, and right after the change the old
// backend vanishes (every packet to it dropped). Each proxy follows the
// name the way it can be configured to (webtier's resolver, HAProxy
// `resolvers`, nginx `resolver` + a variable proxy_pass, Caddy `dynamic a`,
// httpd `addressttl`), against a real BIND 9.
//
// It runs in a network namespace and mount namespace of its own: the
// benchmark re-executes itself (foChildEnv set) with CLONE_NEWNET and
// CLONE_NEWNS, so that BIND can listen on port 53 of 127.0.0.1 (glibc's
// resolv.conf has no port: httpd needs it), /etc/resolv.conf can be
// replaced by a bind mount for that child's processes only, and the black
// hole is an nftables rule that cannot touch the host's ruleset. The child
// starts every peer, runs the rounds (each round runs every proxy in turn)
// and prints its results as JSON; the parent renders the table.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

const (
	// failoverSuite is the suite (and key) of the failover scenario.
	failoverSuite = "failover"
	// foChildEnv carries the child's foConfig (JSON); its presence makes
	// the benchmark binary run as the failover child.
	foChildEnv = "WEBTIER_BENCH_FAILOVER_CHILD"
	// foBefore is how long each run measures before the change, foAfter
	// after it: five TTLs and more.
	foBefore = 3 * time.Second
	foAfter  = 7 * time.Second
	// foSettle is the pause between pointing the record back at the old
	// backend and the next run: two TTLs and some.
	foSettle = 2*foTTL*time.Second + 500*time.Millisecond
	// foWarmMax bounds waiting, before a run, for the proxy to answer
	// from the old backend again.
	foWarmMax = 20 * time.Second
	// foWarmStreak is how many consecutive answers from the old backend
	// make a proxy warm (half a second of load).
	foWarmStreak = 50 * foClients
)

// foTools are the programs the scenario needs besides the proxies, and
// their Debian packages.
var foTools = []struct{ bin, pkg string }{
	{"named", "bind9"}, {"named-checkconf", "bind9"}, {"nsupdate", "bind9-dnsutils"},
	{"nft", "nftables"}, {"ip", "iproute2"},
}

// failoverPackages are the Debian packages the scenario needs for the
// proxies selected by only (-proxies).
func failoverPackages(only string) []string {
	var pkgs []string
	for _, t := range foTools {
		if !slices.Contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	for _, t := range foTargets {
		if t.pkg != "" && selected(only, t.name) && !slices.Contains(pkgs, t.pkg) {
			pkgs = append(pkgs, t.pkg)
		}
	}
	return pkgs
}

// failoverProxies are the proxies -proxies selects.
func failoverProxies(only string) []string {
	var names []string
	for _, t := range foTargets {
		if selected(only, t.name) {
			names = append(names, t.name)
		}
	}
	return names
}

// failoverEstimate is the expected runtime of the scenario.
func failoverEstimate(rounds, proxies int) time.Duration {
	perRun := foBefore + foAfter + 5*time.Second // warm-up, nsupdate, drain, reset
	return 10*time.Second + time.Duration(rounds*proxies)*perRun
}

// foConfig is what the parent hands the child.
type foConfig struct {
	Rounds     int      `json:"rounds"`
	Proxies    []string `json:"proxies"`
	WebtierBin string   `json:"webtier_bin"`
	Dir        string   `json:"dir"`
	HostNetns  string   `json:"host_netns"`
	OneSession bool     `json:"one_session"` // -one-session, for childAttr
}

// foResult is what the child prints.
type foResult struct {
	Columns []foColumn `json:"columns"`
	Runs    []foRun    `json:"runs"`
	Named   string     `json:"named"`
	Err     string     `json:"err,omitempty"` // the scenario could not run
}

// foColumn is one proxy of the table.
type foColumn struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	NA      string `json:"na,omitempty"`
}

// foReport is the scenario's part of the report.
type foReport struct {
	rounds  int
	res     foResult
	elapsed time.Duration
}

// runFailover runs the scenario in a child process in namespaces of its
// own, bounded by ctx (Ctrl-C: SIGTERM to the child, which stops its peers
// by PID).
func runFailover(ctx context.Context, o options, webtierBin, dir string) *foReport {
	start := time.Now()
	rep := &foReport{rounds: o.rounds}
	defer func() { rep.elapsed = time.Since(start) }()
	if os.Geteuid() != 0 {
		rep.res.Err = "needs root (network namespace, nftables, a bind mount over /etc/resolv.conf)"
		return rep
	}
	for _, t := range foTools {
		if _, err := exec.LookPath(t.bin); err != nil {
			rep.res.Err = fmt.Sprintf("%s is missing (apt-get install %s)", t.bin, t.pkg)
			return rep
		}
	}
	self, err := os.Executable()
	if err != nil {
		rep.res.Err = err.Error()
		return rep
	}
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		rep.res.Err = err.Error()
		return rep
	}
	cfg := foConfig{Rounds: o.rounds, Proxies: failoverProxies(o.only), WebtierBin: webtierBin,
		Dir: filepath.Join(dir, failoverSuite), HostNetns: host, OneSession: oneSession}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		rep.res.Err = err.Error()
		return rep
	}
	js, _ := json.Marshal(cfg)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), foChildEnv+"="+string(js))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Go also makes / MS_REC|MS_PRIVATE in the new mount namespace, so
		// the child's bind mount never reaches the host.
		Unshareflags: syscall.CLONE_NEWNET | syscall.CLONE_NEWNS,
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 60 * time.Second
	logf("failover: %d round(s) × %d proxies in a network namespace of their own (estimated %s)",
		o.rounds, len(cfg.Proxies), failoverEstimate(o.rounds, len(cfg.Proxies)).Round(time.Second))
	runErr := cmd.Run()
	if err := json.Unmarshal(out.Bytes(), &rep.res); err != nil {
		rep.res = foResult{Err: fmt.Sprintf("the failover child failed (%v) and printed no result (%v)", runErr, err)}
	}
	return rep
}

// --- the child ------------------------------------------------------------------

// isFailoverChild reports whether this process is the failover child.
func isFailoverChild() bool { return os.Getenv(foChildEnv) != "" }

// failoverChildMain runs the scenario and prints the foResult as JSON on
// stdout (progress goes to stderr). It returns the exit code.
func failoverChildMain() int {
	var cfg foConfig
	if err := json.Unmarshal([]byte(os.Getenv(foChildEnv)), &cfg); err != nil {
		logf("failover child: bad %s: %v", foChildEnv, err)
		return 2
	}
	oneSession = cfg.OneSession
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res := runFailoverChild(ctx, cfg)
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		logf("failover child: %v", err)
		return 1
	}
	return 0
}

// foProxy is one started proxy.
type foProxy struct {
	t    *foTarget
	port int
	dir  string
	d    *daemon
}

// foState is the scenario's shared state between runs.
type foState struct {
	cfg      foConfig
	bind     *foBIND
	old, new *foBackend
	dnsAt    string // the address BIND serves for foName ("" unknown)
	vanished bool   // old is black-holed
}

func runFailoverChild(ctx context.Context, cfg foConfig) (res foResult) {
	defer stopAll()
	fail := func(format string, args ...any) foResult {
		res.Err = fmt.Sprintf(format, args...)
		logf("failover: %s", res.Err)
		return res
	}
	if err := checkOwnNetns(cfg.HostNetns); err != nil {
		return fail("not in a network namespace of its own: %v", err)
	}
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		return fail("ip link set lo up: %v: %s", err, out)
	}
	fx := &foEnv{webtierBin: cfg.WebtierBin, resolvConf: privateResolvConf(cfg.Dir)}
	if fx.resolvConf != "" {
		logf("failover: %s; httpd will be n/a", fx.resolvConf)
	}
	bs, err := startFoBackends(foOldIP, foNewIP)
	if err != nil {
		return fail("backends: %v", err)
	}
	st := &foState{cfg: cfg, old: bs[0], new: bs[1], dnsAt: foOldIP}
	defer st.old.close()
	defer st.new.close()
	if st.bind, err = startFoBIND(ctx, filepath.Join(cfg.Dir, "named")); err != nil {
		return fail("BIND: %v", err)
	}
	res.Named = versionOf([]string{"named", "-v"})
	logf("failover: BIND on %s serves %s A %s (TTL %d s); backends %s and %s",
		foDNSAddr, foName, foOldIP, foTTL, st.old.addr, st.new.addr)

	ports, err := freePorts(len(foTargets))
	if err != nil {
		return fail("ports: %v", err)
	}
	var ps []*foProxy
	for i, t := range foTargets {
		if !slices.Contains(cfg.Proxies, t.name) {
			continue
		}
		col := foColumn{Name: t.name}
		argv := append([]string(nil), t.version...)
		if t.name == "webtier" {
			argv[0] = cfg.WebtierBin
		}
		p := &foProxy{t: t, port: ports[i], dir: filepath.Join(cfg.Dir, t.name)}
		if col.NA = startFoProxy(ctx, fx, p, st.old.port()); col.NA == "" {
			ps = append(ps, p)
			logf("failover: %s ready on 127.0.0.1:%d (pid %d)", t.name, p.port, p.d.pid())
		} else {
			logf("failover: %s: %s", t.name, col.NA)
		}
		if t.pkg == "" || installed(t.pkg) {
			col.Version = versionOf(argv)
		}
		res.Columns = append(res.Columns, col)
	}

	for round := 1; round <= cfg.Rounds; round++ {
		for _, p := range ps {
			if ctx.Err() != nil {
				return fail("interrupted")
			}
			run := st.runOne(ctx, p)
			run.Round, run.Proxy = round, p.t.name
			if run.Err != "" {
				logf("failover: round %d/%d %-8s %s", round, cfg.Rounds, p.t.name, run.Err)
			} else {
				logf("failover: round %d/%d %-8s %6d requests, %4d failed%s, p99 %s → %s, max %s, first answer from %s %s after the change (black hole %s after BIND served it)",
					round, cfg.Rounds, p.t.name, run.Requests, run.Failed, parenKinds(run.Kinds),
					fmtDur(run.P99Before), fmtDur(run.P99After), fmtDur(run.MaxAfter), foNewIP, fmtFirst(run), fmtDur(run.Gap))
			}
			res.Runs = append(res.Runs, run)
		}
	}
	return res
}

func parenKinds(k map[string]int) string {
	if len(k) == 0 {
		return ""
	}
	return " (" + kindsText(k) + ")"
}

// privateResolvConf points glibc at BIND for this mount namespace only: a
// resolv.conf under dir bind-mounted over /etc/resolv.conf. It returns ""
// on success, else why it could not.
func privateResolvConf(dir string) string {
	path := filepath.Join(dir, "resolv.conf")
	if err := writeFile(path, "nameserver 127.0.0.1\n"); err != nil {
		return err.Error()
	}
	if err := syscall.Mount(path, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
		return fmt.Sprintf("bind mount over /etc/resolv.conf: %v", err)
	}
	return ""
}

// startFoProxy writes the proxy's config, starts it and waits until it
// answers from the old backend. It returns "" or why the proxy is n/a.
func startFoProxy(ctx context.Context, fx *foEnv, p *foProxy, backendPort int) string {
	if p.t.pkg != "" && !installed(p.t.pkg) {
		return "n/a: " + p.t.pkg + " not installed"
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return "n/a: " + err.Error()
	}
	argv, extra, err := p.t.write(fx, p.dir, p.port, backendPort)
	if err != nil {
		return "n/a: " + err.Error()
	}
	if p.d, err = startDaemon(p.t.name, p.dir, extra, argv...); err != nil {
		return "n/a: " + err.Error()
	}
	l := startLoad(ctx, p.url(), foOldIP)
	defer l.finish()
	deadline := time.Now().Add(foWarmMax)
	for l.currentStreak() < foClients {
		if p.d.exited() {
			logf("failover: %s exited at start-up; log:\n%s", p.t.name, p.d.logTail())
			return "n/a: exited at start-up (see its log with -keep)"
		}
		if time.Now().After(deadline) || !sleepCtx(ctx, 50*time.Millisecond) {
			logf("failover: %s did not answer from %s within %s; log:\n%s", p.t.name, foOldIP, foWarmMax, p.d.logTail())
			return fmt.Sprintf("n/a: never answered from %s (the address of %s) within %s", foOldIP, foName, foWarmMax)
		}
	}
	return ""
}

func (p *foProxy) url() string { return fmt.Sprintf("http://127.0.0.1:%d/", p.port) }

// sleepCtx sleeps d; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reset brings the old backend back and points the record at it again.
// After a run it then waits foSettle with no load, so that every proxy has
// re-resolved, and closes every connection to the new backend: each run
// starts with the proxy connected to the old backend only. (HAProxy keeps
// using keep-alive connections to an address DNS no longer lists; without
// this it would start the next run on the new backend.)
func (st *foState) reset(ctx context.Context) error {
	moved := st.vanished || st.dnsAt != foOldIP
	if st.vanished {
		if err := unblackhole(st.cfg.HostNetns); err != nil {
			return err
		}
		if err := st.old.revive(); err != nil {
			return err
		}
		st.vanished = false
	}
	if st.dnsAt != foOldIP {
		st.dnsAt = ""
		if _, err := st.bind.setA(ctx, foOldIP); err != nil {
			return err
		}
		st.dnsAt = foOldIP
	}
	if moved {
		if !sleepCtx(ctx, foSettle) {
			return ctx.Err()
		}
		return st.new.revive()
	}
	return nil
}

// runOne is one measured run: warm up on the old backend, load for
// foBefore, move the record (nsupdate), black-hole the old backend at
// once, load for foAfter, wait for the requests in flight.
func (st *foState) runOne(ctx context.Context, p *foProxy) foRun {
	if err := st.reset(ctx); err != nil {
		return foRun{Err: "reset: " + err.Error()}
	}
	if p.d.exited() {
		return foRun{Err: "the proxy exited"}
	}
	l := startLoad(ctx, p.url(), foOldIP)
	warm := time.Now()
	for l.currentStreak() < foWarmStreak || time.Since(warm) < time.Second {
		if time.Since(warm) > foWarmMax || !sleepCtx(ctx, 50*time.Millisecond) {
			recs := l.finish()
			return foRun{Err: fmt.Sprintf("did not answer steadily from %s within %s of the record pointing at it again (%s)",
				foOldIP, foWarmMax, outcomes(recs))}
		}
	}
	var w foWindow
	w.start = time.Now()
	sleepCtx(ctx, foBefore)
	w.update = time.Now()
	st.dnsAt = ""
	served, err := st.bind.setA(ctx, foNewIP)
	w.changed = time.Now()
	if err == nil {
		st.dnsAt = foNewIP
		err = blackhole(st.old.addr, st.cfg.HostNetns)
		st.vanished = true
	}
	w.vanish = time.Now()
	if err != nil {
		l.finish()
		return foRun{Err: err.Error()}
	}
	sleepCtx(ctx, foAfter)
	w.end = time.Now()
	recs := l.finish()
	if ctx.Err() != nil {
		return foRun{Err: "interrupted"}
	}
	run := summarizeRun(recs, w, foNewIP)
	run.Update = w.changed.Sub(w.update)
	if !served.IsZero() {
		run.Served, run.Gap = served.Sub(w.changed), w.vanish.Sub(served)
	}
	if p.t.name == "webtier" {
		run.Log = logWindow(filepath.Join(p.dir, p.t.name+".log"), w.start.Add(-time.Second), time.Now(), w.changed, 60)
	}
	if p.d.exited() {
		run.Err = "the proxy exited during the run"
	}
	return run
}

// logWindow returns webtier's JSON log lines whose "ts" is in [from, to],
// at most n, each prefixed with its time relative to ref.
func logWindow(path string, from, to, ref time.Time, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		var l struct {
			TS string `json:"ts"`
		}
		if json.Unmarshal([]byte(line), &l) != nil {
			continue
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z0700", l.TS)
		if err != nil || ts.Before(from) || ts.After(to) {
			continue
		}
		if len(out) == n {
			out = append(out, "... (more lines in the log; keep it with -keep)")
			break
		}
		out = append(out, fmt.Sprintf("%+.3fs %s", ts.Sub(ref).Seconds(), line))
	}
	return out
}

// outcomes counts what the requests got: "812 × 200 from 127.0.0.3, 20 ×
// timeout (5s)".
func outcomes(recs []foRec) string {
	m := map[string]int{}
	for _, r := range recs {
		if r.ok() {
			m["200 from "+r.backend]++
		} else {
			m[r.failure()]++
		}
	}
	return kindsText(m)
}

// fmtSince renders a time relative to the change.
func fmtSince(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// fmtFirst renders a run's first answer from the new backend.
func fmtFirst(r foRun) string {
	if !r.OnNew {
		return "never"
	}
	return fmtSince(r.FirstOnNew)
}

// --- the report -----------------------------------------------------------------

// markdown writes the scenario's section of the report.
func (r *foReport) markdown(b *strings.Builder) {
	fmt.Fprintf(b, "### DNS failover: the record moves and the old backend vanishes (%d keep-alive clients, each GET / every %s)\n\n",
		foClients, foInterval)
	if r.res.Err != "" {
		fmt.Fprintf(b, "Not run: %s.\n\n", r.res.Err)
		return
	}
	fmt.Fprintf(b, "BIND 9 (`%s`) serves `%s A %s`, TTL %d s; the backends answer on %s and %s (same port). ",
		r.res.Named, foName, foOldIP, foTTL, foOldIP, foNewIP)
	fmt.Fprintf(b, "Each run: load until the proxy answers steadily from %s, %s measured, then `nsupdate` moves the record to %s "+
		"and the moment it returns %s is black-holed (nftables drops every packet to and from it), then %s more. ",
		foOldIP, foBefore, foNewIP, foOldIP, foAfter)
	fmt.Fprintf(b, "Requests time out after %s; a failure is a transport error or a status other than 200. "+
		"%d interleaved round(s) (each round runs every proxy in turn); latencies and times are medians over rounds, "+
		"counts are sums, \"requests\" the median per run. Times are relative to `nsupdate` returning.\n\n",
		foTimeout, r.rounds)
	var gaps []float64
	for _, run := range r.res.Runs {
		if run.Err == "" && run.Gap > 0 {
			gaps = append(gaps, float64(run.Gap))
		}
	}
	if len(gaps) > 0 {
		lo, hi := slices.Min(gaps), slices.Max(gaps)
		fmt.Fprintf(b, "The black hole came %s (median; %s to %s) after a query first saw BIND serve the new address: "+
			"a proxy that happens to re-resolve within that gap moves before the old backend vanishes.\n\n",
			fmtDur(time.Duration(median(gaps))), fmtDur(time.Duration(lo)), fmtDur(time.Duration(hi)))
	}
	b.WriteString("| proxy | follows DNS with | requests | failed | failed per round | p99 before | p99 after change | max after change | over 1 s | first answer from new | all on new after | failures |\n")
	b.WriteString("| --- | --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	type agg struct {
		failed int
		ok     bool
	}
	sums := map[string]agg{}
	for _, c := range r.res.Columns {
		t := foTargetByName(c.Name)
		dns := ""
		if t != nil {
			dns = t.dns
		}
		if c.NA != "" {
			fmt.Fprintf(b, "| %s | %s | %s |%s\n", c.Name, dns, c.NA, strings.Repeat(" |", 9))
			continue
		}
		var runs []foRun
		var errs []string
		for _, run := range r.res.Runs {
			if run.Proxy != c.Name {
				continue
			}
			if run.Err != "" {
				errs = append(errs, fmt.Sprintf("round %d: %s", run.Round, run.Err))
				continue
			}
			runs = append(runs, run)
		}
		if len(runs) == 0 {
			fmt.Fprintf(b, "| %s | %s | n/a: %s |%s\n", c.Name, dns, strings.Join(errs, "; "), strings.Repeat(" |", 9))
			continue
		}
		var req, p99b, p99a, mx, slow, first, settled []float64
		failed, never := 0, 0
		var per []string
		kinds := map[string]int{}
		var from, to time.Duration
		haveWindow := false
		for _, run := range runs {
			req = append(req, float64(run.Requests))
			p99b = append(p99b, float64(run.P99Before))
			p99a = append(p99a, float64(run.P99After))
			mx = append(mx, float64(run.MaxAfter))
			slow = append(slow, float64(run.Slow))
			settled = append(settled, float64(run.Settled))
			if !run.OnNew {
				never++
			} else {
				first = append(first, float64(run.FirstOnNew))
			}
			failed += run.Failed
			per = append(per, fmt.Sprint(run.Failed))
			for k, n := range run.Kinds {
				kinds[k] += n
			}
			if run.Failed > 0 {
				if !haveWindow || run.FailFrom < from {
					from = run.FailFrom
				}
				if !haveWindow || run.FailTo > to {
					to = run.FailTo
				}
				haveWindow = true
			}
		}
		sums[c.Name] = agg{failed: failed, ok: true}
		firstText := "never"
		if len(first) > 0 {
			firstText = fmtSince(time.Duration(median(first)))
			if never > 0 {
				firstText += fmt.Sprintf(" (never in %d run(s))", never)
			}
		}
		fails := "—"
		if failed > 0 {
			fails = fmt.Sprintf("%s; sent %+.2f s to %+.2f s from the change", kindsText(kinds), from.Seconds(), to.Seconds())
		}
		if len(errs) > 0 {
			fails += "; " + strings.Join(errs, "; ")
		}
		fmt.Fprintf(b, "| %s | %s | %.0f | %d | %s | %s | %s | %s | %.0f | %s | %s | %s |\n",
			c.Name, dns, median(req), failed, strings.Join(per, ", "),
			fmtDur(time.Duration(median(p99b))), fmtDur(time.Duration(median(p99a))), fmtDur(time.Duration(median(mx))),
			median(slow), firstText, fmtSince(time.Duration(median(settled))), fails)
	}
	b.WriteString("\n")

	// The target: zero failed requests for webtier, some for every peer.
	wt, haveWT := sums["webtier"]
	var peers []string
	allFail, anyPeer := true, false
	for _, c := range r.res.Columns {
		s, ok := sums[c.Name]
		if c.Name == "webtier" || !ok {
			continue
		}
		anyPeer = true
		peers = append(peers, fmt.Sprintf("%s %d", c.Name, s.failed))
		if s.failed == 0 {
			allFail = false
		}
	}
	b.WriteString("| target | result | met |\n| --- | --- | --- |\n")
	if haveWT {
		fmt.Fprintf(b, "| webtier: zero failed requests | %d failed | %s |\n", wt.failed, yesNo(wt.failed == 0))
	}
	if anyPeer {
		fmt.Fprintf(b, "| every peer fails some | %s | %s |\n", strings.Join(peers, ", "), yesNo(allFail))
	}
	b.WriteString("\n")

	// What webtier did: its log of the first run, and of every run in
	// which it failed a request.
	for i, run := range r.res.Runs {
		if run.Proxy != "webtier" || len(run.Log) == 0 || (run.Failed == 0 && i != firstRun(r.res.Runs, "webtier")) {
			continue
		}
		var lines []string
		for _, l := range run.Log {
			lines = append(lines, compactLogLine(l))
		}
		if run.Failed > 0 {
			fmt.Fprintf(b, "webtier FAILED %d request(s) in round %d (%s; sent %+.3f s to %+.3f s from the change; nsupdate took %s). ",
				run.Failed, run.Round, kindsText(run.Kinds), run.FailFrom.Seconds(), run.FailTo.Seconds(), fmtDur(run.Update))
		}
		fmt.Fprintf(b, "webtier's log in round %d (level info; seconds relative to `nsupdate` returning, which took %s):\n\n```\n%s\n```\n\n",
			run.Round, fmtDur(run.Update), strings.Join(lines, "\n"))
	}
	b.WriteString("| failover peer | version |\n| --- | --- |\n")
	fmt.Fprintf(b, "| BIND | %s |\n", r.res.Named)
	for _, c := range r.res.Columns {
		fmt.Fprintf(b, "| %s | %s |\n", c.Name, c.Version)
	}
	fmt.Fprintf(b, "\nFailover scenario runtime %s.\n\n", r.elapsed.Round(time.Second))
}

// firstRun is the index of proxy's first successful run in runs (-1: none).
func firstRun(runs []foRun, proxy string) int {
	for i, r := range runs {
		if r.Proxy == proxy && r.Err == "" {
			return i
		}
	}
	return -1
}

// compactLogLine shortens a line of logWindow ("+0.452s {json}") to its
// time, message and the fields that say what happened.
func compactLogLine(line string) string {
	rel, js, ok := strings.Cut(line, " ")
	if !ok {
		return line
	}
	var m map[string]any
	if json.Unmarshal([]byte(js), &m) != nil {
		return line
	}
	out := fmt.Sprintf("%8s  %-5v %v", rel, m["level"], m["msg"])
	keys := make([]string, 0, len(m))
	for k := range m {
		switch k {
		case "level", "ts", "msg", "logger", "upstream", "target", "caller":
			continue
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, _ := json.Marshal(m[k])
		out += fmt.Sprintf(" %s=%s", k, v)
	}
	return out
}

func foTargetByName(name string) *foTarget {
	for _, t := range foTargets {
		if t.name == name {
			return t
		}
	}
	return nil
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
