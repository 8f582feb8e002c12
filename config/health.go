package config

import (
	"slices"
	"strings"

	"github.com/webtier/webtier/proxy"
)

// listenersHealth sets each listener's health endpoint: health_path,
// health_fail_status and health_requires (upstream names). out holds
// the listeners built from raw, in order.
func (c *checker) listenersHealth(raw []rawListener, out []proxy.ListenerOptions, ups entries[rawUpstream]) {
	names := make([]string, 0, len(ups))
	for _, e := range ups {
		names = append(names, e.Key)
	}
	for i := range min(len(raw), len(out)) {
		r, l := raw[i], &out[i]
		l.HealthPath = c.listenerHealthPath(r.HealthPath)
		l.HealthFailStatus = c.intRange(r.HealthFailStatus, 400, 599, proxy.DefaultHealthFailStatus)
		for _, n := range r.HealthRequires.V {
			c.routeUpstream(n, names)
			l.HealthRequires = append(l.HealthRequires, n.V)
		}
	}
}

// listenerHealthPath checks health_path: a plain path, matched after the
// same cleaning as a routed path, so it must be clean itself; "" turns
// the endpoint off.
func (c *checker) listenerHealthPath(f field[string]) string {
	const like = "write a plain path like /health_check.html, or \"\" for no health endpoint"
	switch {
	case !f.Set:
		return proxy.DefaultHealthPath
	case f.V == "":
		return ""
	case !strings.HasPrefix(f.V, "/"):
		c.errorf(f.loc, `%q does not start with "/"; %s`, f.V, like)
		return proxy.DefaultHealthPath
	}
	if i := strings.IndexFunc(f.V, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune("?#%;\\", r) }); i >= 0 {
		c.errorf(f.loc, "%q contains %q; %s", f.V, f.V[i], like)
		return proxy.DefaultHealthPath
	}
	segs := strings.Split(f.V[1:], "/")
	if slices.ContainsFunc(segs[:len(segs)-1], func(s string) bool { return s == "" }) ||
		slices.Contains(segs, ".") || slices.Contains(segs, "..") {
		c.errorf(f.loc, `%q is not a clean path (no "//", "." or ".." segments); %s`, f.V, like)
		return proxy.DefaultHealthPath
	}
	return f.V
}

// drain reads the drain section.
func (c *checker) drain(r *rawDrain) proxy.DrainOptions {
	return proxy.DrainOptions{
		Wait:    c.durationOrOff(r.Wait, proxy.DefaultDrainWait, -1, "20s"),
		Timeout: c.duration(r.Timeout, proxy.DefaultDrainTimeout),
	}
}
