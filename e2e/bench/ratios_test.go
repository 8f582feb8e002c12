package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rec is a made-up run: CPU-s per 100k, p99 in ms, completed requests and
// backend connections opened (-1: not counted).
func rec(cpu float64, p99ms int, requests, conns int64) runRec {
	return runRec{cpuPer100k: cpu, newConns: conns,
		res: loadResult{requests: requests, p99: time.Duration(p99ms) * time.Millisecond}}
}

func TestRatioCell(t *testing.T) {
	failed := runRec{failed: "wrk: boom"}
	for _, c := range []struct {
		name string
		w, p []runRec
		want string
	}{
		{"three rounds", []runRec{rec(2, 0, 1, 0), rec(3, 0, 1, 0), rec(4, 0, 1, 0)},
			[]runRec{rec(1, 0, 1, 0), rec(2, 0, 1, 0), rec(4, 0, 1, 0)}, "1.50x (2.00x, 1.50x, 1.00x)"},
		{"a failed round", []runRec{rec(2, 0, 1, 0), failed}, []runRec{rec(1, 0, 1, 0), rec(1, 0, 1, 0)}, "2.00x (2.00x, —)"},
		{"peer did not run", []runRec{rec(2, 0, 1, 0)}, nil, "—"},
		{"webtier did not run", nil, []runRec{rec(2, 0, 1, 0)}, "—"},
	} {
		if got := ratioCell(c.w, c.p, cpuOf); got != c.want {
			t.Errorf("%s: ratioCell = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestConnectsCell(t *testing.T) {
	for _, c := range []struct {
		name string
		recs []runRec
		want string
	}{
		{"pooled", []runRec{rec(1, 1, 100000, 50), rec(1, 1, 200000, 0), rec(1, 1, 100000, 2)}, "0.02 (0.50, 0.00, 0.02)"},
		{"one per request", []runRec{rec(1, 1, 1000, 1000)}, "1000.00 (1000.00)"},
		{"not counted", []runRec{rec(1, 1, 1000, -1)}, "—"},
		{"failed and counted", []runRec{{failed: "x"}, rec(1, 1, 2000, 1)}, "0.50 (—, 0.50)"},
		{"no runs", nil, "—"},
	} {
		if got := connectsCell(c.recs); got != c.want {
			t.Errorf("%s: connectsCell = %q, want %q", c.name, got, c.want)
		}
	}
}

// testReport is a report of two HTTP tests and the AJP test with webtier,
// HAProxy, httpd and Caddy (nginx not run), two rounds each.
func testReport() *report {
	byName := map[string]*target{}
	for _, t := range targets {
		byName[t.name] = t
	}
	var insts []*inst
	for _, n := range []string{"direct", "webtier", "haproxy", "nginx", "httpd", "caddy", "tomcat", "webtier-ajp", "httpd-ajp"} {
		in := &inst{t: byName[n]}
		if n == "nginx" {
			in.na = "n/a: nginx not installed"
		}
		insts = append(insts, in)
	}
	return &report{
		opts:  options{rounds: 2, idle: 2000, cmdline: "-rounds 2 -scenarios ka100,close,ajp", scale: []int{10000, 19000}, scaleWindow: 10 * time.Second},
		scs:   []scenario{scenarios[0], scenarios[2], scenarios[4]}, // ka100, close, ajp
		insts: insts,
		date:  "2026-12-07 20:00 UTC",
		results: map[string]map[string][]runRec{
			"ka100": {
				"direct":  {rec(1, 1, 300000, 51), rec(1, 1, 300000, 50)},
				"webtier": {rec(2, 6, 100000, 50), rec(2.2, 6, 100000, 0)},
				"haproxy": {rec(1.2, 4, 200000, 0), rec(1.1, 3, 200000, 0)},
				"httpd":   {rec(4.4, 6, 100000, 0), rec(4.4, 12, 100000, 0)},
				"caddy":   {rec(6, 12, 50000, 5), rec(6.6, 12, 50000, 5)},
			},
			"close": {
				"webtier": {rec(3, 9, 50000, 500), rec(3, 9, 50000, 400)},
				"haproxy": {rec(3.5, 8, 50000, 0), rec(3.5, 8, 50000, 0)},
			},
			"ajp": {
				"webtier-ajp": {rec(5, 10, 100000, 50), rec(5, 10, 100000, 0)},
				"httpd-ajp":   {rec(9, 9, 100000, 0), rec(9, 9, 100000, 0)},
			},
		},
		idle: map[string]idleResult{"webtier": {held: 2000, rssBefore: 10000, rssAfter: 11200}},
		scale: map[string]scaleResult{
			"webtier": {freshRSS: 20000, oneCPU: 4.5, oneOK: true, levels: []scaleLevel{
				{want: 10000, held: 10000, rssKiB: 45000, rssPerConnKiB: 2.5, cpuMsPerSec: 6.5},
				{want: 19000, held: 19000, rssKiB: 71300, rssPerConnKiB: 2.7, cpuMsPerSec: 6.6}}},
			"haproxy": {freshRSS: 20000, oneCPU: 0.3, oneOK: true, levels: []scaleLevel{
				{want: 10000, held: 9990, closedByServer: 10, rssKiB: 32000, rssPerConnKiB: 1.2, cpuMsPerSec: 0.3},
				{want: 19000, skipped: "skipped: needs 19512 open files"}}},
		},
	}
}

// TestRatioTables: each table has its rows, and not the row that does
// not belong in it.
func TestRatioTables(t *testing.T) {
	for _, c := range []struct {
		name   string
		write  func(*strings.Builder)
		rows   []string
		absent string // no such row
		why    string // why not
	}{
		{name: "peer ratios", write: testReport().peerRatioTable, rows: []string{
			"| test | metric | ÷ HAProxy | ÷ nginx | ÷ httpd | ÷ Caddy |",
			// CPU medians: webtier 2.1, HAProxy 1.15, httpd 4.4, Caddy 6.3.
			"| ka100 | CPU-s / 100k req | 1.83x (1.67x, 2.00x) | — | 0.48x (0.45x, 0.50x) | 0.33x (0.33x, 0.33x) |",
			// p99 medians: webtier 6, HAProxy 3.5, httpd 9, Caddy 12.
			"| ka100 | p99 | 1.71x (1.50x, 2.00x) | — | 0.67x (1.00x, 0.50x) | 0.50x (0.50x, 0.50x) |",
			"| close | CPU-s / 100k req | 0.86x (0.86x, 0.86x) | — | — | — |",
		}, absent: "| ajp |", why: "the AJP test has its own comparison"},
		{name: "connects", write: testReport().connectsTable, rows: []string{
			"| test | webtier | haproxy | nginx | httpd | caddy |",
			"| ka100 | 0.25 (0.50, 0.00) | 0.00 (0.00, 0.00) | — | 0.00 (0.00, 0.00) | 0.10 (0.10, 0.10) |",
			"| close | 9.00 (10.00, 8.00) | 0.00 (0.00, 0.00) | — | — | — |",
			// webtier-ajp and httpd-ajp in webtier's and httpd's columns.
			"| ajp | 0.25 (0.50, 0.00) | — | — | 0.00 (0.00, 0.00) | — |",
		}, absent: "direct", why: "the backend is not a proxy"},
		{name: "summary", write: testReport().summaryTable, rows: []string{
			"`go run ./e2e/bench -rounds 2 -scenarios ka100,close,ajp`, 2026-12-07 20:00 UTC, medians of 2 interleaved round(s); webtier at its defaults.",
			"| median | webtier | HAProxy | nginx | httpd | Caddy |",
			"| CPU-s per 100k requests, keep-alive, 100-byte response | 2.10 | 1.15 | — | 4.40 | 6.30 |",
			"| CPU-s per 100k requests, Connection: close per request, 100-byte response | 3.00 | 3.50 | — | — | — |",
			"| p99, keep-alive, 100-byte response | 6.00 ms | 3.50 ms | — | 9.00 ms | 12.00 ms |",
			"| backend connections per 1,000 requests, highest median of the tests | 9.00 | 0.00 | — | 0.00 | 0.10 |",
			"| memory per idle keep-alive connection (2000, after a warm-up) | 0.6 KiB | — | — | — | — |",
			"| RSS per idle connection at 10000, fresh start | 2.5 KiB | 1.2 KiB | — | — | — |",
			"| RSS per idle connection at 19000, fresh start | 2.7 KiB | — | — | — | — |",
			"| idle CPU, 1 connection | 4.50 ms/s | 0.30 ms/s | — | — | — |",
			"| idle CPU, 19000 connections | 6.60 ms/s | — | — | — | — |",
		}, absent: "p99, Connection: close", why: "p99 row for the close test"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := table(c.write)
			wantRows(t, got, c.rows...)
			if strings.Contains(got, c.absent) {
				t.Errorf("%s:\n%s", c.why, got)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"-rounds", "3", "-proxies", "webtier,haproxy"}, "-rounds 3 -proxies webtier,haproxy"},
		{[]string{"-webtier-upstream", "max_idle_per_address: 1024"}, "-webtier-upstream 'max_idle_per_address: 1024'"},
		{[]string{"-out", "it's.md"}, `-out 'it'\''s.md'`},
		{[]string{"-scenarios", ""}, "-scenarios ''"},
	} {
		if got := commandLine(c.args); got != c.want {
			t.Errorf("commandLine(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}

func TestParseUpstreamKeys(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{"", nil, false},
		{"max_idle_per_address: 1024", []string{"max_idle_per_address: 1024"}, false},
		{" max_idle_per_address:1024 ; idle_timeout: 90s ;", []string{"max_idle_per_address: 1024", "idle_timeout: 90s"}, false},
		{"retries: {attempts: 2, rescue_grace: 1s}", []string{"retries: {attempts: 2, rescue_grace: 1s}"}, false},
		{"max_idle_per_address", nil, true},
		{"max_idle_per_address:", nil, true},
		{"Bad-Key: 1", nil, true},
		{"a: 1\n  targets: [x]", nil, true}, // a newline cannot smuggle keys in
	} {
		got, err := parseUpstreamKeys(c.in)
		if (err != nil) != c.wantErr || strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("parseUpstreamKeys(%q) = %q, %v; want %q, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
}

// TestWriteWebtierDefaults: webtier's configs set no performance key unless
// -webtier-upstream asks, as a user following the README writes them.
func TestWriteWebtierDefaults(t *testing.T) {
	tuned := []string{"max_idle_per_address", "idle_timeout", "GOMAXPROCS", "connect_timeout"}
	for _, c := range []struct {
		name  string
		write func(e *env, dir string, port, tlsPort int) ([]string, []string, error)
	}{{"webtier", writeWebtier}, {"webtier-ajp", writeWebtierAJP}} {
		for _, extra := range [][]string{nil, {"max_idle_per_address: 1024"}} {
			dir := t.TempDir()
			e := &env{backendPort: 1, ajpPort: 2, certFile: "c.pem", keyFile: "k.pem", webtierBin: "webtier", webtierUpstream: extra}
			argv, _, err := c.write(e, dir, 3, 4)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "webtier.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			conf := string(b)
			for _, k := range tuned {
				if strings.Contains(conf, k) && (extra == nil || !strings.Contains(extra[0], k)) {
					t.Errorf("%s (extra %q) sets %s:\n%s", c.name, extra, k, conf)
				}
			}
			if extra != nil && !strings.Contains(conf, "\n    max_idle_per_address: 1024\n") {
				t.Errorf("%s: -webtier-upstream key not under the upstream:\n%s", c.name, conf)
			}
			if argv[len(argv)-1] != filepath.Join(dir, "webtier.yaml") {
				t.Errorf("%s: argv %q", c.name, argv)
			}
		}
	}
}
