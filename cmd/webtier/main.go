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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"reflect"
	"runtime/debug"
	"syscall"

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
                                  trusted_proxies and logging.level change
                                  without dropping a request; a config that
                                  does not load is logged and the old one kept
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
		return runProxy(args, stderr)
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

func configFlag(name string, args []string, stderr io.Writer) (string, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "path to the YAML config file")
	if err := fs.Parse(args); err != nil {
		return "", false
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintf(stderr, "webtier %s: give the config file with -config FILE\n", name)
		return "", false
	}
	return *path, true
}

func validate(args []string, stdout, stderr io.Writer) int {
	path, ok := configFlag("validate", args, stderr)
	if !ok {
		return 2
	}
	if _, err := config.Load(path); err != nil {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stderr, "webtier: %s is not valid\n", path)
		return 1
	}
	fmt.Fprintf(stdout, "webtier: %s is valid\n", path)
	return 0
}

func runProxy(args []string, stderr io.Writer) int {
	path, ok := configFlag("run", args, stderr)
	if !ok {
		return 2
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

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads (systemctl reload, apachectl graceful's habit). It is
	// caught from here on: its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
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
	if rl.hup != nil {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-rl.hup:
					cfg = reload(cfg, srv, res, popts.Metrics, rl.level, log)
				}
			}
		}()
	}
	return srv.Serve(ctx)
}

// reload loads cur's file again and applies what can change while serving:
// routes, upstreams, trusted proxies and the log level. It returns the
// config now in force: cur when the file does not load or does not apply,
// so that a typo never takes the proxy down.
func reload(cur *config.Config, srv *proxy.Server, res *resolver.Resolver, m *upstream.Metrics, level zap.AtomicLevel, log *zap.Logger) *config.Config {
	next, err := config.Load(cur.File)
	if err != nil {
		log.Error("config reload failed; still serving the previous config", zap.String("config", cur.File), zap.Error(err))
		return cur
	}
	popts := next.Proxy
	popts.Metrics = m
	restart, err := srv.Reload(popts, res)
	if err != nil {
		log.Error("config reload failed; still serving the previous config", zap.String("config", cur.File), zap.Error(err))
		return cur
	}
	for _, name := range restart {
		log.Warn("listener changed; its address, TLS files and timeouts apply after a restart", zap.String("listener", name))
	}
	if !reflect.DeepEqual(next.Resolver, cur.Resolver) {
		log.Warn("resolver settings changed; they apply after a restart (the DNS cache is kept)")
	}
	if next.Logging.Format != cur.Logging.Format {
		log.Warn("logging.format changed; it applies after a restart")
	}
	if l, err := zapcore.ParseLevel(next.Logging.Level); err == nil {
		level.SetLevel(l)
	}
	log.Info("config reloaded", zap.String("config", cur.File))
	return next
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
