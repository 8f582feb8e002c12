package main

// The idle-at-scale step: each proxy of the HTTP suite is restarted (a
// fresh process, as after a deploy), then holds 1 and then -idle-scale
// (default 10,000 and 19,000) idle keep-alive client connections. For each
// count the report gives the growth of the process tree's RSS and PSS per
// connection over the fresh process, and the CPU the tree burns per second
// while every connection is idle: a proxy should cost nothing while
// nothing happens, however many connections it holds.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// scalePerSource is how many connections share one source address.
	// Each connection's socket is bound to its source address before the
	// connect, which takes a port of that address from the kernel's
	// ephemeral range (net.ipv4.ip_local_port_range, 28,232 ports by
	// default); the load rounds leave tens of thousands of TIME_WAIT
	// sockets on 127.0.0.1, so the step uses addresses of 127.0.1.0/24
	// that nothing else on the host uses.
	scalePerSource = 4000
	// scaleFdMargin is the descriptors the benchmark needs besides the
	// held connections (its own files, /proc reads, load tools' pipes).
	scaleFdMargin = 512
	// scaleSetupBound bounds opening one level's connections.
	scaleSetupBound = 3 * time.Minute
	// scaleSettle is the pause after opening connections, before RSS and
	// CPU are read: lazily freed buffers and parked connections settle.
	scaleSettle = 2 * time.Second
)

// parseScale parses -idle-scale: connection counts separated by commas,
// returned ascending without duplicates; "" or "0" means skip (nil).
func parseScale(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-idle-scale: %q is not a positive connection count (want e.g. 10000,19000, or 0 to skip)", strings.TrimSpace(f))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// scaleSource is the source address of the i-th held connection.
func scaleSource(i int) *net.TCPAddr {
	k := i / scalePerSource
	return &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+k%250))}
}

// scaleLevel is one connection count of one proxy.
type scaleLevel struct {
	want, held, closedByServer int
	rssKiB, pssKiB             uint64 // the tree's, with the connections held
	rssPerConnKiB              float64
	pssPerConnKiB              float64
	cpuMsPerSec                float64 // the tree's CPU while they were idle
	skipped                    string  // non-empty: not measured, and why
	err                        error
}

// scaleResult is the step's measurement of one proxy.
type scaleResult struct {
	freshRSS, freshPSS uint64 // KiB, the fresh process before any connection
	oneCPU             float64
	oneOK              bool
	levels             []scaleLevel
	err                error // the step failed before its levels
}

// level returns the i-th level when it was measured.
func (s scaleResult) level(i int) (scaleLevel, bool) {
	if s.err != nil || i >= len(s.levels) {
		return scaleLevel{}, false
	}
	lv := s.levels[i]
	return lv, lv.err == nil && lv.skipped == "" && lv.held > 0
}

// scaleLevels are the connection counts of the step (from any proxy).
func (r *report) scaleLevels() []int { return r.opts.scale }

// scaleFdLimit returns why n held connections do not fit in the
// benchmark's RLIMIT_NOFILE soft limit lim ("" when they fit).
func scaleFdLimit(n int, lim uint64) string {
	if need := uint64(n + scaleFdMargin); lim < need {
		return fmt.Sprintf("skipped: needs %d open files in the benchmark and in each proxy, RLIMIT_NOFILE is %d (raise the hard limit, e.g. `ulimit -Hn %d` as root, or LimitNOFILE= in a systemd unit)", need, lim, need+1024)
	}
	return ""
}

// measureScale runs the step against one freshly started proxy (restart
// has just started it): fresh RSS, idle CPU with one connection, then for
// each level the connections up to that count, RSS and idle CPU. Every
// connection is closed before it returns.
func measureScale(ctx context.Context, pid int, addr string, levels []int, window time.Duration, lim uint64) scaleResult {
	var res scaleResult
	if !sleepCtx(ctx, scaleSettle) {
		res.err = errInterrupted
		return res
	}
	fresh, err := sampleTree(pid)
	if err != nil {
		res.err = err
		return res
	}
	res.freshRSS, res.freshPSS = fresh.rssKiB, fresh.pssKiB

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
		sleepCtx(context.Background(), 300*time.Millisecond) // let the server notice
	}()
	one, err := openIdleFrom(scaleSource(0), addr, "/100")
	if err != nil {
		res.err = fmt.Errorf("one idle connection: %w", err)
		return res
	}
	conns = append(conns, one)
	if !sleepCtx(ctx, scaleSettle) {
		res.err = errInterrupted
		return res
	}
	if res.oneCPU, err = idleCPU(ctx, pid, window); err != nil {
		res.err = err
		return res
	}
	res.oneOK = true

	failed := false
	for _, n := range levels {
		lv := scaleLevel{want: n}
		if lv.skipped = scaleFdLimit(n, lim); lv.skipped != "" || failed {
			if failed {
				lv.skipped = "skipped: the level before failed"
			}
			res.levels = append(res.levels, lv)
			continue
		}
		more, err := openMany(ctx, addr, len(conns), n-len(conns))
		conns = append(conns, more...)
		if err != nil {
			lv.err, failed = err, true
			res.levels = append(res.levels, lv)
			continue
		}
		if !sleepCtx(ctx, scaleSettle) {
			res.err = errInterrupted
			return res
		}
		s, err := sampleTree(pid)
		if err == nil {
			lv.cpuMsPerSec, err = idleCPU(ctx, pid, window)
		}
		if err != nil {
			lv.err, failed = err, true
			res.levels = append(res.levels, lv)
			continue
		}
		for _, c := range conns {
			if alive(c) {
				lv.held++
			} else {
				lv.closedByServer++
			}
		}
		lv.rssKiB, lv.pssKiB = s.rssKiB, s.pssKiB
		if lv.held > 0 {
			lv.rssPerConnKiB = (float64(s.rssKiB) - float64(res.freshRSS)) / float64(lv.held)
			lv.pssPerConnKiB = (float64(s.pssKiB) - float64(res.freshPSS)) / float64(lv.held)
		}
		res.levels = append(res.levels, lv)
	}
	return res
}

// openMany opens n idle keep-alive connections to addr, numbered from
// first (which picks their source addresses), with idleDialers at a time,
// within scaleSetupBound. On error it returns the connections it opened.
func openMany(ctx context.Context, addr string, first, n int) ([]net.Conn, error) {
	conns := make([]net.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	next := make(chan int)
	for range idleDialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				conns[i], errs[i] = openIdleFrom(scaleSource(first+i), addr, "/100")
			}
		}()
	}
	deadline := time.Now().Add(scaleSetupBound)
	for i := 0; i < n; i++ {
		if ctx.Err() != nil || time.Now().After(deadline) {
			for j := i; j < n; j++ {
				errs[j] = errors.New("not attempted (time bound or interrupted)")
			}
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	var open []net.Conn
	var firstErr error
	failed := 0
	for i, c := range conns {
		if c != nil {
			open = append(open, c)
		}
		if errs[i] != nil {
			failed++
			if firstErr == nil {
				firstErr = errs[i]
			}
		}
	}
	if failed > 0 {
		return open, fmt.Errorf("%d of %d connections failed, first: %w", failed, n, firstErr)
	}
	return open, nil
}

// idleCPU is the CPU the process tree of pid used during window, in
// milliseconds per second, from the scheduler's per-thread nanosecond
// counters (/proc/PID/task/TID/schedstat): stat's 10 ms ticks are too
// coarse for a process that should use well under 1 ms per second.
func idleCPU(ctx context.Context, pid int, window time.Duration) (float64, error) {
	t0, err := treeCPUNanos(pid)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if !sleepCtx(ctx, window) {
		return 0, errInterrupted
	}
	t1, err := treeCPUNanos(pid)
	if err != nil {
		return 0, err
	}
	return float64(t1-min(t0, t1)) / 1e6 / time.Since(start).Seconds(), nil
}

// treeCPUNanos sums the time on CPU of every thread of every process in
// the tree of root. Threads that exit between two readings take their time
// with them; an idle proxy starts none.
func treeCPUNanos(root int) (uint64, error) {
	ps, err := tree(root)
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, p := range ps {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.pid))
		if err != nil {
			continue // exited
		}
		for _, t := range tasks {
			b, err := os.ReadFile(filepath.Join(fmt.Sprintf("/proc/%d/task", p.pid), t.Name(), "schedstat"))
			if err != nil {
				continue
			}
			ns, err := parseSchedstat(string(b))
			if err != nil {
				return 0, err
			}
			sum += ns
		}
	}
	return sum, nil
}

// parseSchedstat returns the first field of /proc/.../schedstat: time
// spent on the CPU, in nanoseconds.
func parseSchedstat(data string) (uint64, error) {
	f := strings.Fields(data)
	if len(f) != 3 {
		return 0, fmt.Errorf("schedstat: want 3 fields, got %q", data)
	}
	return strconv.ParseUint(f[0], 10, 64)
}

// scaleTable writes the step's table.
func (r *report) scaleTable(b *strings.Builder) {
	if r.scale == nil {
		return
	}
	fmt.Fprintf(b, "### Idle keep-alive connections at scale (fresh start; idle CPU over %s)\n\n", r.opts.scaleWindow)
	b.WriteString("Each proxy restarted, then 1 and then N idle keep-alive connections, each after one GET /100, from source addresses in 127.0.1.0/24. KiB/conn = (RSS with N − RSS of the fresh process) / held.\n\n")
	b.WriteString("| proxy | RSS fresh MiB | idle CPU, 1 conn | conns | held | RSS MiB | KiB/conn (RSS) | KiB/conn (PSS) | idle CPU | RSS/conn vs webtier |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	wt := r.scale["webtier"]
	for _, in := range r.insts {
		if in.t.suite != "" || in.t.direct {
			continue
		}
		sr, ok := r.scale[in.t.name]
		switch {
		case !ok && in.na != "":
			fmt.Fprintf(b, "| %s | %s | | | | | | | | |\n", in.t.name, in.na)
			continue
		case !ok:
			continue
		case sr.err != nil:
			fmt.Fprintf(b, "| %s | failed: %v | | | | | | | | |\n", in.t.name, sr.err)
			continue
		}
		one := "—"
		if sr.oneOK {
			one = fmt.Sprintf("%.2f ms/s", sr.oneCPU)
		}
		for i, lv := range sr.levels {
			lead := fmt.Sprintf("| %s | %.1f | %s", in.t.name, float64(sr.freshRSS)/1024, one)
			if i > 0 {
				lead = "| | |"
			}
			switch {
			case lv.skipped != "":
				fmt.Fprintf(b, "%s | %d | %s | | | | | |\n", lead, lv.want, lv.skipped)
				continue
			case lv.err != nil:
				fmt.Fprintf(b, "%s | %d | failed: %v | | | | | |\n", lead, lv.want, lv.err)
				continue
			}
			held := strconv.Itoa(lv.held)
			if lv.closedByServer > 0 {
				held += fmt.Sprintf(" (%d closed)", lv.closedByServer)
			}
			ratio := "—"
			if w, ok := wt.level(i); ok && w.rssPerConnKiB > 0 && in.t.name != "webtier" {
				ratio = fmt.Sprintf("%.1fx", lv.rssPerConnKiB/w.rssPerConnKiB)
			}
			fmt.Fprintf(b, "%s | %d | %s | %.1f | %.2f | %.2f | %.2f ms/s | %s |\n", lead, lv.want, held,
				float64(lv.rssKiB)/1024, lv.rssPerConnKiB, lv.pssPerConnKiB, lv.cpuMsPerSec, ratio)
		}
	}
	b.WriteString("\n")
}
