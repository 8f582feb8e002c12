package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/webtier/webtier/proxy/upstream"
	"github.com/webtier/webtier/resolver"
)

// Drainer starts and stops the drain of the whole process: the health
// endpoint fails, keep-alive connections are closed, then the listeners
// close (issue 19, point 5). cmd wires the real one.
type Drainer interface {
	// Drain starts the drain; calling it while draining does nothing.
	Drain()
	// Undrain serves normally again; false when it is too late (the
	// listeners have closed).
	Undrain() bool
	// Draining reports whether a drain is in progress.
	Draining() bool
}

// Names is what the status page needs from the shared DNS cache.
// *resolver.Resolver implements it.
type Names interface {
	Names() []resolver.NameStatus
	Changes() []resolver.Change
	RefreshNow(name string)
}

var _ Names = (*resolver.Resolver)(nil)

// Listener and Route describe the running config's listeners and routes.
type Listener struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	TLS     bool   `json:"tls"`
}

// Route is one route of the running config.
type Route struct {
	Host     string `json:"host"`
	Path     string `json:"path"`
	Upstream string `json:"upstream"`
}

// ConfigInfo is what the status says of the config in effect.
type ConfigInfo struct {
	File      string     `json:"file"`
	Hash      string     `json:"hash"`
	LoadedAt  time.Time  `json:"loaded_at"`
	Listeners []Listener `json:"listeners"`
	Routes    []Route    `json:"routes"`
}

// Controls are the parts of the running webtier that the status page
// shows and acts on. cmd fills them in; a nil field leaves its part out
// of the status, and its actions answer 501.
type Controls struct {
	// Pools returns the upstream pools of the config in effect (a reload
	// replaces them).
	Pools func() []*upstream.Pool
	Names Names
	// Config returns the config in effect.
	Config func() ConfigInfo
	// Reload reloads the config file as SIGHUP does, and returns the
	// error when the file does not load (the old config keeps serving).
	Reload  func(context.Context) error
	Drainer Drainer
	// Level is the process logger's level.
	Level   *zap.AtomicLevel
	Version string
}

// csrfHeader carries the per-process token the status page reads from its
// meta tag. A browser sends a custom header cross-site only after a CORS
// preflight, which the admin listener never approves.
const csrfHeader = "X-Webtier-Token"

// control serves the status page, the JSON status and the actions.
type control struct {
	c       Controls
	s       *Server
	csrf    string
	page    []byte // index.html with the token filled in
	hostOK  func(host string) bool
	log     *zap.Logger
	maxBody int64
}

// Control adds the status page (GET /), the JSON status (GET /api/status)
// and the actions (POST /api/...) for c. Call it before Serve.
func (s *Server) Control(c Controls) error {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Errorf("admin: making the page token: %w", err)
	}
	k := &control{c: c, s: s, csrf: hex.EncodeToString(b[:]), log: s.log, maxBody: 4 << 10}
	page, err := renderPage(k.csrf)
	if err != nil {
		return err
	}
	k.page = page
	k.hostOK = hostChecker(s.addr)
	s.Public("GET /{$}", k.guard(http.HandlerFunc(k.index)))
	s.Public("GET /static/", k.guard(staticHandler()))
	s.Handle("GET /api/status", k.guard(http.HandlerFunc(k.status)))
	s.Handle("GET /api/csrf-token", k.guard(http.HandlerFunc(k.token)))
	for path, fn := range map[string]func(*http.Request, *actionBody) (string, error){
		"/api/drain":     k.drain,
		"/api/undrain":   k.undrain,
		"/api/standby":   k.standby(true),
		"/api/activate":  k.standby(false),
		"/api/balance":   k.balance,
		"/api/resolve":   k.resolve,
		"/api/reload":    k.reload,
		"/api/log-level": k.logLevel,
	} {
		s.Handle("POST "+path, k.guard(k.action(path, fn)))
		s.Handle(path, k.guard(http.HandlerFunc(postOnly)))
	}
	return nil
}

// postOnly answers a GET (or any other method) on an action: no state
// changes on a request a link or an image can make.
func postOnly(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Allow", "POST")
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "actions need POST, with the " + csrfHeader + " header or the bearer token"})
}

// hostChecker returns the check of the Host header against DNS rebinding:
// a page of evil.example whose name later points at 127.0.0.1 is, for the
// browser, same-origin with the admin listener. Without a token, only
// requests that name the listener by an IP address, "localhost" or the
// configured host are served.
func hostChecker(addr string) func(string) bool {
	confHost, _, _ := net.SplitHostPort(addr)
	return func(host string) bool {
		h := host
		if hh, _, err := net.SplitHostPort(host); err == nil {
			h = hh
		}
		h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
		if _, err := netip.ParseAddr(h); err == nil {
			return true
		}
		return strings.EqualFold(h, "localhost") || (confHost != "" && strings.EqualFold(h, confHost))
	}
}

// guard sets the security headers of every page and API answer and
// refuses what a cross-site request would look like.
func (k *control) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		if !k.s.auth && !k.hostOK(r.Host) {
			k.refused(r, "host not an IP address or localhost")
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": fmt.Sprintf("host %q: reach the admin listener by its IP address or localhost", r.Host)})
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
			k.refused(r, "cross-site (Sec-Fetch-Site)")
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-site request refused (Sec-Fetch-Site: " + site + ")"})
			return
		}
		if o := r.Header.Get("Origin"); o != "" && !sameOrigin(o, r.Host) {
			k.refused(r, "cross-origin (Origin)")
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "cross-origin request refused (Origin: " + o + ")"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// refused logs a request refused as cross-site or without the page
// token: someone's browser may be under attack.
func (k *control) refused(r *http.Request, why string) {
	k.log.Warn("admin request refused", zap.String("reason", why), zap.String("method", r.Method),
		zap.String("path", r.URL.Path), zap.String("host", r.Host), zap.String("origin", r.Header.Get("Origin")),
		zap.String("remote", r.RemoteAddr), zap.String("user_agent", r.UserAgent()))
}

// sameOrigin reports whether origin (scheme://host[:port]) names host.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, host)
}

func (k *control) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(k.page)
}

// token serves the page token to tools (curl) on a loopback listener
// without a bearer token; a cross-site page cannot read it (no CORS).
func (k *control) token(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, k.csrf+"\n")
}

// actionBody is the JSON body of every action; each uses its own fields.
type actionBody struct {
	Upstream string `json:"upstream,omitempty"`
	Address  string `json:"address,omitempty"`
	Target   string `json:"target,omitempty"`
	Balance  string `json:"balance,omitempty"`
	Name     string `json:"name,omitempty"`
	Level    string `json:"level,omitempty"`
}

// errNotAvailable is an action whose part is not wired (501).
var errNotAvailable = errors.New("not available in this webtier")

// httpError is an action error with its status code.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func notFound(format string, a ...any) error {
	return &httpError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

// action checks the request's token and body, runs fn and logs who did
// what, at info.
func (k *control) action(path string, fn func(*http.Request, *actionBody) (string, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		via := "page token"
		switch {
		case k.s.auth:
			// Authenticated by the bearer token (Server.ServeHTTP): a
			// browser never adds it to a cross-site request by itself.
			via = "bearer token"
		case !k.csrfOK(r):
			k.refused(r, "no or wrong "+csrfHeader)
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "missing or wrong " + csrfHeader + " header: take it from GET /api/csrf-token"})
			return
		}
		var body actionBody
		if r.ContentLength != 0 {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, k.maxBody))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "body: " + err.Error() + `; send JSON such as {"upstream":"app","address":"10.0.0.5:8080"}`})
				return
			}
		}
		msg, err := fn(r, &body)
		fields := []zap.Field{zap.String("action", strings.TrimPrefix(path, "/api/")),
			zap.String("remote", r.RemoteAddr), zap.String("via", via), zap.String("user_agent", r.UserAgent())}
		fields = append(fields, body.fields()...)
		if err != nil {
			code := http.StatusInternalServerError
			var he *httpError
			switch {
			case errors.As(err, &he):
				code = he.code
			case errors.Is(err, errNotAvailable):
				code = http.StatusNotImplemented
			}
			k.log.Info("admin action refused", append(fields, zap.Error(err))...)
			writeJSON(w, code, map[string]string{"error": err.Error()})
			return
		}
		k.log.Info("admin action", append(fields, zap.String("result", msg))...)
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "message": msg})
	})
}

// csrfOK compares the page token in constant time.
func (k *control) csrfOK(r *http.Request) bool {
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(k.csrf)) == 1
}

func (b *actionBody) fields() []zap.Field {
	var f []zap.Field
	for _, kv := range [][2]string{{"upstream", b.Upstream}, {"address", b.Address}, {"target", b.Target},
		{"balance", b.Balance}, {"name", b.Name}, {"level", b.Level}} {
		if kv[1] != "" {
			f = append(f, zap.String(kv[0], kv[1]))
		}
	}
	return f
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (k *control) drain(*http.Request, *actionBody) (string, error) {
	d := k.c.Drainer
	if d == nil {
		return "", fmt.Errorf("drain: %w", errNotAvailable)
	}
	d.Drain()
	if !d.Draining() {
		return "", &httpError{http.StatusServiceUnavailable, "drain did not start"}
	}
	return "draining", nil
}

func (k *control) undrain(*http.Request, *actionBody) (string, error) {
	d := k.c.Drainer
	if d == nil {
		return "", fmt.Errorf("undrain: %w", errNotAvailable)
	}
	if !d.Undrain() {
		return "", &httpError{http.StatusConflict, "too late to undrain: the listeners have closed"}
	}
	return "serving", nil
}

// pool finds the upstream named in b.
func (k *control) pool(b *actionBody) (*upstream.Pool, error) {
	if k.c.Pools == nil {
		return nil, fmt.Errorf("upstreams: %w", errNotAvailable)
	}
	if b.Upstream == "" {
		return nil, badRequest(`give the upstream: {"upstream":"NAME",...}`)
	}
	for _, p := range k.c.Pools() {
		if p.Name() == b.Upstream {
			return p, nil
		}
	}
	return nil, notFound("no upstream %q in the running config", b.Upstream)
}

func (k *control) standby(on bool) func(*http.Request, *actionBody) (string, error) {
	word := map[bool]string{true: "standby", false: "running"}[on]
	return func(_ *http.Request, b *actionBody) (string, error) {
		p, err := k.pool(b)
		if err != nil {
			return "", err
		}
		switch {
		case b.Address != "" && b.Target != "":
			return "", badRequest("give an address or a target, not both")
		case b.Address != "":
			ap, err := netip.ParseAddrPort(b.Address)
			if err != nil {
				return "", badRequest("address %q: want IP:PORT as the status shows it", b.Address)
			}
			if !p.SetStandby(ap, on) {
				return "", notFound("upstream %s has no address %s in its current DNS answers", p.Name(), ap)
			}
			return fmt.Sprintf("%s %s: %s", p.Name(), ap, word), nil
		case b.Target != "":
			if !p.SetTargetStandby(b.Target, on) {
				return "", notFound("upstream %s has no target %q", p.Name(), b.Target)
			}
			return fmt.Sprintf("%s target %s: %s", p.Name(), b.Target, word), nil
		}
		return "", badRequest(`give the address ({"upstream":"app","address":"10.0.0.5:8080"}) or the target ({"upstream":"app","target":"app.internal"})`)
	}
}

func (k *control) balance(_ *http.Request, b *actionBody) (string, error) {
	p, err := k.pool(b)
	if err != nil {
		return "", err
	}
	bal, err := upstream.ParseBalance(b.Balance)
	if err != nil {
		return "", badRequest("%v", err)
	}
	old := p.Options().Balance
	if err := p.SetBalance(bal); err != nil {
		return "", badRequest("%v", err)
	}
	return fmt.Sprintf("%s: balance %s (was %s) until the next reload", p.Name(), bal, old), nil
}

func (k *control) resolve(_ *http.Request, b *actionBody) (string, error) {
	if k.c.Names == nil {
		return "", fmt.Errorf("resolve: %w", errNotAvailable)
	}
	if b.Name == "" {
		return "", badRequest(`give the name: {"name":"app.internal"}`)
	}
	// Only names the cache holds: the admin API must not become a way to
	// make webtier query arbitrary names.
	for _, n := range k.c.Names.Names() {
		if strings.EqualFold(n.Name, b.Name) {
			k.c.Names.RefreshNow(n.Name)
			return n.Name + ": re-resolution asked (rate-limited by resolver.refresh_now_min_gap)", nil
		}
	}
	return "", notFound("%q is not a name webtier resolves", b.Name)
}

func (k *control) reload(r *http.Request, _ *actionBody) (string, error) {
	if k.c.Reload == nil {
		return "", fmt.Errorf("reload: %w", errNotAvailable)
	}
	if err := k.c.Reload(r.Context()); err != nil {
		return "", &httpError{http.StatusUnprocessableEntity, "reload failed, the previous config keeps serving: " + err.Error()}
	}
	return "config reloaded", nil
}

func (k *control) logLevel(_ *http.Request, b *actionBody) (string, error) {
	if k.c.Level == nil {
		return "", fmt.Errorf("log level: %w", errNotAvailable)
	}
	l, err := zapcore.ParseLevel(b.Level)
	if err != nil || b.Level == "" || l > zapcore.ErrorLevel {
		return "", badRequest(`level %q: want debug, info, warn or error ({"level":"debug"})`, b.Level)
	}
	old := k.c.Level.Level()
	k.c.Level.SetLevel(l)
	return fmt.Sprintf("log level %s (was %s) until the next reload", l, old), nil
}
