package main

import (
	"fmt"
	"strings"
)

// This file writes the performance issue's targets for the HTTP tests as
// one table, so that a run says by itself whether they hold: webtier's CPU
// per request against httpd's and Caddy's (first milestone: at most half)
// and HAProxy's (the goal: at most the same), p99 against HAProxy's in the
// keep-alive tests, and memory per idle keep-alive connection (first
// milestone 8 KiB, goal 2 KiB). The AJP and failover targets have tables
// of their own in their sections.

// cpuTargets are the CPU-per-request targets of every HTTP test.
var cpuTargets = []struct {
	peer, label, stage string
	max                float64
}{
	{"httpd", "httpd", "first milestone", 0.5},
	{"caddy", "Caddy", "first milestone", 0.5},
	{"haproxy", "HAProxy", "goal", 1},
}

// targetsTable writes the targets of the HTTP tests that ran, with the
// ratio of medians, each round's ratio, and whether the median ratio
// meets the target.
func (r *report) targetsTable(b *strings.Builder) {
	var rows []string
	add := func(what, test string, w, p []runRec, get func(runRec) float64, max float64, stage string) {
		wm, pm := medianOf(w, get), medianOf(p, get)
		if wm <= 0 || pm <= 0 {
			return
		}
		per := perRound(w, p, get)
		ratio := wm / pm
		met := "no"
		if ratio <= max {
			met = "yes"
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %.2fx | %s | ≤ %.1fx (%s) | %s |",
			what, test, ratio, strings.Join(per, ", "), max, stage, met))
	}
	cpu, p99 := cpuOf, p99Of
	for _, sc := range r.scs {
		if sc.suite != "" {
			continue
		}
		res := r.results[sc.key]
		for _, t := range cpuTargets {
			add("CPU per request, webtier ÷ "+t.label, sc.key, res["webtier"], res[t.peer], cpu, t.max, t.stage)
		}
		if sc.tool == "wrk" && len(sc.headers) == 0 { // the keep-alive tests
			add("p99, webtier ÷ HAProxy", sc.key, res["webtier"], res["haproxy"], p99, 1, "goal")
		}
	}
	if ir, ok := r.idle["webtier"]; ok && ir.err == nil && ir.held > 0 {
		kib := ir.rssPerConnKiB()
		for _, t := range []struct {
			max   float64
			stage string
		}{{8, "first milestone"}, {2, "goal"}} {
			met := "no"
			if kib <= t.max {
				met = "yes"
			}
			rows = append(rows, fmt.Sprintf("| memory per idle keep-alive connection, webtier | idle | %.1f KiB | — | ≤ %.0f KiB (%s) | %s |",
				kib, t.max, t.stage, met))
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("### Targets of the HTTP tests (medians; per round in order)\n\n")
	b.WriteString("| target | test | ratio of medians | per round | target | met |\n| --- | --- | ---: | --- | --- | --- |\n")
	b.WriteString(strings.Join(rows, "\n"))
	b.WriteString("\n\n")
}

// medianOf is the median of get over the runs that did not fail.
func medianOf(recs []runRec, get func(runRec) float64) float64 {
	var v []float64
	for _, rc := range recs {
		if rc.failed == "" {
			v = append(v, get(rc))
		}
	}
	return median(v)
}
