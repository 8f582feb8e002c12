package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// scenario is one load pattern: one table in the report.
type scenario struct {
	key   string // for -scenarios
	title string
	tool  string // "wrk" or "h2load"
	path  string
	// headers are extra request headers (wrk -H).
	headers []string
	tls     bool // needs the target's TLS+HTTP/2 listener
	// suite selects the columns: the targets with the same suite ("": the
	// nginx backend and the five proxies; "ajp": Tomcat, webtier and httpd
	// over AJP).
	suite string
	// backendCPU, when set, names the backend ("Tomcat") whose CPU per
	// 100k requests gets a column of its own.
	backendCPU string
	// goal, when set, adds the webtier-vs-peer ratios below the
	// table.
	goal *goal
}

// goal is a webtier-vs-peer comparison with the targets the issue sets.
type goal struct {
	webtier, peer string  // target names
	minRPS        float64 // webtier req/s ÷ peer req/s must be at least this
	maxCPU        float64 // webtier CPU/100k ÷ peer CPU/100k must be at most this
}

// scenarios in report order. Add a row to add a table.
var scenarios = []scenario{
	{key: "ka100", title: "keep-alive, 100-byte response", tool: "wrk", path: "/100"},
	{key: "ka8k", title: "keep-alive, 8 KiB response", tool: "wrk", path: "/8k"},
	{key: "close", title: "Connection: close per request, 100-byte response", tool: "wrk", path: "/100",
		headers: []string{"Connection: close"}},
	{key: "h2", title: "HTTP/2 over TLS, 100-byte response", tool: "h2load", path: "/100", tls: true},
	{key: "ajp", title: "AJP to Tomcat 10, keep-alive, static 100-byte file", tool: "wrk", path: "/100.txt",
		suite: "ajp", backendCPU: "Tomcat", goal: &goal{webtier: "webtier-ajp", peer: "httpd-ajp", minRPS: 1.5, maxCPU: 0.5}},
	// Static files and compression (static.go): webtier against nginx.
	{key: "static100", title: "static file, 100 bytes, keep-alive", tool: "wrk", path: "/100.txt", suite: "static"},
	{key: "static1m", title: "static file, 1 MiB, keep-alive", tool: "wrk", path: "/1m.bin", suite: "static"},
	{key: "gzip20k", title: "gzip of a 20 KiB HTML page (level 1 both), keep-alive", tool: "wrk", path: "/page.html",
		headers: []string{"Accept-Encoding: gzip"}, suite: "static"},
	// Its own peers, load loop and table: failover.go.
	{key: failoverSuite, title: "DNS failover: the record moves, the old backend vanishes", tool: failoverSuite, suite: failoverSuite},
}

// loadOpts are the load generator settings shared by all runs.
type loadOpts struct {
	duration  time.Duration
	conns     int
	threads   int
	h2Streams int // h2load -m: concurrent streams per connection
}

// h2Conns is the number of HTTP/2 connections: conns/h2Streams, so that the
// h2 scenario has the same number of requests in flight as the HTTP/1.1
// ones (and the proxies' upstream keep-alive pools of 64 suffice for it).
func (o loadOpts) h2Conns() int {
	return max(o.threads, o.conns/o.h2Streams)
}

// loadResult is what one run of the load tool reports.
type loadResult struct {
	requests int64   // completed requests
	seconds  float64 // measured duration
	rps      float64
	p50, p99 time.Duration
	errors   int64  // socket errors + non-2xx/3xx (wrk) or failed/errored/timeout + non-2xx (h2load)
	errText  string // what the errors were
}

// runLoad runs the scenario's tool against url, bounded by opts.duration
// plus a margin (the process is killed by PID at the bound or on Ctrl-C).
func runLoad(ctx context.Context, sc scenario, url string, o loadOpts, workDir string) (loadResult, error) {
	bound := o.duration + 20*time.Second
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var argv []string
	var logFile string
	secs := int(math.Max(1, math.Round(o.duration.Seconds())))
	switch sc.tool {
	case "wrk":
		argv = []string{"wrk", "-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.conns),
			"-d" + strconv.Itoa(secs) + "s", "--latency", "--timeout", "5s"}
		for _, h := range sc.headers {
			argv = append(argv, "-H", h)
		}
		argv = append(argv, url)
	case "h2load":
		logFile = filepath.Join(workDir, "h2load-requests.log")
		_ = os.Remove(logFile)
		argv = []string{"h2load", "-t" + strconv.Itoa(o.threads), "-c" + strconv.Itoa(o.h2Conns()),
			"-m" + strconv.Itoa(o.h2Streams), "-D" + strconv.Itoa(secs), "--log-file=" + logFile, url}
	default:
		return loadResult{}, fmt.Errorf("unknown tool %q", sc.tool)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = childAttr()
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return loadResult{}, fmt.Errorf("%s: %w", argv[0], ctx.Err())
	}
	if err != nil {
		return loadResult{}, fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	if sc.tool == "wrk" {
		return parseWrk(string(out))
	}
	r, err := parseH2load(string(out))
	if err != nil {
		return r, err
	}
	f, err := os.Open(logFile)
	if err != nil {
		return r, err
	}
	defer f.Close()
	lat, bad, err := parseH2loadLog(f)
	if err != nil {
		return r, err
	}
	if len(lat) == 0 {
		return r, errors.New("h2load: empty request log")
	}
	r.p50, r.p99 = percentile(lat, 50), percentile(lat, 99)
	if bad > 0 && r.errText == "" {
		r.errText = fmt.Sprintf("%d non-2xx", bad)
	}
	return r, nil
}

var (
	wrkReqLine  = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m|h),`)
	wrkRPS      = regexp.MustCompile(`(?m)^Requests/sec:\s+([0-9.]+)`)
	wrkPct      = regexp.MustCompile(`(?m)^\s+(50|99)(?:\.0+)?%\s+([0-9.]+)(us|ms|s|m|h)\s*$`)
	wrkSockErr  = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	h2Finished  = regexp.MustCompile(`(?m)^finished in ([0-9.]+)(us|ms|s|m|h), ([0-9.]+) req/s`)
	h2Requests  = regexp.MustCompile(`(?m)^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout`)
	h2Status    = regexp.MustCompile(`(?m)^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx`)
	unitSeconds = map[string]float64{"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
)

func toDuration(num, unit string) (time.Duration, error) {
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	mult, ok := unitSeconds[unit]
	if !ok {
		return 0, fmt.Errorf("unknown time unit %q", unit)
	}
	return time.Duration(v * mult * float64(time.Second)), nil
}

func atoi64(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }

// parseWrk parses the output of `wrk --latency`.
func parseWrk(out string) (loadResult, error) {
	var r loadResult
	m := wrkReqLine.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no 'N requests in' line in output:\n%s", out)
	}
	r.requests = atoi64(m[1])
	d, err := toDuration(m[2], m[3])
	if err != nil {
		return r, err
	}
	r.seconds = d.Seconds()
	m = wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("wrk: no Requests/sec line")
	}
	r.rps, _ = strconv.ParseFloat(m[1], 64)
	for _, pm := range wrkPct.FindAllStringSubmatch(out, -1) {
		d, err := toDuration(pm[2], pm[3])
		if err != nil {
			return r, err
		}
		if pm[1] == "50" {
			r.p50 = d
		} else {
			r.p99 = d
		}
	}
	if r.p50 == 0 || r.p99 == 0 {
		return r, fmt.Errorf("wrk: no latency distribution (50%%/99%%) in output (was --latency given?)")
	}
	var parts []string
	if m := wrkSockErr.FindStringSubmatch(out); m != nil {
		for i, name := range []string{"connect", "read", "write", "timeout"} {
			if n := atoi64(m[i+1]); n > 0 {
				r.errors += n
				parts = append(parts, fmt.Sprintf("%d %s", n, name))
			}
		}
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		n := atoi64(m[1])
		r.errors += n
		parts = append(parts, fmt.Sprintf("%d non-2xx/3xx", n))
	}
	r.errText = strings.Join(parts, ", ")
	return r, nil
}

// parseH2load parses h2load's summary (throughput, counts); latency
// percentiles come from its --log-file (parseH2loadLog), since the summary
// only has min/max/mean/sd.
func parseH2load(out string) (loadResult, error) {
	var r loadResult
	m := h2Finished.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no 'finished in' line in output:\n%s", out)
	}
	d, err := toDuration(m[1], m[2])
	if err != nil {
		return r, err
	}
	r.seconds = d.Seconds()
	r.rps, _ = strconv.ParseFloat(m[3], 64)
	m = h2Requests.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("h2load: no 'requests:' line in output:\n%s", out)
	}
	r.requests = atoi64(m[4]) // succeeded
	var parts []string
	for i, name := range []string{"failed", "errored", "timeout"} {
		if n := atoi64(m[5+i]); n > 0 {
			r.errors += n
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
		}
	}
	if m := h2Status.FindStringSubmatch(out); m != nil {
		if n := atoi64(m[3]) + atoi64(m[4]); n > 0 {
			r.errors += n
			parts = append(parts, fmt.Sprintf("%d 4xx/5xx", n))
		}
	}
	r.errText = strings.Join(parts, ", ")
	if r.requests == 0 {
		return r, fmt.Errorf("h2load: no request succeeded:\n%s", out)
	}
	return r, nil
}

// parseH2loadLog reads h2load's per-request log: tab-separated start time
// (µs since epoch), HTTP status, response time in µs. It returns the
// response times and the number of non-2xx/3xx statuses.
func parseH2loadLog(f *os.File) ([]time.Duration, int, error) {
	var lat []time.Duration
	bad := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) < 3 {
			continue
		}
		status, err1 := strconv.Atoi(fields[1])
		us, err2 := strconv.ParseInt(fields[2], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, 0, fmt.Errorf("h2load log: bad line %q", sc.Text())
		}
		if status < 200 || status >= 400 {
			bad++
		}
		lat = append(lat, time.Duration(us)*time.Microsecond)
	}
	return lat, bad, sc.Err()
}

// percentile returns the p-th percentile (nearest rank) of d; d is sorted in place.
func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	rank := int(math.Ceil(p / 100 * float64(len(d))))
	if rank < 1 {
		rank = 1
	}
	return d[rank-1]
}
