package httpd

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file translates mod_proxy: ProxyPass and its worker parameters,
// <Proxy balancer://> with BalancerMember and ProxySet, ProxyPassReverse
// and the cookie rewrites, ProxyPreserveHost.

func (t *translator) proxyPass(c ctx, d *dir) {
	args := d.Args
	path := c.location
	if path == "" {
		if len(args) < 2 {
			t.mark(d, Left, "needs a path and a URL")
			return
		}
		path, args = args[0], args[1:]
	} else if len(args) < 1 {
		t.mark(d, Left, "needs a URL")
		return
	}
	p := &pass{path: path, target: args[0], params: args[1:], d: d, exclude: args[0] == "!"}
	c.s.passes = append(c.s.passes, p)
	if p.exclude {
		t.mark(d, Exact, "")
	}
}

// proxyPassMatch translates the one form a prefix route expresses:
// ^/prefix(.*)$ to URL/path$1.
var passMatchForm = regexp.MustCompile(`^\^(/[A-Za-z0-9_./~-]*)\(\.\*\)\$?$`)

func (t *translator) proxyPassMatch(c ctx, d *dir) {
	if len(d.Args) < 2 || c.location != "" {
		t.mark(d, Left, "only ProxyPassMatch regex URL at the server level is read")
		return
	}
	m := passMatchForm.FindStringSubmatch(d.Args[0])
	target := d.Args[1]
	if m == nil || !strings.HasSuffix(target, "$1") {
		t.mark(d, Left, "webtier routes by path prefix; only ^/prefix(.*)$ with URL$1 translates (to a route for /prefix); write the routes this expression stands for by hand")
		return
	}
	c.s.passes = append(c.s.passes, &pass{path: m[1], target: strings.TrimSuffix(target, "$1"), params: d.Args[2:], d: d})
	t.mark(d, Exact, "a prefix route for "+m[1])
}

func (t *translator) preserveHost(c ctx, d *dir) {
	c.s.preserveHost = strings.EqualFold(first(d.Args), "on")
	c.s.preserveSrc = d
	if c.s.preserveHost {
		t.mark(d, Exact, "webtier's default: the client's Host goes to the backend")
	} else {
		t.mark(d, Exact, "upstreams' host_header")
	}
}

func (t *translator) proxySection(c ctx, d *dir) {
	name := strings.ToLower(first(d.Args))
	if !strings.HasPrefix(name, "balancer://") {
		t.mark(d, Left, "only <Proxy balancer://...> is read")
		return
	}
	// Read when a ProxyPass uses it (upstreamFor); run reports an unused
	// one.
}

// target is one backend of an upstream as read from httpd.
type target struct {
	scheme, host, port, path string
	params                   []string
	d                        *dir
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return target{}, fmt.Errorf("%q is not a URL like http://host:port/", raw)
	}
	tg := target{scheme: strings.ToLower(u.Scheme), host: u.Hostname(), port: u.Port(), path: u.EscapedPath()}
	return tg, nil
}

func (tg target) base() string {
	h := tg.host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if tg.port != "" {
		h += ":" + tg.port
	}
	return tg.scheme + "://" + h
}

// hostHeader is the Host httpd sends with ProxyPreserveHost Off: the
// target's host, with its port unless it is the scheme's default.
func (tg target) hostHeader() string {
	if tg.port == "" || (tg.scheme == "http" && tg.port == "80") || (tg.scheme == "https" && tg.port == "443") {
		return tg.host
	}
	return net.JoinHostPort(tg.host, tg.port)
}

// workerParam is how one worker parameter (ProxyPass key=value, or
// BalancerMember's) becomes upstream keys.
type workerParam struct {
	status Status
	note   string
	apply  func(u *upstreamBuild, tg int, v string) error
}

// upstreamBuild collects an upstream's keys while its ProxyPass and
// members are read.
type upstreamBuild struct {
	keys    obj
	targets []*obj
	missing obj
	notes   []string
	t       *translator
	d       *dir
}

func durParam(key string) func(u *upstreamBuild, _ int, v string) error {
	return func(u *upstreamBuild, _ int, v string) error {
		d, err := httpdDuration(v, time.Second)
		if err != nil {
			return err
		}
		setPath(&u.keys, key, d)
		return nil
	}
}

// setPath sets a dotted key under o.
func setPath(o *obj, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		o = o.sub(p)
	}
	o.set(parts[len(parts)-1], v)
}

var workerParams map[string]workerParam

func init() {
	workerParams = map[string]workerParam{
		"connectiontimeout": {Exact, "connect_timeout", durParam("connect_timeout")},
		"timeout": {Approx, "response_header_timeout: webtier bounds the wait for the response head, httpd each wait for the backend",
			durParam("response_header_timeout")},
		"ttl": {Exact, "idle_timeout", durParam("idle_timeout")},
		"retry": {Approx, "ejection.backoff_base: httpd keeps a failed worker out for retry, webtier backs off from backoff_base, doubling up to backoff_cap",
			func(u *upstreamBuild, _ int, v string) error {
				d, err := httpdDuration(v, time.Second)
				if err != nil {
					return err
				}
				if d == 0 {
					return fmt.Errorf("retry=0 (retry at once) has no counterpart; webtier's ejection backoff applies")
				}
				setPath(&u.keys, "ejection.backoff_base", d)
				return nil
			}},
		"disablereuse": {Exact, "max_idle_per_address: 0", func(u *upstreamBuild, _ int, v string) error {
			if strings.EqualFold(v, "on") {
				u.keys.set("max_idle_per_address", 0)
			}
			return nil
		}},
		"enablereuse": {Exact, "webtier reuses backend connections", func(*upstreamBuild, int, string) error { return nil }},
		"keepalive": {Approx, "webtier's backend connections send TCP keep-alive probes every 30s",
			func(*upstreamBuild, int, string) error { return nil }},
		"addressttl": {Approx, "resolver.min_ttl and max_ttl: webtier re-resolves every upstream name when this time is up (one resolver for all upstreams)",
			func(u *upstreamBuild, _ int, v string) error {
				d, err := httpdDuration(v, time.Second)
				if err != nil || d == 0 {
					return fmt.Errorf("addressttl=%s: only a positive number of seconds translates", v)
				}
				if prev, ok := u.t.resolver.get("max_ttl"); ok && prev.(time.Duration) != d {
					u.notes = append(u.notes, fmt.Sprintf("addressttl differs between workers; the resolver takes one value, %s", durationString(min(prev.(time.Duration), d))))
					d = min(prev.(time.Duration), d)
				}
				u.t.resolver.set("min_ttl", d)
				u.t.resolver.set("max_ttl", d)
				u.t.resolverSrc = append(u.t.resolverSrc, u.d)
				return nil
			}},
		"secret": {Exact, "ajp.secret", func(u *upstreamBuild, _ int, v string) error {
			setPath(&u.keys, "ajp.secret", v)
			return nil
		}},
		"ping": {Approx, "webtier sends a CPING on AJP connections idle longer than ajp.cping_idle, not before every request",
			func(*upstreamBuild, int, string) error { return nil }},
		"route": {Exact, "targets[].route", func(u *upstreamBuild, i int, v string) error {
			u.targets[i].set("route", v)
			return nil
		}},
		"loadfactor": {Exact, "targets[].weight", func(u *upstreamBuild, i int, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return fmt.Errorf("loadfactor %q is not a positive number", v)
			}
			if n != 1 {
				u.targets[i].set("weight", n)
			}
			return nil
		}},
		"status": {Exact, "targets[].backup for +H", func(u *upstreamBuild, i int, v string) error {
			switch strings.ToUpper(v) {
			case "+H", "H":
				u.targets[i].set("backup", true)
				return nil
			}
			return fmt.Errorf("status=%s: only +H (hot standby) translates, to backup", v)
		}},
		"hcmethod": {Exact, "health_check.method", func(u *upstreamBuild, _ int, v string) error {
			switch m := strings.ToUpper(v); m {
			case "GET", "HEAD", "OPTIONS":
				setPath(&u.keys, "health_check.method", m)
			case "CPING":
				u.keys.sub("health_check")
			default:
				return fmt.Errorf("hcmethod=%s has no counterpart: webtier checks with an HTTP request (AJP: CPING)", v)
			}
			return nil
		}},
		"hcuri": {Exact, "health_check.path", func(u *upstreamBuild, _ int, v string) error {
			setPath(&u.keys, "health_check.path", v)
			return nil
		}},
		"hcinterval": {Exact, "health_check.interval", durParam("health_check.interval")},
		"hcpasses":   {Exact, "health_check.rise", intParam("health_check.rise")},
		"hcfails":    {Exact, "health_check.fall", intParam("health_check.fall")},
		// Balancer parameters (ProxySet, or ProxyPass to a balancer).
		"lbmethod": {Exact, "balance", func(u *upstreamBuild, _ int, v string) error {
			switch strings.ToLower(v) {
			case "byrequests":
				u.setBalance("round_robin")
			case "bybusyness":
				u.setBalance("least_conn")
			case "bytraffic":
				u.setBalance("least_conn")
				u.notes = append(u.notes, "lbmethod=bytraffic: webtier balances by active requests (least_conn), not bytes")
			default:
				return fmt.Errorf("lbmethod=%s has no counterpart", v)
			}
			return nil
		}},
		"stickysession": {Exact, "balance: sticky (cookie and ;jsessionid= path parameter, as httpd)", func(u *upstreamBuild, _ int, v string) error {
			name, _, _ := strings.Cut(v, "|")
			u.keys.set("balance", "sticky")
			if name != "JSESSIONID" {
				u.keys.set("sticky_cookie", name)
			}
			return nil
		}},
		"maxattempts": {Approx, "retries.tries: webtier retries only what is safe to retry", func(u *upstreamBuild, _ int, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return fmt.Errorf("maxattempts %q is not a number", v)
			}
			setPath(&u.keys, "retries.tries", n+1)
			return nil
		}},
		"nofailover": {Exact, "Off: webtier sends a request whose target is down to another", func(u *upstreamBuild, _ int, v string) error {
			if strings.EqualFold(v, "off") {
				return nil
			}
			return fmt.Errorf("nofailover=On has no counterpart: webtier sends a sticky request to another target when its own is down")
		}},
	}
}

func intParam(key string) func(u *upstreamBuild, _ int, v string) error {
	return func(u *upstreamBuild, _ int, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("%q is not a positive number", v)
		}
		setPath(&u.keys, key, n)
		return nil
	}
}

func (u *upstreamBuild) setBalance(b string) {
	if v, ok := u.keys.get("balance"); ok && v == "sticky" {
		return // stickysession wins; the method picks a target for a new session
	}
	u.keys.set("balance", b)
}

// params applies key=value worker parameters from d to target i (or the
// whole upstream, -1).
func (u *upstreamBuild) params(d *dir, i int, params []string) {
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			u.t.mark(d, Approx, fmt.Sprintf("%q is not key=value; ignored", p))
			continue
		}
		wp, known := workerParams[strings.ToLower(k)]
		if !known {
			u.t.mark(d, Approx, fmt.Sprintf("parameter %s has no counterpart and is left", k))
			continue
		}
		if i < 0 && (k == "route" || k == "loadfactor" || k == "status") {
			if len(u.targets) != 1 {
				u.t.mark(d, Approx, fmt.Sprintf("parameter %s belongs on a BalancerMember; left", k))
				continue
			}
			i = 0
		}
		if err := wp.apply(u, i, v); err != nil {
			u.t.mark(d, Approx, err.Error())
			continue
		}
		u.t.mark(d, wp.status, strings.ToLower(k)+": "+wp.note)
	}
	for _, n := range u.notes {
		u.t.mark(d, Approx, n)
	}
	u.notes = nil
}

// upstreamFor returns the name of the upstream p sends to, building it on
// first use, and the path part of its target URL (for remapping).
func (t *translator) upstreamFor(s *server, p *pass) (name, path string, ok bool) {
	if p.jkWorker != "" {
		return t.jkUpstream(p)
	}
	raw := p.target
	low := strings.ToLower(raw)
	b := &upstreamBuild{t: t, d: p.d}
	var members []target
	balancer := ""
	switch {
	case strings.HasPrefix(low, "balancer://"):
		rest := raw[len("balancer://"):]
		bname, bpath, _ := strings.Cut(rest, "/")
		path = "/" + bpath
		if bpath == "" && !strings.HasSuffix(raw, "/") {
			path = ""
		}
		balancer = "balancer://" + strings.ToLower(bname)
		sec := t.balancers[balancer]
		if sec == nil {
			t.mark(p.d, Left, fmt.Sprintf("no <Proxy %s> defines this balancer", balancer))
			return "", "", false
		}
		t.usedBalancers[balancer] = struct{}{}
		t.mark(sec, Exact, "upstreams."+upstreamName(bname))
		for _, m := range sec.Children {
			switch {
			case m.Is("BalancerMember") && len(m.Args) > 0:
				tg, err := parseTarget(m.Args[0])
				if err != nil {
					t.mark(m, Left, err.Error())
					continue
				}
				tg.params, tg.d = m.Args[1:], m
				t.mark(m, Exact, "targets[]")
				members = append(members, tg)
			case m.Is("ProxySet"):
				t.mark(m, Exact, "")
			default:
				t.mark(m, Left, "not read inside <Proxy balancer://>")
			}
		}
		if len(members) == 0 {
			t.mark(p.d, Left, "the balancer has no members")
			return "", "", false
		}
		name = upstreamName(bname)
	default:
		tg, err := parseTarget(raw)
		if err != nil {
			t.mark(p.d, Left, err.Error())
			return "", "", false
		}
		path = tg.path
		members = []target{tg}
		name = upstreamName(tg.host + "_" + tg.port)
	}
	protocol := ""
	for i := range members {
		switch members[i].scheme {
		case "h2", "h2c":
			// mod_proxy_http2: HTTP/2 over TLS, or in clear text.
			if !t.has(UpProto) {
				t.mark(p.d, Left, "HTTP/2 to the backend: "+missingNote(UpProto))
				return "", "", false
			}
			protocol = members[i].scheme
			members[i].scheme = map[string]string{"h2": "https", "h2c": "http"}[protocol]
			t.mark(p.d, Exact, "upstreams' protocol: "+protocol)
		}
		switch members[i].scheme {
		case "http", "https", "ajp":
		case "ws", "wss":
			members[i].scheme = strings.Replace(members[i].scheme, "ws", "http", 1)
			t.mark(p.d, Approx, "ws:// becomes http://: webtier forwards WebSocket upgrades on http upstreams")
		default:
			t.mark(p.d, Left, fmt.Sprintf("scheme %s:// has no counterpart; webtier speaks http, https and ajp to backends", members[i].scheme))
			return "", "", false
		}
		if members[i].scheme != members[0].scheme && (members[i].scheme == "ajp") != (members[0].scheme == "ajp") {
			t.mark(p.d, Left, "a balancer mixing ajp:// and http:// members; split it in two")
			return "", "", false
		}
	}
	// Targets.
	for _, m := range members {
		o := &obj{{"url", m.base()}}
		if t.has(Remap) && needsRemap(p.path, path) {
			o.set("url", m.base()+path)
		}
		b.targets = append(b.targets, o)
	}
	if s.proxyTimeout > 0 {
		b.keys.set("response_header_timeout", s.proxyTimeout)
	}
	if !s.preserveHost && members[0].scheme != "ajp" {
		hosts := map[string]bool{}
		for _, m := range members {
			hosts[m.hostHeader()] = true
		}
		if len(hosts) == 1 {
			b.keys.set("host_header", members[0].hostHeader())
			if s.preserveSrc == nil {
				t.mark(p.d, Exact, "httpd's default ProxyPreserveHost Off: host_header "+members[0].hostHeader())
			}
		} else {
			t.mark(p.d, Approx, "ProxyPreserveHost Off sends each member's own host; webtier sends the client's Host to all (set host_header if the backends need one name)")
		}
	}
	if members[0].scheme == "ajp" {
		setPath(&b.keys, "ajp.secret_required", false)
	}
	if protocol != "" {
		b.keys.set("protocol", protocol)
	}
	if members[0].scheme == "https" && len(s.proxyTLS) > 0 && t.has(UpTLS) {
		tls := append(obj{}, s.proxyTLS...)
		b.keys.set("tls", &tls)
	}
	// Balancer parameters: ProxySet lines, then the ProxyPass line's own.
	if balancer != "" {
		b.keys.set("balance", "round_robin") // httpd's default lbmethod=byrequests
		for _, m := range t.balancers[balancer].Children {
			if m.Is("ProxySet") {
				b.params(m, -1, m.Args)
			}
		}
	}
	for i, m := range members {
		b.params(m.d, i, m.params)
	}
	b.params(p.d, -1, p.params)
	if hc, ok := b.keys.get("health_check"); ok {
		// mod_proxy_hcheck's own defaults, where webtier's differ.
		h := hc.(*obj)
		for _, d := range []kv{{"interval", 30 * time.Second}, {"rise", 1}, {"fall", 1}} {
			if _, set := h.get(d.K); !set {
				h.set(d.K, d.V)
			}
		}
	}
	if m, ok := b.keys.get("ajp"); ok {
		if _, has := m.(*obj).get("secret"); has {
			*m.(*obj) = removeKey(*m.(*obj), "secret_required")
		}
	}
	if v, _ := b.keys.get("balance"); v == "sticky" {
		for i, tg := range b.targets {
			if _, ok := tg.get("route"); !ok {
				t.mark(p.d, Approx, fmt.Sprintf("stickysession needs a route= on every member; member %d has none, so balancing is round_robin", i+1))
				b.keys.set("balance", "round_robin")
				b.keys = removeKey(b.keys, "sticky_cookie")
				break
			}
		}
	}
	// Write the targets: a plain URL when it has no other key.
	var ts []any
	for _, tg := range b.targets {
		if len(*tg) == 1 {
			ts = append(ts, (*tg)[0].V)
		} else {
			ts = append(ts, tg)
		}
	}
	keys := obj{{"targets", ts}}
	keys = append(keys, sortedKeys(b.keys)...)
	// Two ProxyPass lines to the same backends with the same keys share
	// one upstream.
	id := string(render(node(keys)))
	if u, ok := t.byKey[id]; ok {
		t.mark(p.d, Exact, "upstreams."+u.name)
		return u.name, path, true
	}
	name = t.uniqueName(name)
	u := &upstreamOut{name: name, keys: keys, src: p.d}
	if balancer != "" {
		u.src = t.balancers[balancer]
	}
	t.upstreams = append(t.upstreams, u)
	t.byKey[id] = u
	t.mark(p.d, Exact, "upstreams."+name)
	return name, path, true
}

// sortedKeys puts an upstream's keys in the order of the README.
func sortedKeys(o obj) obj {
	order := []string{"connect_timeout", "response_header_timeout", "idle_timeout", "max_idle_per_address", "host_header",
		"balance", "sticky_cookie", "ejection", "retries", "ajp", "protocol", "tls", "health_check"}
	rank := func(k string) int {
		for i, o := range order {
			if o == k {
				return i
			}
		}
		return len(order)
	}
	out := append(obj{}, o...)
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i].K) < rank(out[j].K) })
	return out
}

func removeKey(o obj, k string) obj {
	out := o[:0]
	for _, e := range o {
		if e.K != k {
			out = append(out, e)
		}
	}
	return out
}

var nameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func upstreamName(s string) string {
	s = strings.Trim(nameChars.ReplaceAllString(s, "_"), "_")
	if s == "" {
		return "backend"
	}
	return s
}

func (t *translator) uniqueName(n string) string {
	taken := func(n string) bool {
		for _, u := range t.upstreams {
			if u.name == n {
				return true
			}
		}
		return false
	}
	if !taken(n) {
		return n
	}
	for i := 2; ; i++ {
		if c := fmt.Sprintf("%s_%d", n, i); !taken(c) {
			return c
		}
	}
}

// --- ProxyPassReverse -----------------------------------------------------

func (t *translator) proxyPassReverse(c ctx, d *dir) {
	path := c.location
	if path == "" && len(d.Args) >= 1 {
		path = d.Args[0]
	}
	t.locKey(c.s, path, d, Reverse, "reverse", &obj{{"enabled", true}},
		Exact, "routes[].reverse: Location, Content-Location, URI and Refresh rewritten from the backend's address to the client's")
}

func (t *translator) reverseCookie(c ctx, d *dir) {
	if len(d.Args) < 2 {
		t.mark(d, Left, "needs two arguments")
		return
	}
	key := "cookie_domain"
	if d.Is("ProxyPassReverseCookiePath") {
		key = "cookie_path"
	}
	l := c.s.loc(c.location)
	rev := &obj{{"enabled", true}}
	target := &l.keys
	if !t.has(Reverse) {
		target = &l.missing
	}
	if v, ok := target.get("reverse"); ok {
		rev = v.(*obj)
	} else {
		target.set("reverse", rev)
	}
	rev.sub(key).set(d.Args[0], d.Args[1])
	l.src = append(l.src, d)
	if t.has(Reverse) {
		t.mark(d, Exact, "routes[].reverse."+key)
	} else {
		t.mark(d, Left, missingNote(Reverse))
	}
}

func missingNote(f Feature) string {
	return fmt.Sprintf("this webtier's config has no %s key yet (session 16's route rules and TLS keys); written as a comment in the output", f)
}

// locKey sets a route key for the routes of path (or the whole server for
// ""), or keeps it for the comment when this webtier lacks the feature.
func (t *translator) locKey(s *server, path string, d *dir, f Feature, key string, v any, st Status, note string) {
	l := s.loc(path)
	l.src = append(l.src, d)
	if !t.has(f) {
		l.missing.set(key, v)
		t.mark(d, Left, missingNote(f))
		return
	}
	l.keys.set(key, v)
	t.mark(d, st, note)
}
