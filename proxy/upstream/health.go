package upstream

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/webtier/webtier/proxy/upstream/ajp"
)

// healthLoop runs the active health check of every address in DNS every
// Interval, at most one check in flight per address. A failure counts like
// a failed connect (the first makes the address suspect, Fall in a row eject
// it); suspect and ejected addresses are brought back by their probe loop,
// which uses the same check (Rise in a row for an ejected one). Health state
// lives on the endpoint, so it survives DNS refreshes for addresses that
// stay in the answer.
func (p *Pool) healthLoop() {
	hc := p.opts.HealthCheck
	t := time.NewTicker(hc.Interval)
	defer t.Stop()
	var mu sync.Mutex
	busy := map[*Endpoint]bool{}
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		}
		for _, e := range p.active.Load().eps {
			if !e.State().takesRequests() {
				continue
			}
			mu.Lock()
			if busy[e] {
				mu.Unlock()
				continue
			}
			busy[e] = true
			mu.Unlock()
			p.goBackground("health check", func() {
				defer func() {
					mu.Lock()
					delete(busy, e)
					mu.Unlock()
				}()
				if err := p.check(e); err != nil {
					p.failure(e, hc.Fall, "health check failed: "+err.Error())
				} else if e.fails.Load() != 0 {
					e.fails.Store(0)
				}
			})
		}
	}
}

// check sends one health-check request to e on a new connection, as an L4
// checker does, so a dead address cannot hide behind a pooled connection.
func (p *Pool) check(e *Endpoint) error {
	hc := p.opts.HealthCheck
	ctx, cancel := context.WithTimeout(p.ctx, hc.Timeout)
	defer cancel()
	if at, ok := e.transport.(*ajp.Transport); ok {
		return at.CPing(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, hc.Method, e.scheme+"://"+e.hostport+hc.Path, nil)
	if err != nil {
		return err
	}
	req.Host = hc.Host
	if req.Host == "" {
		req.Host = e.target.Host
	}
	req.Header.Set("User-Agent", "webtier-health-check")
	req.Close = true
	resp, err := p.checkTransport(e).RoundTrip(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < hc.ExpectMin || resp.StatusCode > hc.ExpectMax {
		return fmt.Errorf("status %d, want %d-%d", resp.StatusCode, hc.ExpectMin, hc.ExpectMax)
	}
	return nil
}

// checkTransport returns a transport for health checks of e: no keep-alive,
// the same TLS settings as requests, and a dialer that does not count its
// failures as request connect failures (the checker counts them itself).
func (p *Pool) checkTransport(e *Endpoint) *http.Transport {
	tr := &http.Transport{
		Proxy:             nil,
		DialContext:       e.dialer.DialContext,
		DisableKeepAlives: true,
		// A copy: net/http may set NextProtos on the one it is given,
		// and e.tlsConfig is in use by the endpoint's handshakes.
		TLSClientConfig: e.tlsConfig.Clone(),
	}
	// The check speaks what requests speak: an h2c or h2-only backend
	// (a gRPC server) does not answer HTTP/1.1.
	switch pr := p.opts.Protocol; {
	case pr == ProtocolH2C && e.tlsConfig == nil:
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetUnencryptedHTTP2(true)
	case pr == ProtocolH2 && e.tlsConfig != nil:
		tr.Protocols = new(http.Protocols)
		tr.Protocols.SetHTTP2(true)
	case e.tlsConfig != nil && pr != ProtocolHTTP1:
		tr.ForceAttemptHTTP2 = true
	}
	return tr
}
