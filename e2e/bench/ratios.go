package main

// This file writes the tables that compare webtier with each peer round by
// round (the performance issue's targets are ratios, and the machine drifts
// between rounds, so each round's ratio is shown next to the ratio of the
// medians), the backend connections each proxy opened per 1,000 requests,
// and one summary table in the form README.md quotes.

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// comparedPeers are the proxies webtier is compared with, in column order.
var comparedPeers = []struct{ name, label string }{
	{"haproxy", "HAProxy"},
	{"nginx", "nginx"},
	{"httpd", "httpd"},
	{"caddy", "Caddy"},
}

// peerLabel is a target's name as the summary's columns show it.
func peerLabel(name string) string {
	for _, p := range comparedPeers {
		if p.name == name {
			return p.label
		}
	}
	return name
}

// perRound is each round's ratio get(w[i]) ÷ get(p[i]), "—" where either
// run failed or the divisor is 0. Runs of one round are back to back, so
// a round's ratio is less exposed to the machine's drift than the medians.
func perRound(w, p []runRec, get func(runRec) float64) []string {
	var per []string
	for i := 0; i < len(w) && i < len(p); i++ {
		if w[i].failed != "" || p[i].failed != "" || get(p[i]) <= 0 {
			per = append(per, "—")
			continue
		}
		per = append(per, fmt.Sprintf("%.2fx", get(w[i])/get(p[i])))
	}
	return per
}

// ratioCell is "ratio of medians (round 1, round 2, ...)", or "—" when a
// side has no successful run.
func ratioCell(w, p []runRec, get func(runRec) float64) string {
	wm, pm := medianOf(w, get), medianOf(p, get)
	if wm <= 0 || pm <= 0 {
		return "—"
	}
	return fmt.Sprintf("%.2fx (%s)", wm/pm, strings.Join(perRound(w, p, get), ", "))
}

func cpuOf(x runRec) float64 { return x.cpuPer100k }
func p99Of(x runRec) float64 { return float64(x.res.p99) }

// peerRatioTable writes webtier ÷ each compared peer for CPU per request
// and p99, in every test of the HTTP suite that ran.
func (r *report) peerRatioTable(b *strings.Builder) {
	var rows []string
	for _, sc := range r.scs {
		if sc.suite != "" {
			continue
		}
		res := r.results[sc.key]
		if len(res["webtier"]) == 0 {
			continue
		}
		for _, m := range []struct {
			name string
			get  func(runRec) float64
		}{{"CPU-s / 100k req", cpuOf}, {"p99", p99Of}} {
			cells := []string{sc.key, m.name}
			for _, p := range comparedPeers {
				cells = append(cells, ratioCell(res["webtier"], res[p.name], m.get))
			}
			rows = append(rows, "| "+strings.Join(cells, " | ")+" |")
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("### webtier ÷ each peer (ratio of medians; each round in brackets; below 1.00x webtier needs less)\n\n")
	hdr := "| test | metric |"
	sep := "| --- | --- |"
	for _, p := range comparedPeers {
		hdr += " ÷ " + p.label + " |"
		sep += " --- |"
	}
	b.WriteString(hdr + "\n" + sep + "\n" + strings.Join(rows, "\n") + "\n\n")
}

// connectsPer1k is the backend connections a run opened per 1,000
// completed requests; ok is false when they were not counted.
func connectsPer1k(rc runRec) (v float64, ok bool) {
	if rc.failed != "" || rc.newConns < 0 || rc.res.requests <= 0 {
		return 0, false
	}
	return float64(rc.newConns) / float64(rc.res.requests) * 1000, true
}

// connectsCell is "median (round 1, round 2, ...)" of connectsPer1k, or
// "—" when no run was counted.
func connectsCell(recs []runRec) string {
	var vals []float64
	var per []string
	for _, rc := range recs {
		v, ok := connectsPer1k(rc)
		if !ok {
			per = append(per, "—")
			continue
		}
		vals = append(vals, v)
		per = append(per, fmt.Sprintf("%.2f", v))
	}
	if len(vals) == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f (%s)", median(vals), strings.Join(per, ", "))
}

// proxyColumns are the proxies of the connects table: every target that is
// not a backend, by the name -proxies selects it by (webtier-ajp is in
// webtier's column), in targets order.
func (r *report) proxyColumns() []string {
	var cols []string
	for _, in := range r.insts {
		if in.t.direct {
			continue
		}
		name := in.t.name
		if in.t.proxy != "" {
			name = in.t.proxy
		}
		if !slices.Contains(cols, name) {
			cols = append(cols, name)
		}
	}
	return cols
}

// connectsTable writes the backend connections each proxy opened per
// 1,000 requests, in every test, as the median and each round. In steady
// state a proxy that pools its backend connections opens close to none.
func (r *report) connectsTable(b *strings.Builder) {
	cols := r.proxyColumns()
	var rows []string
	for _, sc := range r.scs {
		cells := []string{sc.key}
		any := false
		for _, c := range cols {
			cell := "—"
			for _, in := range r.insts {
				if in.t.suite == sc.suite && !in.t.direct && (in.t.name == c || in.t.proxy == c) {
					cell = connectsCell(r.results[sc.key][in.t.name])
				}
			}
			any = any || cell != "—"
			cells = append(cells, cell)
		}
		if any {
			rows = append(rows, "| "+strings.Join(cells, " | ")+" |")
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("### Backend connections opened per 1,000 requests (median; each round in brackets)\n\n")
	b.WriteString("Counted on the backend (nginx `stub_status` accepts; Tomcat from `/proc/net/tcp`). About 0 means the proxy reused pooled connections; 1,000 would be one per request.\n\n")
	hdr, sep := "| test |", "| --- |"
	for _, c := range cols {
		hdr += " " + c + " |"
		sep += " ---: |"
	}
	b.WriteString(hdr + "\n" + sep + "\n" + strings.Join(rows, "\n") + "\n\n")
}

// summaryTable writes the medians of the HTTP suite in the form README.md
// quotes, with the command that produced them.
func (r *report) summaryTable(b *strings.Builder) {
	var cols []string // target names of the HTTP suite's proxies
	for _, in := range r.insts {
		if in.t.suite == "" && !in.t.direct {
			cols = append(cols, in.t.name)
		}
	}
	if len(cols) == 0 {
		return
	}
	var rows []string
	row := func(label string, cell func(name string) string) {
		cells := []string{label}
		any := false
		for _, c := range cols {
			v := cell(c)
			if v == "" {
				v = "—"
			} else {
				any = true
			}
			cells = append(cells, v)
		}
		if any {
			rows = append(rows, "| "+strings.Join(cells, " | ")+" |")
		}
	}
	var http []scenario
	for _, sc := range r.scs {
		if sc.suite == "" {
			http = append(http, sc)
		}
	}
	for _, sc := range http {
		row("CPU-s per 100k requests, "+sc.title, func(n string) string {
			if v := medianOf(r.results[sc.key][n], cpuOf); v > 0 {
				return fmt.Sprintf("%.2f", v)
			}
			return ""
		})
	}
	for _, sc := range http {
		if sc.tool != "wrk" || len(sc.headers) > 0 {
			continue // p99 of the keep-alive tests only, as the targets
		}
		row("p99, "+sc.title, func(n string) string {
			if v := medianOf(r.results[sc.key][n], p99Of); v > 0 {
				return fmtDur(time.Duration(v))
			}
			return ""
		})
	}
	row("backend connections per 1,000 requests, highest median of the tests", func(n string) string {
		worst, seen := 0.0, false
		for _, sc := range http {
			var vals []float64
			for _, rc := range r.results[sc.key][n] {
				if v, ok := connectsPer1k(rc); ok {
					vals = append(vals, v)
				}
			}
			if len(vals) > 0 {
				worst, seen = max(worst, median(vals)), true
			}
		}
		if !seen {
			return ""
		}
		return fmt.Sprintf("%.2f", worst)
	})
	if r.idle != nil {
		row(fmt.Sprintf("memory per idle keep-alive connection (%d, after a warm-up)", r.opts.idle), func(n string) string {
			if ir, ok := r.idle[n]; ok && ir.err == nil && ir.held > 0 {
				return fmt.Sprintf("%.1f KiB", ir.rssPerConnKiB())
			}
			return ""
		})
	}
	if r.scale != nil {
		for i, n := range r.scaleLevels() {
			row(fmt.Sprintf("RSS per idle connection at %d, fresh start", n), func(name string) string {
				if lv, ok := r.scale[name].level(i); ok {
					return fmt.Sprintf("%.1f KiB", lv.rssPerConnKiB)
				}
				return ""
			})
		}
		row("idle CPU, 1 connection", func(name string) string {
			if sr, ok := r.scale[name]; ok && sr.oneOK {
				return fmt.Sprintf("%.2f ms/s", sr.oneCPU)
			}
			return ""
		})
		for i, n := range r.scaleLevels() {
			row(fmt.Sprintf("idle CPU, %d connections", n), func(name string) string {
				if lv, ok := r.scale[name].level(i); ok {
					return fmt.Sprintf("%.2f ms/s", lv.cpuMsPerSec)
				}
				return ""
			})
		}
	}
	if len(rows) == 0 {
		return
	}
	b.WriteString("### Summary (for README.md)\n\n")
	fmt.Fprintf(b, "`go run ./e2e/bench%s`, %s, medians of %d interleaved round(s); webtier at its defaults", r.opts.cmdlineSuffix(), r.date, r.opts.rounds)
	if r.opts.webtierUpstream != "" {
		fmt.Fprintf(b, " except `%s`", r.opts.webtierUpstream)
	}
	b.WriteString(". Details: [e2e/bench/README.md](e2e/bench/README.md).\n\n")
	hdr, sep := "| median |", "| --- |"
	for _, c := range cols {
		hdr += " " + peerLabel(c) + " |"
		sep += " ---: |"
	}
	b.WriteString(hdr + "\n" + sep + "\n" + strings.Join(rows, "\n") + "\n\n")
}

// cmdlineSuffix is the flags the benchmark was started with, as " -a b ..."
// ("" without flags).
func (o options) cmdlineSuffix() string {
	if o.cmdline == "" {
		return ""
	}
	return " " + o.cmdline
}

// commandLine quotes args for a shell where needed.
func commandLine(args []string) string {
	var out []string
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$;&|<>*?()[]{}\\`!#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}
