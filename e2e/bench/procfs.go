package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime/stime in /proc/PID/stat. It is
// 100 on every Linux architecture Go supports (getconf CLK_TCK); reading it
// via sysconf would need cgo.
const clockTicks = 100

// procStat is the part of /proc/PID/stat the benchmark uses.
type procStat struct {
	pid       int
	ppid      int
	utime     uint64 // field 14, in clock ticks
	stime     uint64 // field 15
	cutime    uint64 // field 16: reaped children (e.g. an httpd child that exited)
	cstime    uint64 // field 17
	startTime uint64 // field 22: tells a reused PID apart
}

// cpuTicks is the CPU time the process and its reaped children used.
func (s procStat) cpuTicks() uint64 { return s.utime + s.stime + s.cutime + s.cstime }

// parseStat parses the contents of /proc/PID/stat. The command name (field 2)
// is in parentheses and may itself contain spaces and parentheses, so the
// remaining fields are taken after the last ')'.
func parseStat(data string) (procStat, error) {
	var s procStat
	open := strings.IndexByte(data, '(')
	closing := strings.LastIndexByte(data, ')')
	if open < 1 || closing < open {
		return s, fmt.Errorf("stat: no (comm) in %q", data)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(data[:open]))
	if err != nil {
		return s, fmt.Errorf("stat: pid: %w", err)
	}
	s.pid = pid
	// rest[0] is field 3 (state), so field N is rest[N-3].
	rest := strings.Fields(data[closing+1:])
	if len(rest) < 22-2 {
		return s, fmt.Errorf("stat: only %d fields after comm", len(rest))
	}
	field := func(n int) (uint64, error) {
		v, err := strconv.ParseUint(rest[n-3], 10, 64)
		if err != nil {
			// cutime/cstime are signed in the kernel (long) but never
			// negative in practice; ppid of 0 parses fine.
			return 0, fmt.Errorf("stat field %d: %w", n, err)
		}
		return v, nil
	}
	var ppid uint64
	for _, f := range []struct {
		n   int
		dst *uint64
	}{{4, &ppid}, {14, &s.utime}, {15, &s.stime}, {16, &s.cutime}, {17, &s.cstime}, {22, &s.startTime}} {
		v, err := field(f.n)
		if err != nil {
			return s, err
		}
		*f.dst = v
	}
	s.ppid = int(ppid)
	return s, nil
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(string(b))
}

// allStats reads /proc/*/stat of every process (thread-group leaders; threads
// are not listed in /proc and their time is in the leader's stat).
func allStats() (map[int]procStat, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		s, err := readStat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		out[pid] = s
	}
	return out, nil
}

// tree returns root and all its descendants (nginx/haproxy/httpd workers).
func tree(root int) ([]procStat, error) {
	all, err := allStats()
	if err != nil {
		return nil, err
	}
	rs, ok := all[root]
	if !ok {
		return nil, fmt.Errorf("process %d is gone", root)
	}
	children := map[int][]int{}
	for pid, s := range all {
		children[s.ppid] = append(children[s.ppid], pid)
	}
	out := []procStat{rs}
	for i := 0; i < len(out); i++ {
		for _, c := range children[out[i].pid] {
			out = append(out, all[c])
		}
	}
	return out, nil
}

// parseStatusKiB returns the value in kB of a "Key:   123 kB" line of
// /proc/PID/status or /proc/PID/smaps_rollup.
func parseStatusKiB(data, key string) (uint64, error) {
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		name, val, ok := strings.Cut(line, ":")
		if !ok || name != key {
			continue
		}
		f := strings.Fields(val)
		if len(f) < 1 {
			return 0, fmt.Errorf("%s: empty value", key)
		}
		return strconv.ParseUint(f[0], 10, 64)
	}
	return 0, fmt.Errorf("%s: not found", key)
}

func readKiB(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	v, _ := parseStatusKiB(string(b), key)
	return v
}

// treeSample is one reading of a process tree.
type treeSample struct {
	cpuTicks uint64 // utime+stime(+reaped children) summed over the tree
	rssKiB   uint64 // sum of VmRSS; counts pages shared between workers once per process
	pssKiB   uint64 // sum of Pss (smaps_rollup): shared pages split between sharers
	procs    int
}

func sampleTree(root int) (treeSample, error) {
	ps, err := tree(root)
	if err != nil {
		return treeSample{}, err
	}
	var t treeSample
	for _, p := range ps {
		t.cpuTicks += p.cpuTicks()
		t.rssKiB += readKiB(fmt.Sprintf("/proc/%d/status", p.pid), "VmRSS")
		t.pssKiB += readKiB(fmt.Sprintf("/proc/%d/smaps_rollup", p.pid), "Pss")
		t.procs++
	}
	if t.procs == 0 {
		return t, errors.New("empty process tree")
	}
	return t, nil
}

// treeNofile returns the lowest soft RLIMIT_NOFILE ("Max open files" in
// /proc/PID/limits) over the process tree: the workers' limit is what caps
// the connections a proxy can hold.
func treeNofile(root int) string {
	ps, err := tree(root)
	if err != nil {
		return "?"
	}
	low := ""
	var lowN uint64
	for _, p := range ps {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.pid))
		if err != nil {
			continue
		}
		v := parseLimitsNofile(string(b))
		n, err := strconv.ParseUint(v, 10, 64)
		if v == "unlimited" || err != nil {
			if low == "" {
				low = v
			}
			continue
		}
		if low == "" || low == "unlimited" || n < lowN {
			low, lowN = v, n
		}
	}
	if low == "" {
		return "?"
	}
	return low
}

// parseLimitsNofile returns the soft limit of "Max open files" from the
// contents of /proc/PID/limits.
func parseLimitsNofile(data string) string {
	for _, line := range strings.Split(data, "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				return f[0]
			}
		}
	}
	return "?"
}
