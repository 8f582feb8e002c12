package main

import (
	"strings"
	"testing"
	"time"
)

// TestTargetsTable checks the verdicts of the targets table on made-up
// runs: medians decide, each round's ratio is listed, and the p99 target
// applies to the keep-alive tests only.
func TestTargetsTable(t *testing.T) {
	run := func(cpu float64, p99ms int) runRec {
		return runRec{cpuPer100k: cpu, res: loadResult{p99: time.Duration(p99ms) * time.Millisecond}}
	}
	runs := func(cpu []float64, p99ms int) []runRec {
		var rr []runRec
		for _, c := range cpu {
			rr = append(rr, run(c, p99ms))
		}
		return rr
	}
	r := &report{
		scs: []scenario{scenarios[0], scenarios[2]}, // ka100, close
		results: map[string]map[string][]runRec{
			"ka100": {
				"webtier": runs([]float64{4, 5, 4.5}, 5),
				"httpd":   runs([]float64{10, 9, 8}, 7),    // 0.40x, 0.56x, 0.56x; medians 4.5/9 = 0.50x
				"caddy":   runs([]float64{12, 12, 12}, 14), // 0.38x
				"haproxy": runs([]float64{3, 3, 3}, 4),     // 1.50x; p99 1.25x
			},
			"close": {
				"webtier": runs([]float64{7, 7, 7}, 9),
				"httpd":   runs([]float64{13, 13, 13}, 12), // 0.54x
			},
		},
		idle: map[string]idleResult{"webtier": {held: 1000, rssBefore: 1000, rssAfter: 4000}}, // 3 KiB each
	}
	got := table(r.targetsTable)
	wantRows(t, got,
		"| CPU per request, webtier ÷ httpd | ka100 | 0.50x | 0.40x, 0.56x, 0.56x | ≤ 0.5x (first milestone) | yes |",
		"| CPU per request, webtier ÷ Caddy | ka100 | 0.38x | 0.33x, 0.42x, 0.38x | ≤ 0.5x (first milestone) | yes |",
		"| CPU per request, webtier ÷ HAProxy | ka100 | 1.50x | 1.33x, 1.67x, 1.50x | ≤ 1.0x (goal) | no |",
		"| p99, webtier ÷ HAProxy | ka100 | 1.25x | 1.25x, 1.25x, 1.25x | ≤ 1.0x (goal) | no |",
		"| CPU per request, webtier ÷ httpd | close | 0.54x | 0.54x, 0.54x, 0.54x | ≤ 0.5x (first milestone) | no |",
		"| memory per idle keep-alive connection, webtier | idle | 3.0 KiB | — | ≤ 8 KiB (first milestone) | yes |",
		"| memory per idle keep-alive connection, webtier | idle | 3.0 KiB | — | ≤ 2 KiB (goal) | no |",
	)
	if strings.Contains(got, "p99, webtier ÷ HAProxy | close") {
		t.Errorf("p99 target on the Connection: close test:\n%s", got)
	}
	if strings.Contains(got, "webtier ÷ Caddy | close") {
		t.Errorf("a row for a peer that did not run:\n%s", got)
	}
}

// wantRows fails the test for every row missing from the table got.
// table returns what write, one of the report's tables, writes.
func table(write func(*strings.Builder)) string {
	var b strings.Builder
	write(&b)
	return b.String()
}

func wantRows(t *testing.T, got string, rows ...string) {
	t.Helper()
	for _, want := range rows {
		if !strings.Contains(got, want) {
			t.Errorf("missing row\n%s\nin\n%s", want, got)
		}
	}
}
