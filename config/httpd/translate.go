// Package httpd turns an Apache httpd configuration (read by
// internal/httpdconf), with mod_jk's workers.properties, into a webtier
// config file and a report of what became of every directive: translated
// exactly, approximately (and how webtier differs), left (and why), or not
// needed. It is the engine of `webtier import-httpd`.
//
// Every directive goes through one table (handlers, below) to the keys it
// becomes; keys that this webtier's config package does not know yet (see
// Feature) are written as comments and reported as left, so that the output
// always loads in the webtier that wrote it.
package httpd

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/webtier/webtier/internal/httpdconf"
)

// Options adjust a translation.
type Options struct {
	// Has says whether the config package accepts a feature's keys (see
	// Probe). Nil: only the keys every build has.
	Has func(Feature) bool
	// Source names the input in the output's first comment.
	Source string
}

// Result is a translation.
type Result struct {
	YAML   []byte
	Report *Report
}

type dir = httpdconf.Directive

type translator struct {
	has     func(Feature) bool
	tree    *httpdconf.Tree
	marks   map[*dir]*Entry
	extra   []Entry // workers.properties lines
	main    *server
	servers []*server

	listeners   []*listenerOut
	upstreams   []*upstreamOut
	byKey       map[string]*upstreamOut
	routes      []*routeOut
	resolver    obj
	resolverSrc []*dir
	accessLog   obj
	logSrc      *dir
	logExact    bool // logSrc's format is written as httpd writes it
	deferred    []string
	balancers   map[string]*dir
	jk          *jkWorkers
	jkDir       *dir
	logFormat   map[string]string
	trusted     []string // RemoteIPTrustedProxy
	jkCopyAll   bool     // JkMountCopy All
	jkMainDirs  []*dir   // the main server's JkMount and JkUnMount lines
	// proxyProto are the RemoteIPProxyProtocol On lines, with the ports of
	// their virtual host (none: every port); ppExcept the exceptions.
	proxyProto []ppLine
	ppExcept   []*dir
	jkUsed     map[string]map[string]jkUse
	jkLines    map[int]jkUse
	// vhostCount is the number of <VirtualHost> sections.
	vhostCount int
	// usedBalancers are those a ProxyPass sends to.
	usedBalancers map[string]struct{}
	// Server-wide settings written on every listener.
	listenerAll    obj
	listenerAllSrc []*dir
}

type listenerOut struct {
	addr, port string
	keys       obj
	src        []*dir
}

type upstreamOut struct {
	name string
	keys obj
	src  *dir
}

type routeOut struct {
	host, path string
	keys       obj
	missing    obj // keys this webtier lacks, written as a comment
	src        []*dir
	static     bool
}

// Translate turns tree into a webtier config and a report.
func Translate(tree *httpdconf.Tree, opts Options) (*Result, error) {
	t := &translator{
		has: opts.Has, tree: tree, marks: map[*dir]*Entry{}, byKey: map[string]*upstreamOut{},
		balancers: map[string]*dir{}, usedBalancers: map[string]struct{}{}, logFormat: map[string]string{},
	}
	if t.has == nil {
		t.has = func(f Feature) bool { return f == Main }
	}
	if err := t.run(); err != nil {
		return nil, err
	}
	doc := t.document(opts.Source)
	return &Result{YAML: render(doc), Report: t.report()}, nil
}

// mark records what became of d. A later mark with a worse status (left
// over approximate over exact) wins; notes add up.
func (t *translator) mark(d *dir, s Status, note string) {
	e, ok := t.marks[d]
	if !ok {
		t.marks[d] = &Entry{File: t.rel(d.File), Line: d.Line, Directive: d.Name, Status: s, Note: note}
		return
	}
	if s != Unneeded && (e.Status == Unneeded || s > e.Status) {
		e.Status = s
	}
	if note != "" && !strings.Contains(e.Note, note) {
		if e.Note != "" {
			e.Note += "; "
		}
		e.Note += note
	}
}

func (t *translator) report() *Report {
	r := &Report{}
	var walk func(ds []*dir)
	walk = func(ds []*dir) {
		for _, d := range ds {
			e, ok := t.marks[d]
			if !ok {
				e = t.unmarked(d)
			}
			r.Entries = append(r.Entries, *e)
			walk(d.Children)
		}
	}
	walk(t.tree.Directives)
	for _, d := range t.tree.Skipped {
		r.Entries = append(r.Entries, Entry{File: t.rel(d.File), Line: d.Line, Directive: "<" + d.Name + " " + strings.Join(d.Args, " ") + ">",
			Status: Unneeded, Note: "false here, so httpd skips what it holds, and so did the import"})
	}
	r.Entries = append(r.Entries, t.extra...)
	return r
}

// unmarked says why a directive no handler took is not translated.
func (t *translator) unmarked(d *dir) *Entry {
	e := &Entry{File: t.rel(d.File), Line: d.Line, Directive: d.Name, Status: Left}
	name := strings.ToLower(d.Name)
	switch {
	case unneeded[name] != "":
		e.Status, e.Note = Unneeded, unneeded[name]
	case d.Section:
		e.Note = "a section webtier has no counterpart for; what it holds is reported line by line"
	default:
		e.Note = "no webtier counterpart"
	}
	return e
}

// unneeded are httpd's own housekeeping: settings of the process, modules
// and file handling that webtier does not have or does not need.
var unneeded = map[string]string{
	"serverroot": "paths were resolved by the importer", "include": "read by the importer", "includeoptional": "read by the importer",
	"loadmodule": "webtier has no modules", "define": "expanded by the importer", "undefine": "expanded by the importer",
	"user": "run webtier as a user of its own (systemd User=, or the container's)", "group": "run webtier as a user of its own",
	"pidfile": "webtier runs in the foreground (systemd, container)", "defaultruntimedir": "webtier runs in the foreground",
	"mutex": "webtier has no child processes", "errorlog": "webtier logs to stderr (logging section)", "loglevel": "see logging.level",
	"hostnamelookups": "webtier never looks up client names", "accessfilename": "webtier reads no .htaccess files",
	"allowoverride":   "webtier reads no .htaccess files",
	"serversignature": "webtier's error answers name no server", "servertokens": "webtier sends no Server header to clients unless configured",
	"traceenable": "webtier does not answer TRACE itself", "maxkeepaliverequests": "webtier keeps a connection for any number of requests",
	"startservers": "webtier is one process", "minsparethreads": "webtier is one process", "maxsparethreads": "webtier is one process",
	"threadlimit": "webtier is one process", "threadsperchild": "webtier is one process", "maxrequestworkers": "webtier is one process",
	"maxconnectionsperchild": "webtier is one process", "minspareservers": "webtier is one process", "maxspareservers": "webtier is one process",
	"serveradmin": "webtier's error answers name no contact", "adddefaultcharset": "webtier passes the backend's Content-Type",
	"indexoptions": "webtier lists no directories", "addiconbyencoding": "webtier lists no directories", "addiconbytype": "webtier lists no directories",
	"addicon": "webtier lists no directories", "defaulticon": "webtier lists no directories", "readmename": "webtier lists no directories",
	"headername": "webtier lists no directories", "indexignore": "webtier lists no directories",
	"typesconfig": "webtier's static files take types from Go's table and /etc/mime.types", "addtype": "webtier's static files take types from Go's table and /etc/mime.types",
	"addlanguage": "webtier does no content negotiation", "addcharset": "webtier does no content negotiation", "removetype": "webtier does no content negotiation",
	"languagepriority": "webtier does no content negotiation", "forcelanguagepriority": "webtier does no content negotiation",
	"addhandler": "webtier runs no handlers", "addoutputfilter": "webtier runs no filters", "addinputfilter": "webtier runs no filters",
	"browsermatch": "no client-specific workarounds are needed for HTTP/1.1 clients", "setenvif": "webtier has no environment variables",
	"requestreadtimeout": "webtier's listener read_header_timeout and body_min_rate cover slow clients", "mimemagicfile": "webtier does no content sniffing",
	"ifmodule": "decided by the importer", "ifdefine": "decided by the importer", "ifversion": "decided by the importer",
	"sslrandomseed": "Go's crypto/rand", "sslsessioncache": "Go's TLS session tickets", "sslsessioncachetimeout": "Go's TLS session tickets",
	"sslpassphrasedialog": "webtier reads unencrypted keys", "sslciphersuite": "Go's TLS picks safe cipher suites", "sslhonorcipherorder": "Go's TLS picks safe cipher suites",
	"sslcompression": "Go's TLS never compresses", "sslsessiontickets": "Go's TLS session tickets", "sslstaplingcache": "not supported; webtier does not staple OCSP",
	"proxyrequests": "webtier is never a forward proxy", "proxyvia": "webtier adds no Via header", "proxyerroroverride": "see routes[].error_pages_backend",
	"proxyaddheaders": "webtier always sends X-Forwarded-For, -Proto and -Host", "proxystatus": "see the admin listener's status page",
	"extendedstatus": "see the admin listener's status page", "jkloglevel": "webtier logs to stderr", "jklogfile": "webtier logs to stderr",
	"jkshmfile": "webtier keeps its balancer state in memory", "jkwatchdoginterval": "webtier maintains its AJP connections itself (ajp.cping_idle, idle_timeout)", "jklogstampformat": "webtier logs to stderr", "jkoptions": "webtier forwards the request as received",
	"jkrequestlogformat": "see access_log", "directoryslash": "webtier's static routes redirect a directory without slash", "enablesendfile": "webtier's static files use sendfile when they can",
	"enablemmap": "webtier does not mmap files", "filetag": "webtier's ETag is built from size and time",
}

// server is one virtual host (or the main server) as it is being read.
type server struct {
	vhost   *dir
	names   []string
	nameSrc []*dir
	// httpsRedirect: the RewriteRule (and its conditions) sending every
	// plain request to https.
	httpsRedirect []*dir
	ports         []string
	preserveHost  bool
	preserveSrc   *dir
	proxyTimeout  time.Duration
	timeoutSrc    *dir
	docRoot       string
	docRootSrc    *dir
	index         []string
	indexSrc      *dir
	passes        []*pass
	aliases       []*alias
	redirects     []*redirect
	matches       []any // redirects (RedirectMatch)
	matchSrc      []*dir
	rewrites      []any
	rewriteSrc    []*dir
	rewriteOn     bool
	conds         []*dir // RewriteCond lines waiting for their RewriteRule
	locs          map[string]*locRules
	locOrder      []string
	compress      []string
	compressSrc   []*dir
	ssl           bool
	sslSrc        []*dir
	cert, key     string
	minTLS        string
	minTLSSrc     *dir
	chain         string // SSLCertificateChainFile
	chainSrc      *dir
	jkCopy        bool // JkMountCopy On in this virtual host
	// proxyTLS are the upstream tls keys of SSLProxy* lines.
	proxyTLS    obj
	proxyTLSSrc []*dir
}

type pass struct {
	path, target string
	params       []string
	exclude      bool
	d            *dir
	jkWorker     string
	// jkMain: a JkMount (or JkUnMount) of the main server, which httpd
	// applies in a virtual host only with JkMountCopy.
	jkMain bool
}

type alias struct {
	path, root string
	d          *dir
}

type redirect struct {
	path, to string
	status   int
	d        *dir
}

// locRules are the rules of one path: a <Location> (or "" for the whole
// server).
type locRules struct {
	keys    obj
	missing obj
	src     []*dir
}

func newServer() *server { return &server{locs: map[string]*locRules{}} }

// inherit returns a virtual host's starting point: what httpd merges from
// the main server into every <VirtualHost>.
func (s *server) inherit(vh *dir) *server {
	n := newServer()
	n.vhost = vh
	n.preserveHost, n.preserveSrc = s.preserveHost, s.preserveSrc
	n.proxyTimeout, n.timeoutSrc = s.proxyTimeout, s.timeoutSrc
	n.docRoot, n.docRootSrc = s.docRoot, s.docRootSrc
	n.index, n.indexSrc = s.index, s.indexSrc
	for _, p := range s.passes {
		if !p.jkMain {
			n.passes = append(n.passes, p)
		}
	}
	n.aliases = append(n.aliases, s.aliases...)
	n.compress, n.compressSrc = s.compress, s.compressSrc
	n.proxyTLS, n.proxyTLSSrc = append(obj{}, s.proxyTLS...), s.proxyTLSSrc
	for _, p := range s.locOrder {
		l := s.locs[p]
		n.locs[p] = &locRules{keys: append(obj{}, l.keys...), missing: append(obj{}, l.missing...), src: l.src}
		n.locOrder = append(n.locOrder, p)
	}
	return n
}

func (s *server) loc(path string) *locRules {
	l := s.locs[path]
	if l == nil {
		l = &locRules{}
		s.locs[path] = l
		s.locOrder = append(s.locOrder, path)
	}
	return l
}

// ctx is where a directive stands: the server and, inside <Location> or
// <Directory>, that path.
type ctx struct {
	s        *server
	location string // "" outside a <Location>
	dirPath  string // "" outside a <Directory>
}

func (t *translator) run() error {
	// Balancers and the workers file first: ProxyPass lines name them
	// before or after their definition.
	var find func(ds []*dir) error
	find = func(ds []*dir) error {
		for _, d := range ds {
			if d.Section && d.Is("Proxy") && len(d.Args) == 1 && strings.HasPrefix(strings.ToLower(d.Args[0]), "balancer://") {
				t.balancers[strings.TrimSuffix(strings.ToLower(d.Args[0]), "/")] = d
			}
			if d.Is("LogFormat") && len(d.Args) == 2 {
				t.logFormat[d.Args[1]] = d.Args[0]
			}
			if d.Is("JkWorkersFile") && len(d.Args) == 1 {
				p := d.Args[0]
				if !filepath.IsAbs(p) {
					p = filepath.Join(t.tree.ServerRoot, p)
				}
				w, err := readWorkers(p)
				if err != nil {
					return fmt.Errorf("%s: JkWorkersFile: %w", d.Pos(), err)
				}
				t.jk, t.jkDir = w, d
			}
			if err := find(d.Children); err != nil {
				return err
			}
		}
		return nil
	}
	if err := find(t.tree.Directives); err != nil {
		return err
	}
	t.main = newServer()
	var vhosts []*dir
	for _, d := range t.tree.Directives {
		if d.Section && d.Is("VirtualHost") {
			vhosts = append(vhosts, d)
			continue
		}
		t.directive(ctx{s: t.main}, d)
	}
	t.vhostCount = len(vhosts)
	for _, vh := range vhosts {
		s := t.main.inherit(vh)
		t.mark(vh, Exact, "")
		for _, a := range vh.Args {
			if _, port, err := net.SplitHostPort(a); err == nil {
				s.ports = append(s.ports, port)
			}
		}
		for _, d := range vh.Children {
			t.directive(ctx{s: s}, d)
		}
		if s.jkCopy || t.jkCopyAll {
			for _, p := range t.main.passes {
				if p.jkMain {
					s.passes = append(s.passes, p)
				}
			}
		}
		t.servers = append(t.servers, s)
	}
	if len(vhosts) == 0 {
		t.servers = []*server{t.main}
	} else {
		for _, p := range t.main.passes {
			if !p.jkMain {
				t.mark(p.d, Exact, "inherited by every <VirtualHost>, as in httpd")
			}
		}
		copied := t.jkCopyAll
		for _, s := range t.servers {
			copied = copied || s.jkCopy
		}
		if !copied {
			for _, d := range t.jkMainDirs {
				// Whatever the line said before: it does nothing.
				delete(t.marks, d)
				t.mark(d, Unneeded, "a JkMount of the main server, which no <VirtualHost> copies (JkMountCopy), so httpd does not use it either")
			}
		}
	}
	t.emitListeners(vhosts)
	for i, s := range t.servers {
		t.emitServer(s, t.hostsFor(i, s))
	}
	for name, sec := range t.balancers {
		if _, used := t.usedBalancers[name]; !used {
			t.mark(sec, Left, "no ProxyPass sends requests to this balancer")
		}
	}
	if t.jk != nil {
		t.reportWorkers()
	}
	return nil
}

// hostsFor returns the route hosts of server i: "" (any host) when it is
// the only server or has no name; its names otherwise, and "" too for the
// first server, which httpd uses for a Host that no server names.
func (t *translator) hostsFor(i int, s *server) []string {
	if len(t.servers) == 1 || len(s.names) == 0 {
		return []string{""}
	}
	if i == 0 {
		return append(append([]string{}, s.names...), "")
	}
	return s.names
}

// directive hands d to its handler.
func (t *translator) directive(c ctx, d *dir) {
	h, ok := handlers[strings.ToLower(d.Name)]
	if !ok {
		t.section(c, d)
		return
	}
	h(t, c, d)
}

// section reports a section the importer does not translate, and all it
// holds.
func (t *translator) section(c ctx, d *dir) {
	if !d.Section {
		return // unmarked: the report says it has no counterpart
	}
	// <Files>, <If>, <Limit> ...: what they hold applies only to some
	// requests, which a route cannot tell apart.
	t.mark(d, Left, fmt.Sprintf("webtier has no counterpart for <%s>; the directives in it are not translated", d.Name))
	var all func(ds []*dir)
	all = func(ds []*dir) {
		for _, ch := range ds {
			t.mark(ch, Left, fmt.Sprintf("inside <%s> (line %d)", d.Name, d.Line))
			all(ch.Children)
		}
	}
	all(d.Children)
}

// handlers is the table: every directive the importer translates, by its
// lowercased name.
var handlers map[string]func(t *translator, c ctx, d *dir)

func init() {
	handlers = map[string]func(t *translator, c ctx, d *dir){
		"listen":                          (*translator).listen,
		"servername":                      (*translator).serverName,
		"serveralias":                     (*translator).serverName,
		"proxypass":                       (*translator).proxyPass,
		"proxypassmatch":                  (*translator).proxyPassMatch,
		"proxypassreverse":                (*translator).proxyPassReverse,
		"proxypassreversecookiedomain":    (*translator).reverseCookie,
		"proxypassreversecookiepath":      (*translator).reverseCookie,
		"proxy":                           (*translator).proxySection,
		"proxypreservehost":               (*translator).preserveHost,
		"proxytimeout":                    (*translator).proxyTimeout,
		"timeout":                         (*translator).timeout,
		"keepalivetimeout":                (*translator).listenerLimit,
		"limitrequestfieldsize":           (*translator).listenerLimit,
		"limitrequestfields":              (*translator).listenerLimit,
		"limitrequestline":                (*translator).listenerLimit,
		"keepalive":                       (*translator).keepAlive,
		"limitrequestbody":                (*translator).bodyLimit,
		"requestheader":                   (*translator).header,
		"header":                          (*translator).header,
		"sslengine":                       (*translator).ssl,
		"sslcertificatefile":              (*translator).ssl,
		"sslcertificatekeyfile":           (*translator).ssl,
		"sslcertificatechainfile":         (*translator).ssl,
		"sslprotocol":                     (*translator).ssl,
		"sslproxyengine":                  (*translator).sslProxy,
		"sslproxycacertificatefile":       (*translator).sslProxy,
		"sslproxyverify":                  (*translator).sslProxy,
		"sslproxycheckpeername":           (*translator).sslProxy,
		"sslproxycheckpeercn":             (*translator).sslProxy,
		"sslproxycheckpeerexpire":         (*translator).sslProxy,
		"sslproxymachinecertificatefile":  (*translator).sslProxy,
		"sslproxyprotocol":                (*translator).sslProxy,
		"remoteipproxyprotocol":           (*translator).remoteIPProxyProtocol,
		"remoteipproxyprotocolexceptions": (*translator).remoteIPProxyProtocol,
		"remoteipheader":                  (*translator).remoteIP,
		"remoteiptrustedproxy":            (*translator).remoteIP,
		"remoteipinternalproxy":           (*translator).remoteIP,
		"documentroot":                    (*translator).documentRoot,
		"alias":                           (*translator).alias,
		"directoryindex":                  (*translator).directoryIndex,
		"redirect":                        (*translator).redirect,
		"redirectpermanent":               (*translator).redirect,
		"redirecttemp":                    (*translator).redirect,
		"redirectmatch":                   (*translator).redirectMatch,
		"rewriteengine":                   (*translator).rewriteEngine,
		"rewritecond":                     (*translator).rewriteCond,
		"rewriterule":                     (*translator).rewriteRule,
		"logformat":                       (*translator).logFormatLine,
		"customlog":                       (*translator).customLog,
		"errordocument":                   (*translator).errorDocument,
		"require":                         (*translator).require,
		"authtype":                        (*translator).auth,
		"authname":                        (*translator).auth,
		"authuserfile":                    (*translator).auth,
		"authbasicprovider":               (*translator).auth,
		"addoutputfilterbytype":           (*translator).deflate,
		"jkworkersfile":                   (*translator).jkWorkersFile,
		"jkmount":                         (*translator).jkMount,
		"jkunmount":                       (*translator).jkMount,
		"jkmountcopy":                     (*translator).jkMountCopy,
		"location":                        (*translator).location,
		"locationmatch":                   (*translator).locationMatch,
		"directory":                       (*translator).directory,
		"filesmatch":                      (*translator).filesMatch,
		"options":                         (*translator).options,
		"sethandler": func(t *translator, c ctx, d *dir) {
			note := "webtier runs no handlers"
			if strings.HasPrefix(strings.ToLower(first(d.Args)), "server-") {
				note = "webtier's status is on its admin listener (admin: in the config), with Prometheus metrics"
			}
			t.mark(d, Left, note)
		},
		"virtualhost": func(t *translator, c ctx, d *dir) {
			t.mark(d, Left, "a <VirtualHost> inside another section is not read")
		},
	}
}

// --- listeners -----------------------------------------------------------

func (t *translator) listen(c ctx, d *dir) {
	if len(d.Args) == 0 {
		t.mark(d, Left, "no address")
		return
	}
	a := d.Args[0]
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		host, port = "", a
	}
	if host == "0.0.0.0" || host == "::" || host == "*" {
		host = ""
	}
	if _, err := strconv.Atoi(port); err != nil {
		t.mark(d, Left, fmt.Sprintf("%q is not [address:]port", a))
		return
	}
	addr := net.JoinHostPort(host, port)
	for _, l := range t.listeners {
		if l.addr == addr {
			l.src = append(l.src, d)
			t.mark(d, Exact, "")
			return
		}
	}
	t.listeners = append(t.listeners, &listenerOut{addr: addr, port: port, src: []*dir{d}})
	t.mark(d, Exact, "listeners[].address")
}

// listenerKeys are the server-wide directives that become a key on every
// listener, with how their value converts.
var listenerKeys = map[string]struct {
	key     string
	seconds bool
}{
	"keepalivetimeout":      {"idle_timeout", true},
	"limitrequestfieldsize": {"max_header_field_size", false},
	"limitrequestfields":    {"max_header_fields", false},
	"limitrequestline":      {"max_request_line", false},
}

func (t *translator) listenerLimit(c ctx, d *dir) {
	k := listenerKeys[strings.ToLower(d.Name)]
	if len(d.Args) != 1 {
		t.mark(d, Left, "needs one value")
		return
	}
	if c.s.vhost != nil {
		t.mark(d, Left, "webtier sets "+k.key+" per listener, not per virtual host; move it to the server level")
		return
	}
	var v any
	if k.seconds {
		dur, err := httpdDuration(d.Args[0], time.Second)
		if err != nil {
			t.mark(d, Left, err.Error())
			return
		}
		v = dur
	} else {
		n, err := strconv.Atoi(d.Args[0])
		if err != nil || n < 0 {
			t.mark(d, Left, fmt.Sprintf("%q is not a number", d.Args[0]))
			return
		}
		if n == 0 {
			t.mark(d, Left, "0 (unlimited) has no counterpart: webtier always bounds the request head; its default applies")
			return
		}
		v = n
	}
	t.listenerAll = append(t.listenerAll, kv{k.key, v})
	t.listenerAllSrc = append(t.listenerAllSrc, d)
	t.mark(d, Exact, "listeners[]."+k.key)
}

func (t *translator) keepAlive(c ctx, d *dir) {
	if len(d.Args) == 1 && strings.EqualFold(d.Args[0], "on") {
		t.mark(d, Exact, "webtier keeps client connections alive")
		return
	}
	t.mark(d, Left, "webtier always allows keep-alive; set listeners[].idle_timeout to close idle connections sooner")
}

func (t *translator) timeout(c ctx, d *dir) {
	dur, err := httpdDuration(first(d.Args), time.Second)
	if err != nil {
		t.mark(d, Left, err.Error())
		return
	}
	if c.s.proxyTimeout == 0 {
		c.s.proxyTimeout, c.s.timeoutSrc = dur, d
	}
	t.mark(d, Approx, "as ProxyTimeout's default: upstreams' response_header_timeout; webtier's client-side timeouts (read_header_timeout, body_timeout, write_timeout) keep their defaults")
}

func (t *translator) proxyTimeout(c ctx, d *dir) {
	dur, err := httpdDuration(first(d.Args), time.Second)
	if err != nil {
		t.mark(d, Left, err.Error())
		return
	}
	c.s.proxyTimeout, c.s.timeoutSrc = dur, d
	t.mark(d, Approx, "upstreams' response_header_timeout: webtier bounds the wait for the response head, httpd every wait for the backend")
}

func (t *translator) serverName(c ctx, d *dir) {
	if c.s.vhost == nil {
		t.mark(d, Unneeded, "the main server's name is not used for routing")
		return
	}
	for _, a := range d.Args {
		h := strings.ToLower(a)
		if i := strings.Index(h, "://"); i >= 0 {
			h = h[i+3:]
		}
		if hh, _, err := net.SplitHostPort(h); err == nil {
			h = hh
		}
		c.s.names = append(c.s.names, h)
	}
	c.s.nameSrc = append(c.s.nameSrc, d)
	t.mark(d, Exact, "routes[].host")
}

func first(a []string) string {
	if len(a) == 0 {
		return ""
	}
	return a[0]
}

// httpdDuration reads a number of unit (httpd's seconds), or with an "ms"
// suffix milliseconds.
func httpdDuration(s string, unit time.Duration) (time.Duration, error) {
	if strings.HasSuffix(s, "ms") {
		unit, s = time.Millisecond, strings.TrimSuffix(s, "ms")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	return time.Duration(n) * unit, nil
}

// --- sections -------------------------------------------------------------

func (t *translator) location(c ctx, d *dir) {
	if len(d.Args) != 1 || c.location != "" {
		t.mark(d, Left, "only a <Location path> at the server level is read")
		return
	}
	p := d.Args[0]
	if strings.HasPrefix(p, "~") {
		t.mark(d, Left, "a regular-expression <Location ~> is not translated; webtier routes by path prefix")
		return
	}
	t.locationAt(c, d, p)
}

// locationAt reads a <Location> (or a <LocationMatch> that is a prefix)
// for path p.
func (t *translator) locationAt(c ctx, d *dir, p string) {
	for _, ch := range d.Children {
		if ch.Is("SetHandler") {
			// The Location is the handler's (server-status, ...): its rules
			// guard something webtier does not have.
			t.mark(d, Left, "its SetHandler has no counterpart, so nothing here is translated")
			t.directive(ctx{s: c.s, location: p}, ch)
			for _, o := range d.Children {
				if o != ch {
					t.mark(o, Left, fmt.Sprintf("inside <Location %s> (line %d), whose handler webtier does not run", p, d.Line))
				}
			}
			return
		}
	}
	t.mark(d, Exact, "rules on the route for "+p)
	for _, ch := range d.Children {
		t.directive(ctx{s: c.s, location: p}, ch)
	}
}

// locationMatch reads a <LocationMatch> whose expression is a path
// prefix (^/literal, optionally followed by .*): the same as <Location
// /literal>. Any other expression is left.
func (t *translator) locationMatch(c ctx, d *dir) {
	if len(d.Args) != 1 || c.location != "" {
		t.mark(d, Left, "only a <LocationMatch regex> at the server level is read")
		return
	}
	p, ok := regexPrefix(d.Args[0])
	if !ok {
		t.mark(d, Left, "webtier routes by path prefix; only an expression like ^/prefix/ translates: write a route for each prefix this one matches (or a rewrite)")
		for _, ch := range d.Children {
			t.mark(ch, Left, fmt.Sprintf("inside <LocationMatch> (line %d), which is not translated", d.Line))
		}
		return
	}
	t.locationAt(c, d, p)
}

// regexPrefix returns the literal path a regular expression anchored with
// ^ matches as a prefix: "^/app/" and "^/app/.*" give "/app/". Anything
// else (an alternation, a class, an end anchor) is not a prefix.
func regexPrefix(re string) (string, bool) {
	if !strings.HasPrefix(re, "^/") {
		return "", false
	}
	re = strings.TrimSuffix(strings.TrimSuffix(re[1:], "(.*)"), ".*")
	var b strings.Builder
	for i := 0; i < len(re); i++ {
		c := re[i]
		switch {
		case c == '\\' && i+1 < len(re) && strings.IndexByte(`.-/_~`, re[i+1]) >= 0:
			i++
			b.WriteByte(re[i])
		case strings.IndexByte(`.+*?()|[]{}^$\\`, c) >= 0:
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func (t *translator) directory(c ctx, d *dir) {
	p := first(d.Args)
	t.mark(d, Exact, "webtier serves files only from static roots; a <Directory> counts for the static route whose root it holds")
	for _, ch := range d.Children {
		t.directive(ctx{s: c.s, dirPath: filepath.Clean(p)}, ch)
	}
}

// filesMatch translates the one <FilesMatch> every Debian and RHEL tree
// has: dotfiles (.htaccess, .htpasswd) refused, which webtier's static
// routes do by default (static.dotfiles: false).
func (t *translator) filesMatch(c ctx, d *dir) {
	if strings.HasPrefix(first(d.Args), `^\.`) && len(d.Children) == 1 && d.Children[0].Is("Require") &&
		strings.EqualFold(strings.Join(d.Children[0].Args, " "), "all denied") {
		t.mark(d, Exact, "webtier's static routes refuse dotfiles (static.dotfiles: false)")
		t.mark(d.Children[0], Exact, "")
		return
	}
	t.section(c, d)
}

// options reports what httpd's Options mean for webtier's static routes,
// whose safe defaults it keeps (listing and symlinks off).
func (t *translator) options(c ctx, d *dir) {
	st, notes := Exact, []string{}
	for _, o := range d.Args {
		switch strings.ToLower(strings.TrimLeft(o, "+")) {
		case "indexes":
			st = max(st, Approx)
			notes = append(notes, "Indexes: httpd lists a directory that has no index file; webtier answers 404 (set static.listing: true to list)")
		case "followsymlinks", "symlinksifownermatch":
			st = max(st, Approx)
			notes = append(notes, o+": webtier serves a symlink only when it stays inside the root (set static.follow_symlinks: true to follow every one)")
		case "execcgi", "includes", "includesnoexec":
			st = max(st, Approx)
			notes = append(notes, o+": webtier runs no CGI or server-side includes")
		case "multiviews":
			st = max(st, Approx)
			notes = append(notes, "MultiViews: webtier does no content negotiation")
		}
	}
	if len(notes) == 0 {
		notes = append(notes, "what webtier's static routes do by default")
	}
	t.mark(d, st, strings.Join(notes, "; "))
}
