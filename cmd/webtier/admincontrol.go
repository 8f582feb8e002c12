package main

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/webtier/webtier/admin"
	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/proxy/upstream"
)

// adminControls are the parts of the running process the admin status
// page shows and acts on.
func (r *running) adminControls(reloads chan<- reloadRequest) admin.Controls {
	return admin.Controls{
		Pools:   func() []*upstream.Pool { return r.srv.Handler().Pools() },
		Names:   r.res,
		Config:  r.configInfo,
		Reload:  func(ctx context.Context) error { return askReload(ctx, reloads) },
		Drainer: noDrain{log: r.log},
		Level:   &r.level,
		Version: versionString(),
	}
}

// noDrain stands in for the drain (issue 19 point 5, built on another
// branch): this webtier cannot drain yet, so Drain logs that and the
// status says "serving"; the admin API then answers 503 to a drain.
// Replace it with the real drainer when it is merged.
type noDrain struct{ log *zap.Logger }

func (d noDrain) Drain() {
	d.log.Warn("drain asked through the admin listener, but this webtier cannot drain; still serving")
}
func (noDrain) Undrain() bool  { return true }
func (noDrain) Draining() bool { return false }

// reloadRequest asks the reload loop, which also serves SIGHUP, for a
// reload; the result comes back on done.
type reloadRequest struct{ done chan error }

// askReload queues a reload in the same loop as SIGHUP, so that reloads
// never run two at a time, and waits for its result.
func askReload(ctx context.Context, reloads chan<- reloadRequest) error {
	req := reloadRequest{done: make(chan error, 1)}
	select {
	case reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loadedConfig is the config in effect, for the status page: reloads
// replace it.
type loadedConfig struct {
	mu  sync.Mutex
	cfg *config.Config
	at  time.Time
}

func (l *loadedConfig) set(cfg *config.Config) {
	l.mu.Lock()
	l.cfg, l.at = cfg, time.Now()
	l.mu.Unlock()
}

func (r *running) configInfo() admin.ConfigInfo {
	r.current.mu.Lock()
	cfg, at := r.current.cfg, r.current.at
	r.current.mu.Unlock()
	if cfg == nil {
		return admin.ConfigInfo{}
	}
	ci := admin.ConfigInfo{File: cfg.File, Hash: cfg.Hash, LoadedAt: at.UTC(),
		Listeners: []admin.Listener{}, Routes: []admin.Route{}}
	// Listeners are those the process started with: a reload does not
	// change them.
	for _, l := range r.started.Proxy.Listeners {
		ci.Listeners = append(ci.Listeners, admin.Listener{Name: l.Name, Address: l.Address, TLS: l.TLS != nil})
	}
	for _, rt := range cfg.Proxy.Routes {
		ci.Routes = append(ci.Routes, admin.Route{Host: rt.Host, Path: rt.PathPrefix, Upstream: rt.Upstream})
	}
	return ci
}
