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
	elapsed    time.Duration
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
	fmt.Fprintf(&b, "- load: wrk -t%d -c%d -d%ds --latency; h2load -t%d -c%d -m%d -D%d; %d interleaved round(s); medians over rounds\n",
		o.load.threads, o.load.conns, int(o.load.duration.Seconds()), o.load.threads, o.load.h2Conns(), o.load.h2Streams,
		int(o.load.duration.Seconds()), o.rounds)
	fmt.Fprintf(&b, "- everything on one machine over loopback: load generator, proxy and backend share its %d cores\n\n", runtime.NumCPU())
	b.WriteString("| peer | version | max open files |\n| --- | --- | ---: |\n")
	for _, in := range r.insts {
		name := in.t.name
		if name == "direct" {
			name = "backend (direct)"
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
	errors            int64
	newConns          float64
	errText, failed   string
	runs              int
}

func summarize(recs []runRec) row {
	var rw row
	var rps, p50, p99, cpu, rss, pss, nc []float64
	for _, rc := range recs {
		if rc.failed != "" {
			rw.failed = rc.failed
			continue
		}
		rps = append(rps, rc.res.rps)
		p50 = append(p50, float64(rc.res.p50))
		p99 = append(p99, float64(rc.res.p99))
		cpu = append(cpu, rc.cpuPer100k)
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
	return rw
}

func (r *report) markdown() string {
	var b strings.Builder
	for _, sc := range r.scs {
		tool := fmt.Sprintf("wrk -c%d", r.opts.load.conns)
		if sc.tool == "h2load" {
			tool = fmt.Sprintf("h2load -c%d -m%d", r.opts.load.h2Conns(), r.opts.load.h2Streams)
		}
		for _, h := range sc.headers {
			tool += fmt.Sprintf(" -H %q", h)
		}
		fmt.Fprintf(&b, "### %s (`%s` GET %s)\n\n", sc.title, tool, sc.path)
		b.WriteString("| proxy | req/s | spread | p50 | p99 | CPU-s / 100k req | CPU vs webtier | RSS MiB | PSS MiB | backend conns | errors |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
		rows := map[string]row{}
		for _, in := range r.insts {
			rows[in.t.name] = summarize(r.results[sc.key][in.t.name])
		}
		wt, haveWT := rows["webtier"]
		for _, in := range r.insts {
			name := in.t.name
			if name == "direct" {
				name = "direct (backend, no proxy)"
			}
			na := in.na
			if na == "" && sc.tls {
				na = in.naTLS
			}
			rw := rows[in.t.name]
			if na == "" && !rw.ok {
				na = "n/a: every run failed: " + rw.failed
			}
			if na != "" {
				fmt.Fprintf(&b, "| %s | %s | | | | | | | | | |\n", name, na)
				continue
			}
			ratio := "—"
			if in.t.name != "direct" && haveWT && wt.ok && wt.cpu100k > 0 {
				ratio = fmt.Sprintf("%s/webtier %.1fx", in.t.name, rw.cpu100k/wt.cpu100k)
			}
			errs := "0"
			if rw.errors > 0 {
				errs = fmt.Sprintf("%d (%s)", rw.errors, rw.errText)
			}
			if rw.failed != "" {
				errs += fmt.Sprintf("; %d run(s) failed", r.opts.rounds-rw.runs)
			}
			fmt.Fprintf(&b, "| %s | %.0f | %.0f%% | %s | %s | %.2f | %s | %.1f | %.1f | %.0f | %s |\n",
				name, rw.rps, rw.spread, fmtDur(rw.p50), fmtDur(rw.p99), rw.cpu100k, ratio, rw.rss, rw.pss, rw.newConns, errs)
		}
		b.WriteString("\n")
	}
	if r.idle != nil {
		fmt.Fprintf(&b, "### Memory per idle keep-alive client connection (%d connections, each after one GET /100)\n\n", r.opts.idle)
		b.WriteString("| proxy | held | RSS before MiB | RSS after MiB | KiB/conn (RSS) | KiB/conn (PSS) | RSS/conn vs webtier |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		wt, haveWT := r.idle["webtier"]
		for _, in := range r.insts {
			name := in.t.name
			if name == "direct" {
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
			if in.t.name != "direct" && haveWT && wt.err == nil && wt.rssPerConnKiB() > 0 {
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
	fmt.Fprintf(&b, "Total runtime %s.\n", r.elapsed.Round(time.Second))
	return b.String()
}
