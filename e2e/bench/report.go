package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"
)

// report collects the runs and renders the Markdown.
type report struct {
	opts       options
	scs        []scenario
	insts      []*inst
	machine    string
	date       string
	wrkVersion string
	h2Version  string
	results    map[string]map[string][]runRec // scenario key -> target -> runs
	idle       map[string]idleResult
	// scale is the idle-at-scale step by target name, nil when skipped.
	scale   map[string]scaleResult
	elapsed time.Duration
	// webtierLogs: what each webtier column logged (level warn and up).
	webtierLogs []webtierLog
	// failover is the failover scenario's section (failover.go), nil when
	// it was not selected.
	failover *foReport
}

type webtierLog struct {
	name  string
	lines int
	first []string
}

func (r *report) add(sc, target string, rec runRec) {
	if r.results[sc] == nil {
		r.results[sc] = map[string][]runRec{}
	}
	r.results[sc][target] = append(r.results[sc][target], rec)
}

func (r *report) header() string {
	var b strings.Builder
	o := r.opts
	fmt.Fprintf(&b, "## Benchmark run %s\n\n", r.date)
	fmt.Fprintf(&b, "- machine: %s\n", r.machine)
	if len(r.scs) == 0 { // only the failover scenario: its section describes its load and peers
		fmt.Fprintf(&b, "- everything on one machine over loopback: load generator, proxies, BIND and backends share its %d cores\n\n", runtime.NumCPU())
		return b.String()
	}
	fmt.Fprintf(&b, "- load: wrk -t%d -c%d -d%ds --latency; h2load -t%d -c%d -m%d -D%d; %d interleaved round(s); medians over rounds\n",
		o.load.threads, o.load.conns, int(o.load.duration.Seconds()), o.load.threads, o.load.h2Conns(), o.load.h2Streams,
		int(o.load.duration.Seconds()), o.rounds)
	fmt.Fprintf(&b, "- everything on one machine over loopback: load generator, proxy and backend share its %d cores\n", runtime.NumCPU())
	fmt.Fprintf(&b, "- %s\n", schedulingNote())
	for _, in := range r.insts {
		if in.t.name == "tomcat" {
			b.WriteString("- ajp: Tomcat is warmed up (JIT) by a run through each of its columns before measuring\n")
		}
	}
	b.WriteString("\n")
	b.WriteString("| peer | version | max open files |\n| --- | --- | ---: |\n")
	for _, in := range r.insts {
		name := in.t.name
		switch {
		case in.t.direct && in.t.suite == "":
			name = "backend (direct)"
		case in.t.direct:
			name = in.t.name + " (" + in.t.suite + " backend, direct)"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, in.version, in.nofile)
	}
	fmt.Fprintf(&b, "| wrk | %s | |\n| h2load | %s | |\n\n", r.wrkVersion, r.h2Version)
	return b.String()
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// row is the medians of one target in one scenario.
type row struct {
	ok                bool
	rps, spread       float64
	p50, p99          time.Duration
	cpu100k, rss, pss float64
	backendCPU100k    float64
	errors            int64
	newConns          float64
	errText, failed   string
	runs              int
}

func summarize(recs []runRec) row {
	var rw row
	var rps, p50, p99, cpu, bcpu, rss, pss, nc []float64
	for _, rc := range recs {
		if rc.failed != "" {
			rw.failed = rc.failed
			continue
		}
		rps = append(rps, rc.res.rps)
		p50 = append(p50, float64(rc.res.p50))
		p99 = append(p99, float64(rc.res.p99))
		cpu = append(cpu, rc.cpuPer100k)
		bcpu = append(bcpu, rc.backendCPUPer100k)
		rss = append(rss, float64(rc.rssKiB)/1024)
		pss = append(pss, float64(rc.pssKiB)/1024)
		nc = append(nc, float64(rc.newConns))
		rw.errors += rc.res.errors
		if rc.res.errText != "" && rw.errText == "" {
			rw.errText = rc.res.errText
		}
	}
	rw.runs = len(rps)
	if rw.runs == 0 {
		return rw
	}
	rw.ok = true
	rw.rps = median(rps)
	lo, hi := rps[0], rps[0]
	for _, v := range rps {
		lo, hi = min(lo, v), max(hi, v)
	}
	if rw.rps > 0 {
		rw.spread = (hi - lo) / rw.rps * 100
	}
	rw.p50, rw.p99 = time.Duration(median(p50)), time.Duration(median(p99))
	rw.cpu100k, rw.rss, rw.pss, rw.newConns = median(cpu), median(rss), median(pss), median(nc)
	rw.backendCPU100k = median(bcpu)
	return rw
}

func (r *report) markdown() string {
	var b strings.Builder
	for _, sc := range r.scs {
		r.scenarioTable(&b, sc)
	}
	r.peerRatioTable(&b)
	r.connectsTable(&b)
	if r.failover != nil {
		r.failover.markdown(&b)
	}
	r.targetsTable(&b)
	if r.idle != nil {
		fmt.Fprintf(&b, "### Memory per idle keep-alive client connection (%d connections, each after one GET /100)\n\n", r.opts.idle)
		b.WriteString("| proxy | held | RSS before MiB | RSS after MiB | KiB/conn (RSS) | KiB/conn (PSS) | RSS/conn vs webtier |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		wt, haveWT := r.idle["webtier"]
		for _, in := range r.insts {
			if in.t.suite != "" {
				continue
			}
			name := in.t.name
			if in.t.direct {
				name = "direct (backend nginx)"
			}
			ir, ok := r.idle[in.t.name]
			switch {
			case in.na != "" && !ok:
				fmt.Fprintf(&b, "| %s | %s | | | | | |\n", name, in.na)
				continue
			case !ok:
				continue
			case ir.err != nil:
				fmt.Fprintf(&b, "| %s | failed: %v | | | | | |\n", name, ir.err)
				continue
			}
			ratio := "—"
			if !in.t.direct && haveWT && wt.err == nil && wt.rssPerConnKiB() > 0 {
				ratio = fmt.Sprintf("%.1fx", ir.rssPerConnKiB()/wt.rssPerConnKiB())
			}
			held := fmt.Sprintf("%d", ir.held)
			if ir.closedByServer > 0 {
				held += fmt.Sprintf(" (%d closed)", ir.closedByServer)
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.1f | %s |\n", name, held,
				float64(ir.rssBefore)/1024, float64(ir.rssAfter)/1024, ir.rssPerConnKiB(), ir.pssPerConnKiB(), ratio)
		}
		b.WriteString("\n")
	}
	r.scaleTable(&b)
	r.summaryTable(&b)
	for _, l := range r.webtierLogs {
		if l.lines == 0 {
			fmt.Fprintf(&b, "%s logged nothing (level warn and above).\n\n", l.name)
			continue
		}
		fmt.Fprintf(&b, "%s logged %d line(s) (level warn and above); the first %d:\n\n```\n%s\n```\n\n", l.name, l.lines, len(l.first), strings.Join(l.first, "\n"))
	}
	fmt.Fprintf(&b, "Total runtime %s.\n", r.elapsed.Round(time.Second))
	return b.String()
}

// scenarioTable writes one scenario's table: the columns of its suite,
// medians over rounds, and the goal ratios when the scenario has some.
func (r *report) scenarioTable(b *strings.Builder, sc scenario) {
	tool := fmt.Sprintf("wrk -c%d", r.opts.load.conns)
	if sc.tool == "h2load" {
		tool = fmt.Sprintf("h2load -c%d -m%d", r.opts.load.h2Conns(), r.opts.load.h2Streams)
	}
	for _, h := range sc.headers {
		tool += fmt.Sprintf(" -H %q", h)
	}
	fmt.Fprintf(b, "### %s (`%s` GET %s)\n\n", sc.title, tool, sc.path)
	hdr := []string{"proxy", "req/s", "req/s vs direct", "spread", "p50", "p99", "CPU-s / 100k req", "CPU vs webtier", "RSS MiB", "PSS MiB", "backend conns", "errors"}
	if sc.backendCPU != "" {
		hdr = []string{"proxy", "req/s", "req/s vs direct", "spread", "p50", "p99", "proxy CPU-s / 100k req", sc.backendCPU + " CPU-s / 100k req",
			"proxy CPU vs webtier", "RSS MiB", "PSS MiB", sc.backendCPU + " conns", "errors"}
	}
	b.WriteString("| " + strings.Join(hdr, " | ") + " |\n|")
	for i := range hdr {
		if i == 0 || i == len(hdr)-1 {
			b.WriteString(" --- |")
		} else {
			b.WriteString(" ---: |")
		}
	}
	b.WriteString("\n")
	rows := map[string]row{}
	var wt, direct *row
	for _, in := range r.insts {
		if in.t.suite != sc.suite {
			continue
		}
		rw := summarize(r.results[sc.key][in.t.name])
		rows[in.t.name] = rw
		if in.t.isWebtier() && rw.ok && rw.cpu100k > 0 {
			wt = &rw
		}
		if in.t.direct && rw.ok && rw.rps > 0 {
			direct = &rw // the ceiling: the backend without a proxy
		}
	}
	for _, in := range r.insts {
		if in.t.suite != sc.suite {
			continue
		}
		name := in.t.rowLabel()
		na := in.na
		if na == "" && sc.tls {
			na = in.naTLS
		}
		rw := rows[in.t.name]
		if na == "" && !rw.ok {
			na = "n/a: every run failed: " + rw.failed
		}
		if na != "" {
			b.WriteString("| " + name + " | " + na + strings.Repeat(" |", len(hdr)-2) + " |\n")
			continue
		}
		ratio := "—"
		if !in.t.direct && wt != nil {
			short := in.t.name
			if in.t.proxy != "" {
				short = in.t.proxy
			}
			ratio = fmt.Sprintf("%s/webtier %.1fx", short, rw.cpu100k/wt.cpu100k)
		}
		errs := "0"
		if rw.errors > 0 {
			errs = fmt.Sprintf("%d (%s)", rw.errors, rw.errText)
		}
		if rw.failed != "" {
			errs += fmt.Sprintf("; %d run(s) failed", r.opts.rounds-rw.runs)
		}
		ceiling := "—"
		if !in.t.direct && direct != nil {
			ceiling = fmt.Sprintf("%.2fx", rw.rps/direct.rps)
		}
		cells := []string{name, fmt.Sprintf("%.0f", rw.rps), ceiling, fmt.Sprintf("%.0f%%", rw.spread), fmtDur(rw.p50), fmtDur(rw.p99)}
		if sc.backendCPU != "" {
			proxyCPU := fmt.Sprintf("%.2f", rw.cpu100k)
			if in.t.direct {
				proxyCPU = "—" // no proxy: its CPU is the backend's, next column
			}
			cells = append(cells, proxyCPU, fmt.Sprintf("%.2f", rw.backendCPU100k))
		} else {
			cells = append(cells, fmt.Sprintf("%.2f", rw.cpu100k))
		}
		conns := fmt.Sprintf("%.0f", rw.newConns)
		if rw.newConns < 0 {
			conns = "—"
		}
		cells = append(cells, ratio, fmt.Sprintf("%.1f", rw.rss), fmt.Sprintf("%.1f", rw.pss), conns, errs)
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	b.WriteString("\n")
	if sc.goal != nil {
		r.goalTable(b, sc)
	}
}

// goalTable writes webtier ÷ peer for req/s, proxy CPU and backend CPU:
// the ratio of the medians, and each round's ratio (runs of one round are
// back to back, so a round's ratio is less exposed to the machine's drift).
func (r *report) goalTable(b *strings.Builder, sc scenario) {
	g := sc.goal
	wRecs, pRecs := r.results[sc.key][g.webtier], r.results[sc.key][g.peer]
	w, p := summarize(wRecs), summarize(pRecs)
	wName, pName := g.webtier, g.peer
	for _, in := range r.insts {
		if in.t.name == g.webtier && in.t.proxy != "" {
			wName = in.t.proxy
		}
		if in.t.name == g.peer && in.t.proxy != "" {
			pName = in.t.proxy
		}
	}
	if !w.ok || !p.ok {
		fmt.Fprintf(b, "%s vs %s: not computed (a column has no successful run).\n\n", wName, pName)
		return
	}
	type metric struct {
		name   string
		target string
		met    func(float64) bool
		get    func(row) float64
		rec    func(runRec) float64
	}
	ms := []metric{
		{"req/s", fmt.Sprintf("≥ %.1fx", g.minRPS), func(v float64) bool { return v >= g.minRPS },
			func(x row) float64 { return x.rps }, func(x runRec) float64 { return x.res.rps }},
		{"proxy CPU-s / 100k req", fmt.Sprintf("≤ %.1fx", g.maxCPU), func(v float64) bool { return v <= g.maxCPU },
			func(x row) float64 { return x.cpu100k }, func(x runRec) float64 { return x.cpuPer100k }},
	}
	if sc.backendCPU != "" {
		ms = append(ms, metric{sc.backendCPU + " CPU-s / 100k req", "—", nil,
			func(x row) float64 { return x.backendCPU100k }, func(x runRec) float64 { return x.backendCPUPer100k }})
	}
	fmt.Fprintf(b, "| %s ÷ %s | ratio of medians | per round | target | met |\n| --- | ---: | --- | --- | --- |\n", wName, pName)
	for _, m := range ms {
		ratio := "—"
		if d := m.get(p); d > 0 {
			ratio = fmt.Sprintf("%.2fx", m.get(w)/d)
		}
		var per []string
		for i := 0; i < len(wRecs) && i < len(pRecs); i++ {
			if wRecs[i].failed != "" || pRecs[i].failed != "" || m.rec(pRecs[i]) <= 0 {
				per = append(per, "—")
				continue
			}
			per = append(per, fmt.Sprintf("%.2fx", m.rec(wRecs[i])/m.rec(pRecs[i])))
		}
		met := ""
		if m.met != nil && m.get(p) > 0 {
			met = "no"
			if m.met(m.get(w) / m.get(p)) {
				met = "yes"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s |\n", m.name, ratio, strings.Join(per, ", "), m.target, met)
	}
	b.WriteString("\n")
}
