package main

import (
	"context"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/webtier/webtier/admin"
	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/proxy/frontend"
	"github.com/webtier/webtier/proxy/upstream"
)

// adminControls are the parts of the running process the admin status
// page shows and acts on.
func (r *running) adminControls(reloads chan<- reloadRequest, term chan<- os.Signal) admin.Controls {
	return admin.Controls{
		Pools:   func() []*upstream.Pool { return r.srv.Handler().Pools() },
		Names:   r.res,
		Config:  r.configInfo,
		Reload:  func(ctx context.Context) error { return askReload(ctx, reloads) },
		Drainer: signalDrain{srv: r.srv, term: term},
		Level:   &r.level,
		Version: versionString(),
	}
}

// signalDrain is the admin API's drain: the same as a SIGTERM (the drain
// starts, the listeners close after drain.wait and the process exits),
// queued on the channel stopOnSignals reads. Undrain ends a drain before
// the listeners close, as the "undrain (admin)" asks.
type signalDrain struct {
	srv  *frontend.Server
	term chan<- os.Signal
}

func (d signalDrain) Drain() {
	d.srv.Drain() // at once, so that the answer says draining
	select {
	case d.term <- syscall.SIGTERM:
	default: // a stop is queued already
	}
}
func (d signalDrain) Undrain() bool  { return d.srv.Undrain() == nil }
func (d signalDrain) Draining() bool { return d.srv.Draining() }

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
