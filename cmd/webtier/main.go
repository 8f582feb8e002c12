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
//	webtier version                 print the version
//	kill -HUP PID                   reload the config file (routes, upstreams)
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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/proxy"
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
  webtier validate -config FILE   check a config file (exit 0 when valid, 1 otherwise)
  webtier demo [-duration 20s]    watch requests follow a DNS change (needs nothing installed)
  webtier version                 print the version

  kill -HUP PID                   reload the config file: routes, upstreams,
                                  trusted_proxies, keep_underscore_headers and
                                  logging.level change
                                  without failing a request; a config that
                                  does not load is logged and the old one kept;
                                  listener, resolver and logging.format
                                  changes are logged and wait for a restart
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go runProcs(ctx, log.Named("procs"))
	if err := serve(ctx, cfg, log, prometheus.NewRegistry(), reloader{hup: hup, level: level}); err != nil {
		log.Error("webtier stopped", zap.Error(err))
		return 1
	}
	log.Info("webtier stopped")
	return 0
}

// reloader is what serve needs to reload the config: the signal that asks
// for it and the logger's level, which a reload may change. Its zero value
// never reloads.
type reloader struct {
	hup   <-chan os.Signal
	level zap.AtomicLevel
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
	srv, err := proxy.NewServer(popts, res, log.Named("proxy"))
	if err != nil {
		return fmt.Errorf("building proxy: %w", err)
	}
	if err := srv.Listen(); err != nil {
		srv.Handler().Close()
		return err
	}
	log.Info("webtier started", zap.String("version", versionString()), zap.String("config", cfg.File))
	logEngines(cfg, log)
	live := &running{started: cfg, srv: srv, res: res, metrics: popts.Metrics, level: rl.level, log: log}
	// The reload loop ends before serve returns, so that no reload builds
	// pools on the resolver closed by the deferred res.Close.
	loopCtx, stopLoop := context.WithCancel(ctx)
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		for {
			select {
			case <-loopCtx.Done():
				return
			case <-rl.hup:
				live.reload(loopCtx)
			}
		}
	}()
	err = srv.Serve(ctx)
	stopLoop()
	<-loopDone
	return err
}

// running is what a reload works on: the config the process started with
// (its listeners, resolver and log format stay until a restart) and the
// parts built from it that a reload reuses or changes.
type running struct {
	started *config.Config
	srv     *proxy.Server
	res     *resolver.Resolver // kept: one DNS cache for every Handler
	metrics *upstream.Metrics  // kept: registered once per process
	level   zap.AtomicLevel
	log     *zap.Logger
}

// dnsWait bounds how long a reload waits for the first DNS answers of the
// new upstreams' names before swapping them in (proxy.Server.Reload): as
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
func (r *running) reload(ctx context.Context) {
	file := r.started.File
	next, err := config.Load(file)
	if err != nil {
		r.log.Error("config reload failed", zap.String("config", file),
			zap.String("serving", "previous config"), zap.Error(err))
		return
	}
	popts := next.Proxy
	popts.Metrics = r.metrics
	wctx, cancel := context.WithTimeout(ctx, dnsWait(r.started.Resolver))
	defer cancel()
	pending, err := r.srv.Reload(wctx, popts, r.res)
	if err != nil {
		r.log.Error("config reload failed", zap.String("config", file),
			zap.String("serving", "previous config"), zap.Error(err))
		return
	}
	if len(pending) > 0 {
		r.log.Warn("listeners changed; restart webtier to apply", zap.Strings("listeners", pending))
	}
	if keys := config.RestartKeys(r.started, next); len(keys) > 0 {
		r.log.Warn("resolver or logging.format changed; restart webtier to apply (the DNS cache is kept)",
			zap.Strings("keys", keys))
	}
	if l, err := zapcore.ParseLevel(next.Logging.Level); err == nil {
		r.level.SetLevel(l)
	}
	r.log.Info("config reloaded", zap.String("config", file))
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
