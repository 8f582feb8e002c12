package config

import (
	"errors"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/rules/access"
	"github.com/webtier/webtier/proxy/rules/errpage"
	"github.com/webtier/webtier/proxy/rules/headers"
)

// Issue 21's header rules, error pages, limits and access control: the
// listener defaults and the route keys, checked and turned into
// proxy.ListenerRules and proxy.RouteRules. Files (error pages, htpasswd)
// are read here, so that `webtier validate` and a reload see their errors.

// Largest error page and htpasswd file read: both are small by nature.
const (
	maxErrorPage    = 1 << 20
	maxHtpasswdFile = 4 << 20
)

// listenerRules returns a listener's rule defaults, or nil for none.
func (c *checker) listenerRules(r rawListener) *proxy.ListenerRules {
	lr := &proxy.ListenerRules{
		RequestHeaders:  c.headerRules(r.RequestHeaders, headers.Request),
		ResponseHeaders: c.headerRules(r.ResponseHeaders, headers.Response),
		SecurityHeaders: r.SecurityHeaders.V,
		ErrorPages:      c.errorPages(r.ErrorPages),
	}
	if r.ServerHeader.Set {
		s := r.ServerHeader.V
		if err := headers.CheckValue(s); err != nil || strings.ContainsAny(s, "{}") {
			c.errorf(r.ServerHeader.loc, "%q is not a usable Server value; write plain text like webtier, or \"\" for no Server field", s)
		}
		lr.ServerHeader = &s
	}
	if lr.ServerHeader == nil && lr.RequestHeaders == nil && lr.ResponseHeaders == nil && !lr.SecurityHeaders &&
		lr.ErrorPages == nil {
		return nil
	}
	return lr
}

// routeRules returns a route's rules, or nil for none.
func (c *checker) routeRules(r rawRoute, ups entries[rawUpstream]) *proxy.RouteRules {
	rr := &proxy.RouteRules{
		RequestHeaders:    c.headerRules(r.RequestHeaders, headers.Request),
		ResponseHeaders:   c.headerRules(r.ResponseHeaders, headers.Response),
		ErrorPages:        c.errorPages(r.ErrorPages),
		ErrorPagesBackend: r.ErrorPagesBackend.V,
		Access:            c.access(r),
	}
	if r.SecurityHeaders.Set {
		v := r.SecurityHeaders.V
		rr.SecurityHeaders = &v
	}
	if rr.RequestHeaders == nil && rr.ResponseHeaders == nil && rr.SecurityHeaders == nil && rr.ErrorPages == nil &&
		!rr.ErrorPagesBackend && rr.Access == nil {
		return nil
	}
	return rr
}

// headerRules checks request_headers or response_headers.
func (c *checker) headerRules(f field[rawHeaderRules], d headers.Direction) *headers.Rules {
	if !f.Set {
		return nil
	}
	r := &headers.Rules{}
	name := func(n string, at loc) bool {
		if err := headers.Check(d, n); err != nil {
			c.errorf(at, "%v", err)
			return false
		}
		return true
	}
	for _, set := range []struct {
		f   field[entries[field[string]]]
		out *[]headers.Field
	}{{f.V.Set, &r.Set}, {f.V.Add, &r.Add}} {
		for _, e := range set.f.V {
			if !name(e.Key, e.loc) {
				continue
			}
			if err := headers.CheckValue(e.V.V); err != nil {
				c.errorf(e.V.loc, "%v", err)
				continue
			}
			*set.out = append(*set.out, headers.Field{Name: e.Key, Value: e.V.V})
		}
	}
	for _, s := range f.V.Unset.V {
		if name(s.V, s.loc) {
			r.Unset = append(r.Unset, s.V)
		}
	}
	for _, e := range f.V.Edit.V {
		if !e.Name.Set || !e.Match.Set {
			c.errorf(e.loc, "an edit needs name and match; write it like {name: Location, match: '^http://', replace: 'https://'}")
			continue
		}
		if !name(e.Name.V, e.Name.loc) {
			continue
		}
		re, err := regexp.Compile(e.Match.V)
		if err != nil {
			c.errorf(e.Match.loc, "%q is not a regular expression (Go RE2 syntax): %v", e.Match.V, err)
			continue
		}
		if err := headers.CheckValue(strings.NewReplacer("{", "", "}", "").Replace(e.Replace.V)); err != nil {
			c.errorf(e.Replace.loc, "%v", err)
			continue
		}
		r.Edit = append(r.Edit, headers.Edit{Name: e.Name.V, Match: re, Replace: e.Replace.V})
	}
	return r
}

// errorPages reads the error pages' files.
func (c *checker) errorPages(f field[entries[field[string]]]) map[int]errpage.Page {
	if len(f.V) == 0 {
		return nil
	}
	out := make(map[int]errpage.Page)
	for _, e := range f.V {
		status, err := strconv.Atoi(e.Key)
		if err != nil || !slices.Contains(errpage.Statuses, status) {
			c.errorf(e.loc, "%q is not a status webtier answers with a page; write one of 404, 502, 503, 504", e.Key)
			continue
		}
		if e.V.V == "" {
			c.errorf(e.V.loc, "is empty; write the path of the page's file, like /etc/webtier/%d.html", status)
			continue
		}
		path := c.relative(e.V.V)
		data, err := readLimited(path, maxErrorPage)
		if err != nil {
			c.errorf(e.V.loc, "cannot read %q: %v; write the path of a file webtier can read", path, pathErr(err))
			continue
		}
		if len(data) > maxErrorPage {
			c.errorf(e.V.loc, "%q is larger than %d KiB; an error page should be small", path, maxErrorPage>>10)
			continue
		}
		out[status] = errpage.NewPage(path, data)
	}
	return out
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// access checks the limits and access keys of a route.
func (c *checker) access(r rawRoute) *access.Options {
	a := &access.Options{
		MaxBodySize: c.size(r.MaxBodySize),
		Allow:       c.prefixes(r.Allow),
		Deny:        c.prefixes(r.Deny),
		BasicAuth:   c.basicAuth(r.BasicAuth),
		RateLimit:   c.rateLimit(r.RateLimit),
	}
	if r.Allow.Set && len(r.Allow.V) == 0 {
		c.errorf(r.Allow.loc, "is empty, which would let nobody in; list the addresses to let in, or write deny: [0.0.0.0/0, ::/0]")
	}
	if r.Timeout.Set {
		a.Timeout = c.duration(r.Timeout, 0)
	}
	if a.MaxBodySize == 0 && a.Timeout == 0 && len(a.Allow) == 0 && len(a.Deny) == 0 &&
		a.BasicAuth == nil && a.RateLimit == nil {
		return nil
	}
	return a
}

// size parses a byte count: a whole number of bytes, or one with a binary
// unit k, KiB, m, MiB, g, GiB (KB, MB and GB are read as the binary
// units too, as nginx and httpd's size directives do).
func (c *checker) size(f field[string]) int64 {
	if !f.Set {
		return 0
	}
	s := strings.TrimSpace(f.V)
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	mult := map[string]int64{"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10,
		"m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}[unit]
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || mult == 0 || n <= 0 || n > (1<<62)/mult {
		c.errorf(f.loc, "%q is not a size; write a number of bytes greater than 0, like 1048576, 512k or 10MiB", f.V)
		return 0
	}
	return n * mult
}

// basicAuth checks basic_auth and reads its htpasswd file.
func (c *checker) basicAuth(f field[rawBasicAuth]) *access.BasicAuth {
	if !f.Set {
		return nil
	}
	realm := f.V.Realm.V
	if f.V.Realm.Set && (realm == "" || secretProblem(realm)) {
		c.errorf(f.V.Realm.loc, "%q is empty or has a control character; write the realm as plain text, like Staff only", realm)
	}
	b := &access.BasicAuth{} // a placeholder while there are errors
	hf := f.V.HtpasswdFile
	if hf.V == "" {
		c.errorf(hf.loc, "%s; write the path of an htpasswd file with bcrypt entries (htpasswd -B -c FILE USER)", orMissing(hf.Set))
		return b
	}
	path := c.relative(hf.V)
	data, err := readLimited(path, maxHtpasswdFile)
	if err != nil {
		c.errorf(hf.loc, "cannot read %q: %v; write the path of an htpasswd file webtier can read", path, pathErr(err))
		return b
	}
	users, err := access.ParseHtpasswd(data)
	if err != nil {
		c.errorf(hf.loc, "%s: %v", path, err)
		return b
	}
	return access.NewBasicAuth(realm, users, f.V.ForwardAuth.V)
}

func orMissing(set bool) string {
	if set {
		return "is empty"
	}
	return "is missing"
}

// rateLimit checks rate_limit.
func (c *checker) rateLimit(f field[rawRateLimit]) *access.RateLimit {
	if !f.Set {
		return nil
	}
	rps := f.V.RequestsPerSecond
	rate, err := strconv.ParseFloat(strings.TrimSpace(rps.V), 64)
	if !rps.Set || err != nil || !(rate > 0) || rate > 1e9 {
		c.errorf(rps.loc, "%q is not a rate; write the requests per second allowed to each client address, a number greater than 0 like 10 or 0.5", rps.V)
		rate = 1
	}
	def := int(rate)
	if float64(def) < rate {
		def++
	}
	return &access.RateLimit{
		Rate:       rate,
		Burst:      c.intRange(f.V.Burst, 1, 1<<20, def),
		MaxClients: c.intRange(f.V.MaxClients, 1, 1<<24, access.DefaultMaxClients),
	}
}
