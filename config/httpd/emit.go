package httpd

import (
	"fmt"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/webtier/webtier/proxy"
)

// This file turns what was read into listeners and routes, and writes the
// document.

func (t *translator) emitListeners(vhosts []*dir) {
	if len(t.listeners) == 0 {
		t.listeners = []*listenerOut{{addr: ":80", port: "80"}}
	}
	for _, l := range t.listeners {
		// TLS from the servers on this port.
		var tlsFrom []*server
		for _, s := range t.servers {
			if !s.ssl {
				continue
			}
			if s.vhost == nil || containsStr(s.ports, l.port) {
				tlsFrom = append(tlsFrom, s)
			}
		}
		if len(tlsFrom) > 0 {
			s := tlsFrom[0]
			tls := &obj{}
			if s.cert == "" || s.key == "" {
				for _, d := range s.sslSrc {
					t.mark(d, Left, "SSLEngine on needs SSLCertificateFile and SSLCertificateKeyFile in the same server")
				}
			} else {
				tls.set("cert_file", s.cert)
				tls.set("key_file", s.key)
				if s.minTLS != "" && t.has(TLSMin) {
					tls.set("min_version", s.minTLS)
				}
				l.keys.set("tls", tls)
				l.src = append(l.src, s.sslSrc...)
			}
			t.moreCertificates(l, tls, s, tlsFrom[1:])
		}
		// An "everything to https" rewrite of a server on this port.
		for _, s := range t.servers {
			if len(s.httpsRedirect) == 0 || (s.vhost != nil && !containsStr(s.ports, l.port)) {
				continue
			}
			if _, tls := l.keys.get("tls"); tls {
				continue
			}
			note := "listeners[].redirect_https: webtier answers 308 (the rule's own status aside) for every request of this listener but the health path, whatever virtual host it names"
			if !t.has(HTTPSOnly) {
				t.deferred = append(t.deferred, fmt.Sprintf("listener %s:\n%s", l.addr, commentOut("redirect_https", true)))
				note = missingNote(HTTPSOnly)
			} else {
				l.keys.set("redirect_https", true)
				l.src = append(l.src, s.httpsRedirect...)
			}
			for _, d := range s.httpsRedirect {
				if t.has(HTTPSOnly) {
					t.mark(d, Approx, note)
				} else {
					t.mark(d, Left, note)
				}
			}
		}
		for _, e := range t.listenerAll {
			l.keys.set(e.K, e.V)
		}
		if len(t.trusted) > 0 {
			l.keys.set("trusted_proxies", t.trusted)
		}
		t.proxyProtocol(l)
		if len(t.main.compress) > 0 {
			c := &obj{{"types", t.main.compress}, {"encodings", []string{"gzip"}}}
			if t.has(Compress) {
				l.keys.set("compress", c)
			} else {
				t.deferred = append(t.deferred, fmt.Sprintf("listener %s:\n%s", l.addr, commentOut("compress", c)))
			}
		}
	}
	for _, s := range t.servers {
		if s.chainSrc == nil {
			continue
		}
		cert := s.cert
		if cert == "" {
			cert = "CERT"
		}
		// webtier, as Go's TLS, reads the intermediates from the
		// certificate file; the importer does not write key material.
		t.mark(s.chainSrc, Left, fmt.Sprintf("webtier reads the intermediates from cert_file: cat %s %s > %s and set cert_file to that file", cert, s.chain, strings.TrimSuffix(cert, filepath.Ext(cert))+"-fullchain.pem"))
	}
	if t.main.chainSrc != nil && len(t.servers) > 0 && t.servers[0] != t.main {
		// the main server's chain is inherited by httpd's virtual hosts
		t.mark(t.main.chainSrc, Left, "webtier reads the intermediates from cert_file: append "+t.main.chain+" to each certificate file")
	}
	if len(t.ppExcept) > 0 && len(t.proxyProto) == 0 {
		for _, d := range t.ppExcept {
			t.mark(d, Unneeded, "RemoteIPProxyProtocol is not on")
		}
	}
	for _, d := range t.main.compressSrc {
		if t.has(Compress) {
			t.mark(d, Approx, "listeners[].compress with gzip; webtier skips bodies under compress.min_size, httpd compresses every size")
		} else {
			t.mark(d, Left, missingNote(Compress))
		}
	}
}

// moreCertificates adds the certificates of the other TLS servers on
// l's port to tls.certificates, where webtier picks one by SNI.
func (t *translator) moreCertificates(l *listenerOut, tls *obj, first *server, others []*server) {
	seen := map[string]bool{first.cert: true}
	var certs []any
	for _, o := range others {
		var certDir *dir
		for _, d := range o.sslSrc {
			if d.Is("SSLCertificateFile") {
				certDir = d
			}
		}
		if certDir == nil || seen[o.cert] {
			continue
		}
		if o.cert == "" || o.key == "" {
			t.mark(certDir, Left, "SSLEngine on needs SSLCertificateFile and SSLCertificateKeyFile in the same server")
			continue
		}
		seen[o.cert] = true
		if !t.has(Certs) {
			t.mark(certDir, Left, "a second certificate on one port (chosen by SNI): "+missingNote(Certs)+"; this import writes the first one only")
			continue
		}
		certs = append(certs, &obj{{"cert_file", o.cert}, {"key_file", o.key}})
		l.src = append(l.src, o.sslSrc...)
		t.mark(certDir, Approx, "listeners[].tls.certificates: webtier picks the certificate by the names it holds (exact, then wildcard, then the first), httpd by the virtual host's ServerName; the same when each certificate names its server")
		if o.minTLS != first.minTLS && o.minTLSSrc != nil {
			t.mark(o.minTLSSrc, Approx, "webtier's min_version is per listener: the first TLS server's on this port applies")
		}
	}
	if len(certs) > 0 {
		tls.set("certificates", certs)
	}
}

// rebase points a copied static key at the folder rel under its root.
func rebase(keys *obj, rel string) {
	v, ok := keys.get("static")
	if !ok {
		return
	}
	st := append(obj{}, *v.(*obj)...)
	root, _ := st.get("root")
	st.set("root", filepath.Join(root.(string), rel))
	keys.set("static", &st)
}

// lastRule returns the RewriteRule line of the first rule that carries
// [L] without answering the request (R, F, G), or nil.
func lastRule(rules []any, src []*dir) *dir {
	for _, r := range rules {
		f, _ := r.(*obj).get("flags")
		flags, _ := f.([]string)
		last, answers := false, false
		for _, fl := range flags {
			switch {
			case fl == "L":
				last = true
			case fl == "F" || fl == "G" || strings.HasPrefix(fl, "R"):
				answers = true
			}
		}
		if last && !answers {
			to, _ := r.(*obj).get("to")
			for _, d := range src {
				if d.Is("RewriteRule") && len(d.Args) > 1 && d.Args[1] == to {
					return d
				}
			}
		}
	}
	return nil
}

func containsStr(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// spec is one route of a server before hosts are applied.
type spec struct {
	path    string
	keys    obj // upstream, static, redirect, ...
	missing obj
	src     []*dir
	whole   bool // the route needs a key this webtier lacks: write it all as a comment
	// targetPath is the backend path of a remapped route.
	targetPath string
}

func (t *translator) emitServer(s *server, hosts []string) {
	var specs []*spec
	var order []*pass // passes that httpd can reach, in order
	for _, p := range s.passes {
		var by *pass
		for _, q := range order {
			if strings.HasPrefix(p.path, q.path) {
				by = q
				break
			}
		}
		if by != nil {
			if by.d != p.d {
				t.mark(p.d, Left, fmt.Sprintf("never reached: httpd takes ProxyPass lines in order, and %s (%s) matches first", by.path, t.pos(by.d)))
			}
			continue
		}
		order = append(order, p)
	}
	proxied := func(path string) *pass {
		for _, q := range order {
			if strings.HasPrefix(path, q.path) {
				if q.exclude {
					return nil
				}
				return q
			}
		}
		return nil
	}
	for _, p := range order {
		if p.exclude {
			continue
		}
		sp := &spec{path: p.path, src: []*dir{p.d}}
		if tp := targetPath(p); needsRemap(p.path, tp) && (tp == "" || tp == "/") {
			// To the backend's root: a target path of "/" means no
			// remapping, so the prefix is cut by a rewrite.
			if !strings.HasSuffix(p.path, "/") {
				t.mark(p.d, Left, fmt.Sprintf("%s to the backend's root: write it with a trailing slash on both sides (%s/ to .../)", p.path, p.path))
				continue
			}
			rw := []any{&obj{{"match", "^" + regexp.QuoteMeta(p.path) + "(.*)$"}, {"to", "/$1"}}}
			if !t.has(Rewrites) {
				t.mark(p.d, Left, fmt.Sprintf("%s maps to the backend's root: %s", p.path, missingNote(Rewrites)))
				sp.missing = obj{{"upstream", "(target " + p.target + ")"}, {"rewrites", rw}}
				sp.whole = true
				specs = append(specs, sp)
				continue
			}
			name, _, ok := t.upstreamFor(s, p)
			if !ok {
				continue
			}
			t.mark(p.d, Exact, "routes[].rewrites cut "+p.path+" (a target path / means no remapping)")
			sp.keys = obj{{"upstream", name}, {"rewrites", rw}}
			specs = append(specs, sp)
			continue
		}
		if tp := targetPath(p); needsRemap(p.path, tp) && !t.has(Remap) {
			t.mark(p.d, Left, fmt.Sprintf("%s maps to the backend path %s: %s", p.path, tp, missingNote(Remap)))
			sp.missing = obj{{"upstream", "(target " + p.target + ")"}}
			sp.whole = true
			specs = append(specs, sp)
			continue
		}
		name, _, ok := t.upstreamFor(s, p)
		if !ok {
			continue
		}
		if !strings.HasSuffix(p.path, "/") {
			t.mark(p.d, Approx, fmt.Sprintf("webtier matches %s as a string prefix, so %sx is routed here too; httpd matches whole path segments", p.path, p.path))
		}
		sp.keys = obj{{"upstream", name}}
		if tp := targetPath(p); needsRemap(p.path, tp) {
			sp.targetPath = tp
		}
		specs = append(specs, sp)
	}
	// Static files, redirects, exclusions.
	covered := map[string]bool{}
	for _, a := range s.aliases {
		if q := proxied(a.path); q != nil {
			t.mark(a.d, Left, fmt.Sprintf("never reached: ProxyPass %s (%s) takes these requests first in httpd; add ProxyPass %s ! before it to serve the files", q.path, t.pos(q.d), a.path))
			continue
		}
		covered[a.path] = true
		specs = append(specs, t.staticSpec(s, a.path, a.root, a.d))
	}
	for _, r := range s.redirects {
		if q := proxied(r.path); q != nil {
			t.mark(r.d, Left, fmt.Sprintf("never reached: ProxyPass %s (%s) takes these requests first in httpd", q.path, t.pos(q.d)))
			continue
		}
		covered[r.path] = true
		sp := &spec{path: r.path, src: []*dir{r.d}}
		red := &obj{{"to", r.to}, {"status", r.status}}
		if r.status == 410 {
			red = &obj{{"status", 410}}
		}
		if t.has(Redirect) {
			sp.keys = obj{{"redirect", red}}
			t.mark(r.d, Exact, "routes[].redirect (the rest of the path and the query are appended, as httpd does)")
		} else {
			sp.missing, sp.whole = obj{{"redirect", red}}, true
			t.mark(r.d, Left, missingNote(Redirect))
		}
		specs = append(specs, sp)
	}
	if s.docRoot != "" {
		if proxied("/") == nil {
			specs = append(specs, t.staticSpec(s, "/", s.docRoot, s.docRootSrc))
		} else {
			used := false
			for _, p := range order {
				if !p.exclude || covered[p.path] {
					continue
				}
				used = true
				specs = append(specs, t.staticSpec(s, p.path, filepath.Join(s.docRoot, p.path), p.d))
			}
			if !used {
				t.mark(s.docRootSrc, Unneeded, "never used: every request is proxied")
			}
		}
	} else {
		for _, p := range order {
			if p.exclude && !covered[p.path] && p.path == proxy.DefaultHealthPath {
				t.mark(p.d, Approx, "webtier answers "+p.path+" itself on every listener (health_path), for the load balancer in front; httpd served a file")
			} else if p.exclude && !covered[p.path] {
				t.mark(p.d, Left, "httpd answered these itself (no DocumentRoot: 404); webtier sends them to the route that covers them")
			}
		}
	}
	if s.indexSrc != nil {
		if _, ok := t.marks[s.indexSrc]; !ok {
			t.mark(s.indexSrc, Unneeded, "no static route uses it")
		}
	}
	// RewriteRule: mod_rewrite runs before ProxyPass and Alias, so the
	// rules go on every route of the server (before a route's own).
	rewritesDone := false
	if len(s.rewrites) > 0 && t.has(Rewrites) {
		for _, sp := range specs {
			_, proxied := sp.keys.get("upstream")
			_, static := sp.keys.get("static")
			if sp.whole || sp.redirects() || (!proxied && !static) {
				continue
			}
			all := append([]any{}, s.rewrites...)
			if own, ok := sp.keys.get("rewrites"); ok {
				all = append(all, own.([]any)...)
				if d := lastRule(s.rewrites, s.rewriteSrc); d != nil {
					t.mark(d, Approx, "its [L] also stops the rewrite that cuts "+sp.path+" on that route; httpd's ProxyPass maps the path after mod_rewrite")
				}
			}
			sp.keys.set("rewrites", all)
			sp.src = append(sp.src, s.rewriteSrc...)
			rewritesDone = true
		}
		for _, d := range s.rewriteSrc {
			if rewritesDone {
				t.mark(d, Exact, "routes[].rewrites, on every route of this server (httpd applies them before ProxyPass)")
			}
		}
	}
	// RedirectMatch (and RewriteRule, where no route took them) go on the
	// server's "/" route.
	if rewritesDone {
		s.rewrites = nil
	}
	if len(s.matches) > 0 || len(s.rewrites) > 0 {
		var root *spec
		for _, sp := range specs {
			if sp.path == "/" {
				root = sp
			}
		}
		if root == nil {
			root = &spec{path: "/"}
			specs = append(specs, root)
		}
		add := func(f Feature, key string, v []any, src []*dir, note string) {
			if len(v) == 0 {
				return
			}
			root.src = append(root.src, src...)
			if t.has(f) {
				root.keys.set(key, v)
				for _, d := range src {
					t.mark(d, Exact, note)
				}
				return
			}
			root.missing.set(key, v)
			for _, d := range src {
				t.mark(d, Left, missingNote(f))
			}
		}
		add(Redirect, "redirects", s.matches, s.matchSrc, "routes[].redirects (Go's RE2 regexp: no backreferences or lookaround, linear time)")
		add(Rewrites, "rewrites", s.rewrites, s.rewriteSrc, "routes[].rewrites")
		if len(root.keys) == 0 {
			root.whole = true
		}
	}
	// Location rules.
	for _, path := range s.locOrder {
		l := s.locs[path]
		if len(l.keys) == 0 && len(l.missing) == 0 {
			continue
		}
		var targets []*spec
		if path == "" {
			targets = specs
		} else {
			for _, sp := range specs {
				if sp.path == path {
					targets = append(targets, sp)
				}
			}
			if len(targets) == 0 {
				var cover *spec
				for _, sp := range specs {
					if strings.HasPrefix(path, sp.path) && (cover == nil || len(sp.path) > len(cover.path)) {
						cover = sp
					}
				}
				if cover == nil {
					for _, d := range l.src {
						t.mark(d, Left, "no route serves "+path)
					}
					continue
				}
				c := &spec{path: path, keys: append(obj{}, cover.keys...), missing: append(obj{}, cover.missing...), whole: cover.whole, src: append([]*dir{}, cover.src...)}
				// A static route serves the rest of the path under its root:
				// the narrower route's root is the folder under the cover's.
				rebase(&c.keys, strings.TrimPrefix(path, cover.path))
				rebase(&c.missing, strings.TrimPrefix(path, cover.path))
				specs = append(specs, c)
				targets = []*spec{c}
			}
		}
		for _, sp := range targets {
			if sp.redirects() {
				continue // a redirect route answers before any rule
			}
			_, proxied := sp.keys.get("upstream")
			for _, e := range l.keys {
				if e.K == "reverse" && !proxied {
					continue
				}
				merge(&sp.keys, e.K, e.V)
			}
			for _, e := range l.missing {
				if e.K == "reverse" && !proxied {
					continue
				}
				merge(&sp.missing, e.K, e.V)
			}
			sp.src = append(sp.src, l.src...)
		}
	}
	// webtier rewrites a backend's Location on every route unless told
	// not to; httpd only where ProxyPassReverse says so.
	if t.has(Reverse) {
		for _, sp := range specs {
			if _, proxied := sp.keys.get("upstream"); !proxied {
				continue
			}
			if _, rev := sp.keys.get("reverse"); !rev {
				sp.keys.set("reverse", &obj{{"enabled", false}})
				t.mark(sp.src[0], Exact, "reverse: {enabled: false}, as httpd has no ProxyPassReverse here")
			} else if tp := sp.targetPath; tp != "" && tp != sp.path {
				t.mark(sp.src[0], Approx, "webtier also rewrites the Path of the backend's cookies from "+tp+" to "+sp.path+" (reverse.cookie_path's default on a remapped route); httpd only with ProxyPassReverseCookiePath")
			}
		}
	}
	// Per-vhost compression that differs from the server-wide one.
	if s.vhost != nil && len(s.compressSrc) > len(t.main.compressSrc) {
		c := &obj{{"types", s.compress}, {"encodings", []string{"gzip"}}}
		for _, sp := range specs {
			if t.has(Compress) {
				sp.keys.set("compress", c)
			} else {
				sp.missing.set("compress", c)
			}
		}
		for _, d := range s.compressSrc[len(t.main.compressSrc):] {
			if t.has(Compress) {
				t.mark(d, Approx, "routes[].compress with gzip; webtier skips bodies under compress.min_size")
			} else {
				t.mark(d, Left, missingNote(Compress))
			}
		}
	}
	if len(hosts) == 1 && hosts[0] == "" {
		for _, d := range s.nameSrc {
			t.mark(d, Exact, "the only server answers every Host in httpd, so its routes are for any host")
		}
	}
	// Routes per host.
	for _, h := range hosts {
		for _, sp := range specs {
			r := &routeOut{host: h, path: sp.path, src: sp.src}
			if h != "" {
				r.keys = obj{{"host", h}}
			}
			r.keys = append(r.keys, kv{"path", sp.path})
			if sp.whole {
				r.missing = append(append(obj{}, sp.keys...), sp.missing...)
			} else {
				r.keys = append(r.keys, sp.keys...)
				r.missing = sp.missing
			}
			if dup := t.route(h, sp.path); dup != nil {
				for _, d := range sp.src {
					t.mark(d, Approx, fmt.Sprintf("host %q path %s is already routed from %s:%d; webtier's routes are for every listener, httpd chose the virtual host by the address the request came to", h, sp.path, t.rel(dup.src[0].File), dup.src[0].Line))
				}
				continue
			}
			t.routes = append(t.routes, r)
		}
	}
}

// redirects reports whether the route is a Redirect's.
func (sp *spec) redirects() bool {
	_, a := sp.keys.get("redirect")
	_, b := sp.missing.get("redirect")
	return a || b
}

// merge sets k to v under o; where both are mappings, v's keys are set
// into a copy of the one there, so that rules from the server and from a
// <Location> add up (ProxyPassReverseCookieDomain at the server level,
// ProxyPassReverse in the Location).
func merge(o *obj, k string, v any) {
	old, ok := o.get(k)
	om, isObj := old.(*obj)
	vm, vIsObj := v.(*obj)
	if !ok || !isObj || !vIsObj {
		o.set(k, v)
		return
	}
	m := append(obj{}, *om...)
	for _, e := range *vm {
		merge(&m, e.K, e.V)
	}
	o.set(k, &m)
}

func (t *translator) route(host, path string) *routeOut {
	for _, r := range t.routes {
		if r.host == host && r.path == path && len(r.src) > 0 {
			return r
		}
	}
	return nil
}

// staticSpec is a route that serves files from root.
func (t *translator) staticSpec(s *server, path, root string, d *dir) *spec {
	st := &obj{{"root", root}}
	if len(s.index) > 0 {
		st.set("index", s.index)
	}
	sp := &spec{path: path, src: []*dir{d}}
	if t.has(Static) {
		sp.keys = obj{{"static", st}}
		t.mark(d, Approx, "routes[].static: files only; webtier runs no scripts (CGI, PHP) and lists no directories, and names text types with charset=utf-8")
		if s.indexSrc != nil {
			t.mark(s.indexSrc, Exact, "routes[].static.index")
		}
	} else {
		sp.missing, sp.whole = obj{{"static", st}}, true
		t.mark(d, Left, missingNote(Static))
		if s.indexSrc != nil {
			t.mark(s.indexSrc, Left, missingNote(Static))
		}
	}
	return sp
}

// targetPath is the path part of a ProxyPass target, which a remapping
// route puts in place of its own path.
func targetPath(p *pass) string {
	if p.jkWorker != "" {
		return p.path
	}
	raw := p.target
	if strings.HasPrefix(strings.ToLower(raw), "balancer://") {
		rest := raw[len("balancer://"):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return rest[i:]
		}
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.EscapedPath()
}

// needsRemap reports whether a route for path sending to a target with
// path tp changes the path the backend sees.
func needsRemap(path, tp string) bool {
	if tp == path {
		return false
	}
	return !(path == "/" && (tp == "" || tp == "/"))
}

// --- the document ---------------------------------------------------------

func (t *translator) rel(file string) string {
	base := filepath.Dir(t.tree.Main)
	if r, err := filepath.Rel(base, file); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return file
}

// pos is d's file:line as the report writes it.
func (t *translator) pos(d *dir) string { return fmt.Sprintf("%s:%d", t.rel(d.File), d.Line) }

func (t *translator) from(ds []*dir) string {
	var parts []string
	seen := map[string]bool{}
	for _, d := range ds {
		p := fmt.Sprintf("%s:%d", t.rel(d.File), d.Line)
		if !seen[p] {
			seen[p] = true
			parts = append(parts, p)
		}
	}
	if len(parts) > 6 {
		parts = append(parts[:6], "...")
	}
	return "from " + strings.Join(parts, ", ")
}

func (t *translator) document(source string) *yaml.Node {
	top := &yaml.Node{Kind: yaml.MappingNode}
	add := func(key string, v *yaml.Node, comment string) {
		k := node(key)
		k.HeadComment = comment
		top.Content = append(top.Content, k, v)
	}
	ls := &yaml.Node{Kind: yaml.SequenceNode}
	for _, l := range t.listeners {
		n := node(append(obj{{"address", l.addr}}, l.keys...))
		if len(l.src) > 0 {
			n.HeadComment = t.from(l.src)
		}
		ls.Content = append(ls.Content, n)
	}
	head := "Written by webtier import-httpd"
	if source != "" {
		head += " from " + source
	}
	head += ". Check it against the report, then: webtier validate -config FILE"
	add("listeners", ls, head)
	if len(t.upstreams) > 0 {
		us := &yaml.Node{Kind: yaml.MappingNode}
		for _, u := range t.upstreams {
			k := node(u.name)
			k.HeadComment = t.from([]*dir{u.src})
			us.Content = append(us.Content, k, node(u.keys))
		}
		add("upstreams", us, "")
	}
	rs := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range t.routes {
		if _, hasUp := r.keys.get("upstream"); !hasUp && len(r.keys) <= 2 && len(r.missing) > 0 {
			// Nothing of the route loads here: all of it is a comment.
			t.deferred = append(t.deferred, t.from(r.src)+":\n"+commentOut("route", append(append(obj{}, r.keys...), r.missing...)))
			continue
		}
		n := node(r.keys)
		n.HeadComment = t.from(r.src)
		if len(r.missing) > 0 {
			n.HeadComment += "\nneeds keys this webtier lacks (see the report):\n" + commentOut("", r.missing)
		}
		rs.Content = append(rs.Content, n)
	}
	add("routes", rs, "")
	if len(t.resolver) > 0 {
		add("resolver", node(t.resolver), "addressttl= "+t.from(t.resolverSrc))
	}
	if len(t.accessLog) > 0 {
		add("access_log", node(t.accessLog), t.from([]*dir{t.logSrc}))
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{top}}
	if len(t.deferred) > 0 {
		doc.FootComment = "Not written, as this webtier lacks their keys (see the report):\n" + strings.Join(t.deferred, "\n")
	}
	return doc
}
