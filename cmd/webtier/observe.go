package main

import (
	"fmt"
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"go.uber.org/zap"

	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/accesslog"
)

// newRegistry is the process's metrics registry, with the Go runtime,
// process and build collectors. Every other part registers its own
// collectors on it (resolver, upstream, proxy, access log; drain and
// admin features do the same).
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	promauto.With(reg).NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "webtier", Name: "build_info",
		Help: "Always 1; the labels say which webtier runs.",
	}, []string{"version", "goversion"}).WithLabelValues(versionString(), runtime.Version()).Set(1)
	return reg
}

// configMetrics count reloads and say which config file runs.
type configMetrics struct {
	reloads *prometheus.CounterVec // result
	info    *prometheus.GaugeVec   // hash
	success prometheus.Gauge
}

func newConfigMetrics(reg prometheus.Registerer) *configMetrics {
	f := promauto.With(reg)
	m := &configMetrics{
		reloads: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "webtier", Subsystem: "config", Name: "reloads_total",
			Help: "Config reloads (SIGHUP), by result: ok, or failed (the previous config kept serving).",
		}, []string{"result"}),
		info: f.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "webtier", Subsystem: "config", Name: "info",
			Help: "Always 1; hash is the first 16 hex digits of the SHA-256 of the config file in effect.",
		}, []string{"hash"}),
		success: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "webtier", Subsystem: "config", Name: "last_load_success_timestamp_seconds",
			Help: "When the config in effect was loaded (start or reload), in Unix seconds.",
		}),
	}
	m.reloads.WithLabelValues("ok")
	m.reloads.WithLabelValues("failed")
	return m
}

// loaded records cfg as the config in effect.
func (m *configMetrics) loaded(cfg *config.Config) {
	m.info.Reset()
	m.info.WithLabelValues(cfg.Hash).Set(1)
	m.success.SetToCurrentTime()
}

// setAccessLog sets opts's access log from al: the writer is made when a
// config first turns the log on and kept after (its dropped counter is
// registered once); a new path is opened before the reload goes on, so
// that a path webtier cannot write fails the reload, not the log.
func (r *running) setAccessLog(opts *proxy.Options, al config.AccessLog) error {
	if al.Format == accesslog.FormatOff {
		return nil
	}
	switch {
	case r.accessLog == nil:
		w, err := accesslog.New(accesslog.Options{Path: al.Path, Stdout: r.stdout, Registerer: r.reg,
			Log: r.log.Named("accesslog")})
		if err != nil {
			return fmt.Errorf("access_log.path: %w", err)
		}
		r.accessLog, r.accessLogPath = w, al.Path
	case al.Path != r.accessLogPath:
		if err := r.accessLog.SetPath(al.Path); err != nil {
			return fmt.Errorf("access_log.path: %w", err)
		}
		r.accessLogPath = al.Path
	}
	opts.AccessLog, opts.AccessLogFormat = r.accessLog, al.Format
	return nil
}

// reopenAccessLog is SIGUSR1: the file logrotate renamed is closed and
// the path opened again.
func (r *running) reopenAccessLog() {
	if r.accessLog == nil {
		r.log.Info("SIGUSR1: no access log to reopen")
		return
	}
	if err := r.accessLog.Reopen(); err != nil {
		r.log.Error("reopening the access log failed; lines still go to the old file", zap.String("path", r.accessLogPath), zap.Error(err))
		return
	}
	r.log.Info("access log reopened", zap.String("path", r.accessLogPath))
}

// closeAccessLog writes what is queued when webtier stops.
func (r *running) closeAccessLog() {
	if r.accessLog != nil {
		r.accessLog.Close()
	}
}
