package proxy

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/webtier/webtier/proxy/upstream"
)

// health is one listener's health endpoint for the balancer in front
// (ListenerOptions.HealthPath): answered by webtier on every engine (its
// own HTTP/1 server, net/http's, HTTP/2), never proxied.
type health struct {
	path     string // "": no endpoint
	fail     int
	drain    *DrainState
	requires []*upstream.Pool
}

func newHealth(lo ListenerOptions, h *Handler, index map[string]int, drain *DrainState) (health, error) {
	hl := health{path: lo.HealthPath, fail: lo.HealthFailStatus, drain: drain}
	if hl.fail == 0 {
		hl.fail = DefaultHealthFailStatus
	}
	for _, name := range lo.HealthRequires {
		i, ok := index[name]
		if !ok {
			return health{}, fmt.Errorf("listener %q: health_requires: unknown upstream %q", lo.Name, name)
		}
		hl.requires = append(hl.requires, h.pools[i])
	}
	return hl, nil
}

// matches reports whether path, cleaned as the router sees it, is the
// health endpoint's: the path itself, or the path followed by ";" and
// parameters (which Tomcat would drop and serve the path). On the request
// path it costs a string compare (a length compare for most requests).
func (hl *health) matches(path string) bool {
	return hl.path != "" && strings.HasPrefix(path, hl.path) &&
		(len(path) == len(hl.path) || path[len(hl.path)] == ';')
}

// serve answers a health request: 200 "ok" while serving, the fail status
// while draining or while a required upstream has no address that takes
// requests. GET and HEAD only; the answer is never cached.
func (hl *health) serve(w http.ResponseWriter, r *http.Request) {
	status, msg := http.StatusOK, "ok\n"
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		status, msg = http.StatusMethodNotAllowed, "405 Method Not Allowed: the health endpoint answers GET and HEAD\n"
		w.Header().Set("Allow", "GET, HEAD")
	case hl.drain.Draining():
		status, msg = hl.fail, "draining\n"
	default:
		if name := hl.unready(); name != "" {
			status, msg = hl.fail, "upstream "+name+" has no usable address\n"
		}
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(msg)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		io.WriteString(w, msg) //nolint:errcheck // the client is gone
	}
}

// unready returns the first required upstream without an address that
// takes requests, or "".
func (hl *health) unready() string {
	for _, p := range hl.requires {
		usable := false
		for _, e := range p.Endpoints() {
			if st := e.State(); st == upstream.StateRunning || st == upstream.StateRecovering {
				usable = true
				break
			}
		}
		if !usable {
			return p.Name()
		}
	}
	return ""
}
