package config

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/proxy/upstream"
)

// balances are the values of balance, the default first.
var balances = []string{
	string(upstream.BalanceLeastConn),
	string(upstream.BalanceRoundRobin),
	string(upstream.BalanceRandomTwo),
	string(upstream.BalanceSticky),
	string(upstream.BalanceHash),
}

// resilience checks an upstream's balancing, ejection, retry and health keys
// and fills them, with their defaults, into u. u.Targets must already be set;
// proto is what the targets speak (see protocol).
func (c *checker) resilience(u *proxy.UpstreamOptions, r *rawUpstream, proto string) {
	u.Balance = c.balance(r.Balance)
	u.StickyCookie = c.stickyCookie(r, u.Balance)
	u.HashHeader = c.hashHeader(r, u.Balance)
	u.SlowStart = c.durationOrOff(r.SlowStart, upstream.DefaultSlowStart, 0, "30s")
	u.MaintainInterval = c.duration(r.MaintainInterval, upstream.DefaultMaintainInterval)

	ej := &r.Ejection
	u.FailuresToEject = c.intRange(ej.Failures, 1, 100, upstream.DefaultFailuresToEject)
	u.EjectBackoffBase = c.duration(ej.BackoffBase, upstream.DefaultEjectBackoffBase)
	u.EjectBackoffCap = c.duration(ej.BackoffCap, upstream.DefaultEjectBackoffCap)
	if u.EjectBackoffCap < u.EjectBackoffBase {
		if ej.BackoffCap.Set {
			c.errorf(ej.BackoffCap.loc, "backoff_cap %s is less than backoff_base %s (%s); make backoff_cap at least backoff_base",
				formatDuration(u.EjectBackoffCap), formatDuration(u.EjectBackoffBase), lineOrDefault(ej.BackoffBase))
		} else {
			c.errorf(ej.BackoffBase.loc, "backoff_base %s is greater than backoff_cap %s (the default); lower backoff_base or set backoff_cap at least as high",
				formatDuration(u.EjectBackoffBase), formatDuration(u.EjectBackoffCap))
		}
	}

	rt := &r.Retries
	u.RetryTries = c.intRange(rt.Tries, 1, 10, upstream.DefaultRetryTries)
	u.RetryBudget = c.duration(rt.Budget, upstream.DefaultRetryBudget)
	u.RetryIdempotent = rt.Idempotent.V
	u.RescueGrace = c.durationOrOff(rt.RescueGrace, upstream.DefaultRescueGrace, -1, "")
	u.RaceDelay = c.durationOrOff(r.RaceDelay, upstream.DefaultRaceDelay, -1, "")

	u.HealthCheck = c.healthCheck(r.HealthCheck, proto == protoAJP)

	// In the file 0 turns passive ejection off; in the options zero selects
	// the default, and a negative value is what turns it off.
	u.Consecutive5xx = zeroToOff(c.intRange(r.Outlier.Consecutive5xx, 0, 1000, upstream.DefaultConsecutive5xx))
	u.MaxEjectedPercent = zeroToOff(c.intRange(r.Outlier.MaxEjectedPercent, 0, 100, upstream.DefaultMaxEjectedPercent))

	c.targetRoles(r)
}

// zeroToOff maps a count where the file's 0 means "none" to the options'
// negative value, because zero there selects the default.
func zeroToOff(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// lineOrDefault says where a value compared in an error came from.
func lineOrDefault[T any](f field[T]) string {
	if f.Set {
		return "line " + strconv.Itoa(f.Line)
	}
	return "the default"
}

// durationOrOff returns f's value, def when the key is absent, or off when
// it is 0s. like is an example value for the error when def is 0.
func (c *checker) durationOrOff(f field[time.Duration], def, off time.Duration, like string) time.Duration {
	if !f.Set {
		return def
	}
	switch {
	case f.V < 0 && def > 0:
		c.errorf(f.loc, "must be 0s or more, got %s; write a duration like %s (the default), or 0s to turn it off",
			formatDuration(f.V), formatDuration(def))
		return def
	case f.V < 0:
		c.errorf(f.loc, "must be 0s or more, got %s; write a duration like %s, or 0s (the default) to turn it off",
			formatDuration(f.V), like)
		return def
	case f.V == 0:
		return off
	}
	return f.V
}

func (c *checker) balance(f field[string]) upstream.Balance {
	if f.Set && !slices.Contains(balances, f.V) {
		if s := suggest(f.V, balances); s != "" {
			c.errorf(f.loc, "%q is not a balancing algorithm; did you mean %s? Write %s", f.V, s, orList(balances))
			return upstream.DefaultBalance
		}
	}
	return upstream.Balance(c.oneOf(f, "balancing algorithm", string(upstream.DefaultBalance), balances...))
}

// balanceOK reports whether the balance key holds a valid value, so that the
// keys which depend on it are checked against what was meant.
func balanceOK(f field[string]) bool {
	return !f.Set || slices.Contains(balances, f.V)
}

// onlyWith reports a key that is only read with another balance.
func (c *checker) onlyWith(key string, f loc, want upstream.Balance, r *rawUpstream, got upstream.Balance) {
	c.errorf(f, "%s is only read with balance: %s, and balance is %s (%s); remove %s or write balance: %s",
		key, want, got, lineOrDefault(r.Balance), key, want)
}

func (c *checker) stickyCookie(r *rawUpstream, b upstream.Balance) string {
	f := r.StickyCookie
	if !f.Set {
		return upstream.DefaultStickyCookie
	}
	if balanceOK(r.Balance) && b != upstream.BalanceSticky {
		c.onlyWith("sticky_cookie", f.loc, upstream.BalanceSticky, r, b)
		return upstream.DefaultStickyCookie
	}
	if f.V == "" {
		c.errorf(f.loc, "is empty; write the session cookie's name like %s (the default), or leave the key out", upstream.DefaultStickyCookie)
		return upstream.DefaultStickyCookie
	}
	if !isToken(f.V) {
		c.errorf(f.loc, "%q is not a cookie name; write a name of letters, digits and !#$%%&'*+-.^_`|~ like %s", f.V, upstream.DefaultStickyCookie)
		return upstream.DefaultStickyCookie
	}
	return f.V
}

func (c *checker) hashHeader(r *rawUpstream, b upstream.Balance) string {
	f := r.HashHeader
	if !f.Set {
		return ""
	}
	if balanceOK(r.Balance) && b != upstream.BalanceHash {
		c.onlyWith("hash_header", f.loc, upstream.BalanceHash, r, b)
		return ""
	}
	if f.V != "" && !isToken(f.V) {
		c.errorf(f.loc, "%q is not a header name; write a header name like X-User, or leave the key out to hash the client IP", f.V)
		return ""
	}
	return f.V
}

// route checks a target's route: Tomcat's jvmRoute, the part of the session
// id after its last ".".
func (c *checker) route(f field[string]) string {
	if !f.Set {
		return ""
	}
	switch {
	case f.V == "":
		c.errorf(f.loc, "is empty; write the jvmRoute of this target's Tomcat, like node1, or leave the key out")
	case strings.Contains(f.V, "."):
		c.errorf(f.loc, "%q contains \".\"; the route is read after the last \".\" of the session id, so it cannot contain one: write the jvmRoute without dots, like node1", f.V)
	case !validName(f.V):
		c.errorf(f.loc, "%q is not a valid route; use only letters, digits, \"_\" and \"-\", like node1 (Tomcat's jvmRoute)", f.V)
	default:
		return f.V
	}
	return ""
}

// targetRoles checks what the targets' route and backup keys need of the
// upstream as a whole.
func (c *checker) targetRoles(r *rawUpstream) {
	ts := r.Targets.V
	if len(ts) == 0 {
		return // reported as missing
	}
	anyRoute, allBackup := false, true
	for _, t := range ts {
		anyRoute = anyRoute || t.Route.V != ""
		allBackup = allBackup && t.Backup.V
	}
	if r.Balance.V == string(upstream.BalanceSticky) && !anyRoute {
		c.errorf(r.Balance.loc, "balance: sticky needs targets with a route, and no target has one; give each target a route: matching Tomcat's jvmRoute, like {url: http://10.0.0.5:8080, route: node1}")
	}
	if allBackup {
		c.errorf(r.Targets.loc, "every target has backup: true, so none takes requests normally; remove backup: true from at least one target")
	}
}

// healthCheck checks health_check. For ajp:// targets the check is an AJP
// CPING, so the keys of the HTTP request are errors and the returned
// Method, Path, Host and Expect* stay zero.
func (c *checker) healthCheck(f field[rawHealthCheck], isAJP bool) *upstream.HealthCheck {
	if !f.Set {
		return nil
	}
	r := &f.V
	hc := &upstream.HealthCheck{
		Interval: c.duration(r.Interval, upstream.DefaultHealthInterval),
		Timeout:  c.duration(r.Timeout, upstream.DefaultHealthTimeout),
		Fall:     c.intRange(r.Fall, 1, 100, upstream.DefaultHealthFall),
		Rise:     c.intRange(r.Rise, 1, 100, upstream.DefaultHealthRise),
	}
	if isAJP {
		for _, k := range []field[string]{r.Method, r.Path, r.Host, r.ExpectStatus} {
			if k.Set {
				c.errorf(k.loc, "for ajp:// targets the health check is an AJP CPING; remove method, path, host and expect_status")
			}
		}
	} else {
		hc.Method = c.healthMethod(r.Method)
		hc.Path = c.healthPath(r.Path)
		hc.Host = c.hostHeader(r.Host)
		hc.ExpectMin, hc.ExpectMax = c.expectStatus(r.ExpectStatus)
	}
	if hc.Timeout >= hc.Interval {
		if r.Timeout.Set {
			c.errorf(r.Timeout.loc, "timeout %s must be less than interval %s (%s), so that one check ends before the next starts; lower timeout or raise interval",
				formatDuration(hc.Timeout), formatDuration(hc.Interval), lineOrDefault(r.Interval))
		} else {
			c.errorf(r.Interval.loc, "interval %s must be greater than timeout %s (the default), so that one check ends before the next starts; raise interval or set timeout below it",
				formatDuration(hc.Interval), formatDuration(hc.Timeout))
		}
	}
	return hc
}

func (c *checker) healthMethod(f field[string]) string {
	if !f.Set {
		return upstream.DefaultHealthMethod
	}
	switch {
	case f.V == "":
		c.errorf(f.loc, "is empty; write an HTTP method like GET (the default) or HEAD, or leave the key out")
	case !isToken(f.V):
		c.errorf(f.loc, "%q is not an HTTP method; write one like GET (the default) or HEAD", f.V)
	case f.V != strings.ToUpper(f.V):
		c.errorf(f.loc, "%q: HTTP methods are case-sensitive; write %s", f.V, strings.ToUpper(f.V))
	default:
		return f.V
	}
	return upstream.DefaultHealthMethod
}

func (c *checker) healthPath(f field[string]) string {
	if !f.Set {
		return upstream.DefaultHealthPath
	}
	if !strings.HasPrefix(f.V, "/") {
		c.errorf(f.loc, `%q does not start with "/"; write the path to request, like /health_check.html`, f.V)
		return upstream.DefaultHealthPath
	}
	if i := strings.IndexFunc(f.V, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '#' }); i >= 0 {
		c.errorf(f.loc, "%q contains %q; write a plain path, optionally with a query, like /health_check.html or /status?full=1", f.V, f.V[i])
		return upstream.DefaultHealthPath
	}
	return f.V
}

// expectStatus parses expect_status: a status code like 200, or a range like
// 200-399.
func (c *checker) expectStatus(f field[string]) (lo, hi int) {
	const like = "write a status code like 200 or a range like 200-399"
	if !f.Set {
		return upstream.DefaultExpectMin, upstream.DefaultExpectMax
	}
	if f.V == "" {
		c.errorf(f.loc, "is empty; %s (the default), or leave the key out", like)
		return upstream.DefaultExpectMin, upstream.DefaultExpectMax
	}
	a, b, isRange := strings.Cut(f.V, "-")
	code := func(s string) (int, bool) {
		s = strings.TrimSpace(s)
		n, err := strconv.Atoi(s)
		return n, err == nil && !strings.HasPrefix(s, "+")
	}
	lo, okLo := code(a)
	hi, okHi := lo, true
	if isRange {
		hi, okHi = code(b)
	}
	switch {
	case !okLo || !okHi:
		c.errorf(f.loc, "%q is not a status code or range; %s", f.V, like)
	case lo < 100 || lo > 599 || hi < 100 || hi > 599:
		c.errorf(f.loc, "%q: status codes are from 100 to 599; %s", f.V, like)
	case lo > hi:
		c.errorf(f.loc, "%q: the range starts above its end; write the lower code first, like %d-%d", f.V, hi, lo)
	default:
		return lo, hi
	}
	return upstream.DefaultExpectMin, upstream.DefaultExpectMax
}

// isToken reports whether s is an RFC 9110 token: what a header name, a
// cookie name or a method may be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
