// Command webtier is a reverse proxy that follows DNS: every upstream
// hostname is re-resolved by its TTL in one shared cache, so a moved AWS ELB
// or a failed-over database is followed within a TTL instead of after a
// restart.
//
// Usage:
//
//	webtier -config FILE            run the proxy
//	webtier validate -config FILE   check a config file and exit 0 or 1
//	webtier demo                    watch requests follow a DNS change
//	webtier health [-url URL]       ask a health endpoint (exit 0 on 2xx)
//	webtier version                 print the version
//	webtier import-httpd [-o FILE] [-report FILE] [-strict] HTTPD.CONF
//	                                turn an httpd config into a webtier config
//	kill -HUP PID                   reload the config file (routes, upstreams)
//	kill -TERM PID                  drain (health endpoints fail), then stop
//	kill -USR1 PID                  reopen the access log file
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/webtier/webtier/admin"
	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/internal/sdnotify"
	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/accesslog"
	"github.com/webtier/webtier/proxy/frontend"
	"github.com/webtier/webtier/proxy/upstream"
	"github.com/webtier/webtier/resolver"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or VCS revision is used.
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  webtier -config FILE            run the proxy
  webtier validate -config FILE   check a config file (exit 0 when valid, 1 otherwise; also: webtier validate FILE)
  webtier demo [-duration 20s]    watch requests follow a DNS change (needs nothing installed)
  webtier health [-url URL] [-timeout 3s]
                                  GET a health endpoint (default
                                  http://127.0.0.1:8080/health_check.html):
                                  exit 0 on 2xx, 1 otherwise (Docker HEALTHCHECK)
  webtier version                 print the version
  webtier import-httpd [-o out.yaml] [-report FILE] [-strict] [-D NAME] PATH
                                  turn an httpd config tree (and mod_jk's
                                  workers.properties) into a webtier config
                                  and a report of every directive; exit 3
                                  with -strict when any was approximated or left

  kill -HUP PID                   reload the config file: routes, upstreams,
                                  trusted_proxies, keep_underscore_headers,
                                  access_log, request_id and logging.level change
                                  without failing a request; a config that
                                  does not load is logged and the old one kept;
                                  listener, resolver, admin and logging.format
                                  changes are logged and wait for a restart
  kill -TERM PID                  drain: the health endpoints fail at once,
                                  keep-alive connections are closed, and the
                                  listeners close after drain.wait (a second
                                  SIGTERM, or SIGINT, closes them now); then
                                  requests in flight get drain.timeout
  kill -INT PID (Ctrl-C)          stop without the drain wait
  kill -USR1 PID                  reopen the access log file (after logrotate)
`

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		cmd, args = "help", args[1:]
	} else if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run":
		return runProxy(args, stdout, stderr)
	case "validate":
		return validate(args, stdout, stderr)
	case "demo":
		return demo(args, stdout, stderr)
	case "health":
		return health(args, stdout, stderr)
	case "import-httpd":
		return importHTTPD(args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "webtier", versionString())
		return 0
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "webtier: unknown command %q\n%s", cmd, usage)
	return 2
}

// proceed is what parseFlags and configFlag return when the command should
// go on; any other value is the exit code.
const proceed = -1

// parseFlags parses args into fs. It returns proceed, or else the exit
// code: 0 after -h or -help, for which the whole usage and fs's flags go to
// stdout (the flag package alone would print only the flags, as "Usage of
// NAME", on stderr), and 2 after a bad flag, which the flag package has
// reported on stderr.
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parseFlags prints the usage itself
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, usage)
		fmt.Fprintf(stdout, "\nflags of %s:\n", commandName(fs.Name()))
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		return 0
	case err != nil:
		fmt.Fprint(stderr, usage)
		return 2
	}
	return proceed
}

// commandName is how the user typed a command: "run" is webtier alone.
func commandName(cmd string) string {
	if cmd == "run" {
		return "webtier"
	}
	return "webtier " + cmd
}

// configFlag parses the -config flag of cmd; code is as parseFlags's.
func configFlag(cmd string, args []string, stdout, stderr io.Writer) (path string, code int) {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	p := fs.String("config", "", "path to the YAML config file")
	if code := parseFlags(fs, args, stdout, stderr); code != proceed {
		return "", code
	}
	if *p == "" && fs.NArg() == 1 && cmd == "validate" {
		// "webtier validate FILE", as a sysadmin types it after
		// import-httpd -o FILE (and as httpd -t -f FILE reads it).
		return fs.Arg(0), proceed
	}
	if *p == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: give the config file with -config FILE\n", commandName(cmd))
		return "", 2
	}
	return *p, proceed
}

func validate(args []string, stdout, stderr io.Writer) int {
	path, code := configFlag("validate", args, stdout, stderr)
	if code != proceed {
		return code
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "webtier: %s is not valid\n", path)
		return 1
	}
	fmt.Fprintf(stdout, "webtier: %s is valid\n", path)
	printEngines(cfg, stdout)
	printTargetSources(cfg, stdout)
	return 0
}

// printTargetSources says, for every named upstream target, where webtier
// will find its addresses: the hosts file and localhost names are answered
// now (as webtier would), other names by DNS at run time (validate sends
// no query).
func printTargetSources(cfg *config.Config, w io.Writer) {
	seen := map[string]bool{}
	for _, u := range cfg.Proxy.Upstreams {
		for _, t := range u.Targets {
			if _, err := netip.ParseAddr(t.Host); err == nil || seen[t.Host] {
				continue
			}
			seen[t.Host] = true
			addrs, src, err := resolver.LocalAnswer(cfg.Resolver, t.Host)
			switch {
			case err != nil:
				fmt.Fprintf(w, "  %s: %v\n", t.Host, err)
			case src == resolver.SourceDNS:
				fmt.Fprintf(w, "  %s: resolved by DNS at run time\n", t.Host)
			case src == resolver.SourceHosts:
				fmt.Fprintf(w, "  %s: %s from the hosts file %s (no DNS query)\n", t.Host, joinAddrs(addrs), cfg.Resolver.HostsFile)
			default:
				fmt.Fprintf(w, "  %s: %s from the %s (no DNS query)\n", t.Host, joinAddrs(addrs), src)
			}
		}
	}
}

func joinAddrs(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

func runProxy(args []string, stdout, stderr io.Writer) int {
	// SIGHUP reloads (systemctl reload, apachectl graceful's habit). It is
	// caught from here on, as its default action would end the process; one
	// that comes while webtier starts is served once it has.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	// SIGUSR1 reopens the access log (logrotate's postrotate); its default
	// action would end the process too.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	path, code := configFlag("run", args, stdout, stderr)
	if code != proceed {
		return code
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := zap.NewAtomicLevel()
	log, err := newLogger(cfg.Logging, level, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "webtier: %v\n", err)
		return 1
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	defer redirectStdLog(log)()

	// SIGTERM drains, SIGINT stops (stopOnSignals); caught from here
	// on, as their default action ends the process at once.
	term := make(chan os.Signal, 2)
	signal.Notify(term, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(term)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go runProcs(ctx, log.Named("procs"))
	if err := serve(ctx, cfg, log, newRegistry(), reloader{hup: hup, term: term, usr1: usr1, level: level, stdout: stdout, notify: sdnotify.FromEnv()}); err != nil {
		log.Error("webtier stopped", zap.Error(err))
		return 1
	}
	log.Info("webtier stopped")
	return 0
}

// reloader is what serve needs to reload the config: the signal that asks
// for it and the logger's level, which a reload may change; and the
// signals that drain and stop (stopOnSignals). Its zero value never
// reloads and stops only when serve's context is done.
type reloader struct {
	hup    <-chan os.Signal
	term   <-chan os.Signal // SIGTERM and SIGINT
	usr1   <-chan os.Signal // reopens the access log
	level  zap.AtomicLevel
	stdout io.Writer // the access log's "stdout"; nil: os.Stdout
	// notify tells systemd (Type=notify) that webtier listens, reloads and
	// stops; its zero value, as outside systemd, tells no one.
	notify sdnotify.Notifier
}

// serve wires resolver and proxy together and serves until ctx is done.
// While it serves, each signal on rl.hup reloads the config file.
func serve(ctx context.Context, cfg *config.Config, log *zap.Logger, reg *prometheus.Registry, rl reloader) error {
	ropts := cfg.Resolver
	ropts.Logger = log.Named("resolver")
	ropts.Registerer = reg
	res, err := resolver.New(ropts)
	if err != nil {
		return fmt.Errorf("starting resolver: %w", err)
	}
	defer res.Close()
	popts := cfg.Proxy
	// Registered once: every Handler a reload builds counts into them.
	popts.Metrics = upstream.NewMetrics(reg)
	live := &running{started: cfg, res: res, metrics: popts.Metrics, level: rl.level, log: log,
		reg: reg, stdout: rl.stdout, cfgm: newConfigMetrics(reg)}
	live.current.set(cfg)
	reloads := make(chan reloadRequest) // from the admin API
	// term is what stopOnSignals reads: the stop signals, and the admin
	// API's drain, which acts as a SIGTERM.
	term := make(chan os.Signal, 2)
	if cfg.Admin != nil {
		// Requests are measured only when something can read it.
		live.requests = proxy.NewMetrics(reg)
	}
	popts.RequestMetrics = live.requests
	if err := live.setAccessLog(&popts, cfg.AccessLog); err != nil {
		return err
	}
	defer live.closeAccessLog()
	srv, err := frontend.NewServer(popts, res, log.Named("proxy"))
	if err != nil {
		return fmt.Errorf("building proxy: %w", err)
	}
	live.srv = srv
	reg.MustRegister(upstream.AddressCollector(func() []*upstream.Pool { return srv.Handler().Pools() }))
	// The admin listener is bound first, so that once the proxy's
	// listeners accept (what a supervisor or a script waits for), the
	// admin API and metrics do too.
	var adm *admin.Server
	if cfg.Admin != nil {
		if adm, err = admin.New(*cfg.Admin, reg, log.Named("admin")); err == nil {
			err = adm.Control(live.adminControls(reloads, term))
		}
		if err == nil {
			err = adm.Listen()
		}
		if err != nil {
			srv.Handler().Close()
			return err
		}
	}
	if err := srv.Listen(); err != nil {
		if adm != nil {
			adm.Close()
		}
		srv.Handler().Close()
		return err
	}
	live.cfgm.loaded(cfg)
	log.Info("webtier started", zap.String("version", versionString()), zap.String("config", cfg.File))
	notified(log, rl.notify.Ready())
	logEngines(cfg, log)
	// The reload loop ends before serve returns, so that no reload builds
	// pools on the resolver closed by the deferred res.Close.
	loopCtx, stopLoop := context.WithCancel(ctx)
	stopping := sync.OnceFunc(func() { notified(log, rl.notify.Stopping()) })
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-loopCtx.Done():
				if ctx.Err() != nil { // stopped by the caller rather than a signal
					stopping()
				}
				return
			case <-rl.hup:
				notified(log, rl.notify.Reloading())
				live.reload(loopCtx)
				notified(log, rl.notify.Ready()) // the old config or the new: serving
			case req := <-reloads:
				notified(log, rl.notify.Reloading())
				req.done <- live.reload(loopCtx)
				notified(log, rl.notify.Ready())
			case <-rl.usr1:
				live.reopenAccessLog()
			}
		}
	}()
	go func() { // the stop signals join the admin API's drains
		for {
			select {
			case <-loopCtx.Done():
				return
			case sig := <-rl.term:
				select {
				case term <- sig:
				case <-loopCtx.Done():
					return
				}
			}
		}
	}()
	drainDone := make(chan struct{})
	go func() {
		defer close(drainDone)
		stopOnSignals(loopCtx, term, srv, log, stopping)
	}()
	admDone := make(chan struct{})
	if adm != nil {
		go func() {
			defer close(admDone)
			if err := adm.Serve(loopCtx); err != nil {
				log.Error("admin listener failed", zap.Error(err))
			}
		}()
	} else {
		close(admDone)
	}
	err = srv.Serve(ctx)
	stopLoop()
	<-loopDone
	<-drainDone
	<-admDone
	return err
}

// notified logs a notification to systemd that failed: the service goes on,
// but systemctl may wait for it or show the wrong state.
func notified(log *zap.Logger, err error) {
	if err != nil {
		log.Warn("systemd notification failed", zap.Error(err))
	}
}

// stopOnSignals stops srv on SIGTERM the way a balancer in front needs
// (README, "Health endpoint and drain"): the health endpoints fail at once and keep-alive
// connections are closed, while everything is still served for
// drain.wait, long enough for the balancer to take webtier out; then
// srv.Stop closes the listeners. A second SIGTERM, or a SIGINT, during the
// wait closes them at once; a SIGINT first, or drain.wait 0s, skips the
// wait. An Undrain during the wait (the admin API) keeps webtier serving,
// and the next SIGTERM drains again. It returns once srv is stopping or
// ctx is done. stopping (if not nil) runs once, at the first signal:
// systemd hears STOPPING=1 as the drain starts.
func stopOnSignals(ctx context.Context, term <-chan os.Signal, srv *frontend.Server, log *zap.Logger, stopping func()) {
	for {
		var sig os.Signal
		select {
		case <-ctx.Done():
			return
		case sig = <-term:
		}
		if stopping != nil {
			stopping()
			stopping = nil
		}
		wait := srv.DrainOptions().WaitTime()
		if sig == os.Interrupt || wait == 0 {
			log.Info("stopping: closing the listeners", zap.Stringer("signal", sig))
			srv.Stop()
			return
		}
		undrained := srv.Drain()
		log.Info("draining: the listeners close after drain.wait; send SIGTERM again to close them now",
			zap.Stringer("signal", sig), zap.Duration("wait", wait))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
			if !srv.StopDrained() {
				log.Info("undrained as the drain wait ended: serving")
				continue
			}
			log.Info("drain wait over: closing the listeners")
		case sig = <-term:
			t.Stop()
			log.Info("closing the listeners now", zap.Stringer("signal", sig))
			srv.Stop()
		case <-undrained:
			t.Stop()
			log.Info("undrained: serving; the next SIGTERM drains again")
			continue
		case <-ctx.Done():
			t.Stop()
		}
		return
	}
}

// running is what a reload works on: the config the process started with
// (its listeners, resolver and log format stay until a restart) and the
// parts built from it that a reload reuses or changes.
type running struct {
	started  *config.Config
	srv      *frontend.Server
	res      *resolver.Resolver // kept: one DNS cache for every Handler
	metrics  *upstream.Metrics  // kept: registered once per process
	requests *proxy.Metrics     // kept; nil without an admin listener
	level    zap.AtomicLevel
	log      *zap.Logger
	reg      prometheus.Registerer
	stdout   io.Writer
	cfgm     *configMetrics

	accessLog     *accesslog.Writer // made when a config first turns it on; kept
	accessLogPath string

	current loadedConfig // the config in effect, for the admin status
}

// dnsWait bounds how long a reload waits for the first DNS answers of the
// new upstreams' names before swapping them in (frontend.Server.Reload): as
// long as the resolver may take to answer a name or give up on it.
func dnsWait(o resolver.Options) time.Duration {
	return o.QueryTimeout*time.Duration(o.Attempts) + time.Second
}

// reload loads the config file again and applies what can change while
// serving: routes, upstreams, trusted proxies and the log level. A file
// that does not load changes nothing, so that a typo never takes the proxy
// down. What a reload cannot apply (listeners, resolver settings,
// logging.format) is logged, at every reload until a restart, as differing
// from what runs.
func (r *running) reload(ctx context.Context) error {
	file := r.started.File
	next, err := config.Load(file)
	if err != nil {
		r.cfgm.reloads.WithLabelValues("failed").Inc()
		r.log.Error("config reload failed", zap.String("config", file),
			zap.String("serving", "previous config"), zap.Error(err))
		return err
	}
	popts := next.Proxy
	popts.Metrics = r.metrics
	popts.RequestMetrics = r.requests
	if err := r.setAccessLog(&popts, next.AccessLog); err != nil {
		r.cfgm.reloads.WithLabelValues("failed").Inc()
		r.log.Error("config reload failed", zap.String("config", file),
			zap.String("serving", "previous config"), zap.Error(err))
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, dnsWait(r.started.Resolver))
	defer cancel()
	pending, err := r.srv.Reload(wctx, popts, r.res)
	if err != nil {
		r.cfgm.reloads.WithLabelValues("failed").Inc()
		r.log.Error("config reload failed", zap.String("config", file),
			zap.String("serving", "previous config"), zap.Error(err))
		return err
	}
	r.cfgm.reloads.WithLabelValues("ok").Inc()
	r.cfgm.loaded(next)
	r.current.set(next)
	if len(pending) > 0 {
		r.log.Warn("listeners changed; restart webtier to apply", zap.Strings("listeners", pending))
	}
	if keys := config.RestartKeys(r.started, next); len(keys) > 0 {
		r.log.Warn("resolver, admin or logging.format changed; restart webtier to apply (the DNS cache is kept)",
			zap.Strings("keys", keys))
	}
	if l, err := zapcore.ParseLevel(next.Logging.Level); err == nil {
		r.level.SetLevel(l)
	}
	r.log.Info("config reloaded", zap.String("config", file))
	return nil
}

// newLogger builds the process logger: JSON, or console lines when stderr
// is a terminal (format "auto").
func newLogger(l config.Logging, level zap.AtomicLevel, w io.Writer) (*zap.Logger, error) {
	lv, err := zapcore.ParseLevel(l.Level)
	if err != nil {
		return nil, fmt.Errorf("logging.level: %w", err)
	}
	level.SetLevel(lv)
	format := l.Format
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				format = "console"
			}
		}
	}
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "ts"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "json":
		enc = zapcore.NewJSONEncoder(ec)
	case "console":
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, errors.New("logging.format must be auto, json or console")
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)), nil
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
