package httpd

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// This file reads mod_jk's workers.properties: worker.list and the
// worker.<name>.<property> lines, with their line numbers so the report can
// name them. reference= copies another worker's properties, as mod_jk does.

type jkProp struct {
	value string
	line  int
}

type jkWorkers struct {
	file    string
	list    []string
	workers map[string]map[string]jkProp
	order   []string
	lines   []jkLine // every property line, for the report
}

type jkLine struct {
	key  string
	line int
}

func readWorkers(path string) (*jkWorkers, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading mod_jk workers file: %w", err)
	}
	defer f.Close()
	w := &jkWorkers{file: path, workers: map[string]map[string]jkProp{}}
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: %q is not property=value", path, n, s)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		w.lines = append(w.lines, jkLine{k, n})
		if k == "worker.list" {
			for _, name := range strings.Split(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					w.list = append(w.list, name)
				}
			}
			continue
		}
		parts := strings.SplitN(k, ".", 3)
		if len(parts) != 3 || parts[0] != "worker" {
			continue
		}
		m := w.workers[parts[1]]
		if m == nil {
			m = map[string]jkProp{}
			w.workers[parts[1]] = m
			w.order = append(w.order, parts[1])
		}
		m[parts[2]] = jkProp{v, n}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	for _, name := range w.order {
		w.resolve(name, 0)
	}
	return w, nil
}

// resolve copies the properties of the worker named in reference= (and its
// own reference, up to a few levels) into name's, where name has none.
func (w *jkWorkers) resolve(name string, depth int) {
	m := w.workers[name]
	ref, ok := m["reference"]
	if !ok || depth > 8 {
		return
	}
	base := strings.TrimPrefix(ref.value, "worker.")
	w.resolve(base, depth+1)
	for k, v := range w.workers[base] {
		if _, has := m[k]; !has && k != "reference" {
			m[k] = v
		}
	}
}

func (w *jkWorkers) get(name, prop, def string) string {
	if p, ok := w.workers[name][prop]; ok {
		return p.value
	}
	return def
}

// jkTrue reads mod_jk's booleans: true, 1, on, yes (any case).
func jkTrue(s string) bool {
	switch strings.ToLower(s) {
	case "true", "1", "on", "yes":
		return true
	}
	return false
}

// --- JkWorkersFile, JkMount ----------------------------------------------------

func (t *translator) jkWorkersFile(c ctx, d *dir) {
	t.mark(d, Exact, "read by the importer: its workers become upstreams")
}

// jkMount turns JkMount PATTERN WORKER into a route: /* is /, /app/* the
// prefix /app/. JkUnMount becomes an exclusion, which in mod_jk wins over
// any JkMount whatever the order, so it goes first.
func (t *translator) jkMount(c ctx, d *dir) {
	args := d.Args
	pattern := c.location
	if pattern == "" || len(args) == 2 {
		if len(args) != 2 {
			t.mark(d, Left, "needs a URL pattern and a worker")
			return
		}
		pattern, args = args[0], args[1:]
	}
	worker := args[0]
	path := pattern
	if c.s.vhost == nil {
		t.jkMainDirs = append(t.jkMainDirs, d)
	}
	if !d.Is("JkUnMount") {
		switch {
		case t.jk == nil:
			t.mark(d, Left, "no JkWorkersFile names the workers")
			return
		case t.jk.workers[worker] == nil:
			t.mark(d, Left, fmt.Sprintf("no worker %s in %s", worker, t.jk.file))
			return
		case !containsStr(t.jk.list, worker):
			t.mark(d, Left, fmt.Sprintf("worker %s is not in worker.list, so mod_jk does not use it", worker))
			return
		}
	}
	switch {
	case strings.HasSuffix(pattern, "/*"):
		path = strings.TrimSuffix(pattern, "*")
	case strings.ContainsAny(pattern, "*?"):
		t.mark(d, Left, fmt.Sprintf("the pattern %s is not a path prefix (like /app/*); webtier routes by prefix", pattern))
		return
	default:
		t.mark(d, Approx, fmt.Sprintf("mod_jk matches %s exactly; webtier's route matches it as a prefix", pattern))
	}
	// The main server's mounts reach a virtual host only with JkMountCopy
	// (see run).
	main := c.s.vhost == nil
	if d.Is("JkUnMount") {
		c.s.passes = append([]*pass{{path: path, target: "!", exclude: true, d: d, jkMain: main}}, c.s.passes...)
		t.mark(d, Exact, "")
		return
	}
	c.s.passes = append(c.s.passes, &pass{path: path, target: "ajp://" + worker, jkWorker: worker, d: d, jkMain: main})
}

// jkMountCopy reads JkMountCopy: On in a virtual host, or All at the
// server level, gives virtual hosts the main server's JkMount lines.
func (t *translator) jkMountCopy(c ctx, d *dir) {
	v := strings.ToLower(first(d.Args))
	switch {
	case c.s.vhost != nil && (v == "on" || v == "all"):
		c.s.jkCopy = true
	case c.s.vhost == nil && v == "all":
		t.jkCopyAll = true
	}
	t.mark(d, Exact, "the server's JkMount lines are routes of the virtual hosts that copy them")
}

// jkUsed are the workers an upstream was built from, with how each
// property fared, for the report.
type jkUse struct {
	status Status
	note   string
}

// jkUpstream builds (once) the upstream of a mod_jk worker.
func (t *translator) jkUpstream(p *pass) (string, string, bool) {
	w := t.jk
	name := p.jkWorker
	if u, ok := t.byKey["jk:"+name]; ok {
		t.mark(p.d, Exact, "upstreams."+u.name)
		return u.name, "", true
	}
	if t.jkUsed == nil {
		t.jkUsed = map[string]map[string]jkUse{}
		t.jkLines = map[int]jkUse{}
	}
	// use records how a property fared, by its line: a property that a
	// worker takes from its reference= is reported at the referenced line.
	use := func(worker, prop string, s Status, note string) {
		if t.jkUsed[worker] == nil {
			t.jkUsed[worker] = map[string]jkUse{}
		}
		if p, ok := w.workers[worker][prop]; ok {
			t.jkLines[p.line] = jkUse{s, note}
		}
	}
	keys := obj{}
	var members []string
	switch typ := w.get(name, "type", "ajp13"); typ {
	case "ajp13":
		members = []string{name}
	case "lb":
		use(name, "type", Exact, "an upstream of several targets")
		bw := w.get(name, "balance_workers", w.get(name, "balanced_workers", ""))
		for _, m := range strings.Split(bw, ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		use(name, "balance_workers", Exact, "targets")
		use(name, "balanced_workers", Exact, "targets")
		if len(members) == 0 {
			t.mark(p.d, Left, fmt.Sprintf("lb worker %s has no balance_workers", name))
			return "", "", false
		}
		sticky := jkTrue(w.get(name, "sticky_session", "true"))
		use(name, "sticky_session", Exact, "balance: sticky on the JSESSIONID cookie and ;jsessionid= path parameter")
		if sticky {
			keys.set("balance", "sticky")
			if c := w.get(name, "session_cookie", "JSESSIONID"); c != "JSESSIONID" {
				keys.set("sticky_cookie", c)
				use(name, "session_cookie", Exact, "sticky_cookie")
			}
		} else {
			method := strings.ToUpper(w.get(name, "method", "R"))
			if strings.HasPrefix(method, "B") {
				keys.set("balance", "least_conn")
			} else {
				keys.set("balance", "round_robin")
			}
			use(name, "method", Approx, "R and T become round_robin, B least_conn")
		}
	default:
		t.mark(p.d, Left, fmt.Sprintf("worker type %s has no counterpart; webtier speaks AJP13 (ajp13, lb)", typ))
		return "", "", false
	}
	var targets []any
	secret := ""
	for _, m := range members {
		if w.get(m, "type", "ajp13") != "ajp13" {
			t.mark(p.d, Left, fmt.Sprintf("member %s is not an ajp13 worker", m))
			return "", "", false
		}
		host, port := w.get(m, "host", "localhost"), w.get(m, "port", "8009")
		use(m, "type", Exact, "ajp:// target")
		use(m, "host", Exact, "targets[].url")
		use(m, "port", Exact, "targets[].url")
		tg := &obj{{"url", "ajp://" + net.JoinHostPort(host, port)}}
		if len(members) > 1 || name != m {
			route := w.get(m, "route", m)
			if v, _ := keys.get("balance"); v == "sticky" {
				tg.set("route", route)
			}
			use(m, "route", Exact, "targets[].route (Tomcat's jvmRoute)")
			if f := w.get(m, "lbfactor", "1"); f != "1" {
				var n int
				if _, err := fmt.Sscan(f, &n); err == nil && n > 0 {
					tg.set("weight", n)
				}
			}
			use(m, "lbfactor", Exact, "targets[].weight")
		}
		switch a := strings.ToUpper(w.get(m, "activation", "A")); {
		case strings.HasPrefix(a, "A"):
			use(m, "activation", Exact, "")
		case strings.HasPrefix(a, "D"):
			tg.set("backup", true)
			use(m, "activation", Approx, "disabled becomes backup: webtier sends it new requests only when the others are down (mod_jk: only its own sticky sessions)")
		case strings.HasPrefix(a, "S"):
			use(m, "activation", Exact, "stopped: left out of the targets")
			continue
		}
		if s := w.get(m, "secret", w.get(name, "secret", "")); s != "" {
			if secret != "" && s != secret {
				use(m, "secret", Approx, "members with different secrets: webtier has one ajp.secret per upstream, the first one")
			} else {
				use(m, "secret", Exact, "ajp.secret")
			}
			if secret == "" {
				secret = s
			}
		}
		if v := w.get(m, "connection_pool_timeout", ""); v != "" {
			if d, err := httpdDuration(v, time.Second); err == nil && d > 0 {
				keys.set("idle_timeout", d)
				use(m, "connection_pool_timeout", Exact, "idle_timeout")
			}
		}
		if w.get(m, "ping_mode", "") != "" {
			use(m, "ping_mode", Approx, "webtier CPINGs a connection idle longer than ajp.cping_idle before using it; other ping modes have no counterpart")
		}
		if o, ok := (*tg)[0].V.(string); ok && len(*tg) == 1 {
			targets = append(targets, o)
		} else {
			targets = append(targets, tg)
		}
	}
	if name != members[0] || len(members) > 1 {
		if s := w.get(name, "secret", ""); s != "" {
			use(name, "secret", Exact, "ajp.secret")
		}
	}
	ajp := &obj{}
	if secret != "" {
		ajp.set("secret", secret)
	} else {
		ajp.set("secret_required", false)
	}
	out := obj{{"targets", targets}}
	out = append(out, sortedKeys(append(keys, kv{"ajp", ajp}))...)
	un := t.uniqueName(upstreamName(name))
	u := &upstreamOut{name: un, keys: out, src: p.d}
	t.upstreams = append(t.upstreams, u)
	t.byKey["jk:"+name] = u
	t.mark(p.d, Exact, "upstreams."+un)
	return un, "", true
}

// jkHomes are the workers file's settings for mod_jk's own use, which
// Debian's stock file has.
var jkHomes = map[string]bool{"workers.tomcat_home": true, "workers.java_home": true, "ps": true}

// reportWorkers adds a report line for every line of the workers file.
func (t *translator) reportWorkers() {
	w := t.jk
	for _, l := range w.lines {
		e := Entry{File: t.rel(w.file), Line: l.line, Directive: l.key, Status: Left}
		if l.key == "worker.list" {
			e.Status, e.Note = Exact, "the workers JkMount may name"
			t.extra = append(t.extra, e)
			continue
		}
		parts := strings.SplitN(l.key, ".", 3)
		if len(parts) == 3 {
			worker, prop := parts[1], parts[2]
			if u, ok := t.jkLines[l.line]; ok {
				e.Status, e.Note = u.status, u.note
			} else if t.jkUsed[worker] == nil && !t.jkReferenced(worker) {
				e.Status, e.Note = Unneeded, "no JkMount uses worker "+worker+", so httpd does not either"
			} else if prop == "reference" {
				e.Status, e.Note = Exact, "its properties were read"
			} else {
				e.Note = "property " + prop + " has no counterpart"
			}
		} else if jkHomes[l.key] {
			e.Status, e.Note = Unneeded, "mod_jk's own paths (Tomcat's and Java's homes, the path separator); webtier needs none"
		} else {
			e.Note = "no counterpart"
		}
		t.extra = append(t.extra, e)
	}
}

// jkReferenced reports whether a used worker takes its properties from
// worker (reference=).
func (t *translator) jkReferenced(worker string) bool {
	for name := range t.jkUsed {
		if p, ok := t.jk.workers[name]["reference"]; ok && strings.TrimPrefix(p.value, "worker.") == worker {
			return true
		}
	}
	return false
}
