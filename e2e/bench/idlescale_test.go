package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestParseScale(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", nil, false},
		{"0", nil, false},
		{"10000,19000", []int{10000, 19000}, false},
		{" 19000 , 10000,10000", []int{10000, 19000}, false},
		{"10k", nil, true},
		{"10000,-1", nil, true},
		{"10000,,19000", nil, true},
	} {
		got, err := parseScale(c.in)
		if (err != nil) != c.wantErr || len(got) != len(c.want) {
			t.Errorf("parseScale(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.wantErr)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("parseScale(%q) = %v, want %v", c.in, got, c.want)
			}
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	for _, c := range []struct {
		in      string
		want    uint64
		wantErr bool
	}{
		{"123456789 2000 17\n", 123456789, false},
		{"0 0 0", 0, false},
		{"123 456", 0, true},
		{"x 1 2", 0, true},
	} {
		got, err := parseSchedstat(c.in)
		if (err != nil) != c.wantErr || got != c.want {
			t.Errorf("parseSchedstat(%q) = %d, %v; want %d, error %v", c.in, got, err, c.want, c.wantErr)
		}
	}
	// Our own tree parses.
	if _, err := treeCPUNanos(os.Getpid()); err != nil {
		t.Error(err)
	}
}

func TestScaleSource(t *testing.T) {
	for _, c := range []struct {
		i    int
		want string
	}{{0, "127.0.1.1"}, {scalePerSource - 1, "127.0.1.1"}, {scalePerSource, "127.0.1.2"}, {18999, "127.0.1.5"}} {
		if got := scaleSource(c.i); got.IP.String() != c.want || got.Port != 0 {
			t.Errorf("scaleSource(%d) = %v, want %s:0", c.i, got, c.want)
		}
	}
}

func TestScaleFdLimit(t *testing.T) {
	for _, c := range []struct {
		n    int
		lim  uint64
		skip bool
	}{{19000, 20000, false}, {19000, 19511, true}, {19000, 19512, false}, {10000, 1024, true}} {
		why := scaleFdLimit(c.n, c.lim)
		if (why != "") != c.skip {
			t.Errorf("scaleFdLimit(%d, %d) = %q, want skip %v", c.n, c.lim, why, c.skip)
		}
		if why != "" && !strings.Contains(why, "RLIMIT_NOFILE") {
			t.Errorf("scaleFdLimit(%d, %d) = %q: does not say which limit", c.n, c.lim, why)
		}
	}
}

func TestScaleTable(t *testing.T) {
	got := table(testReport().scaleTable)
	wantRows(t, got,
		"| webtier | 19.5 | 4.50 ms/s | 10000 | 10000 | 43.9 | 2.50 | 0.00 | 6.50 ms/s | — |",
		"| | | | 19000 | 19000 | 69.6 | 2.70 | 0.00 | 6.60 ms/s | — |",
		"| haproxy | 19.5 | 0.30 ms/s | 10000 | 9990 (10 closed) | 31.2 | 1.20 | 0.00 | 0.30 ms/s | 0.5x |",
		"| | | | 19000 | skipped: needs 19512 open files | | | | | |",
		"| nginx | n/a: nginx not installed | | | | | | | | |",
	)
}

// TestPeerFdLimits: with the idle-at-scale step's connections above half
// the file limit, HAProxy gets "no strict-limits" (it would refuse to
// start) and nginx workers do not ask for more than the limit.
func TestPeerFdLimits(t *testing.T) {
	for _, c := range []struct {
		connCap      int
		nofile       uint64
		strict       bool
		nginxRlimits int
	}{
		{4096, 20000, true, 8256},
		{20024, 20000, false, 20000},
		{20024, 0, true, 40112}, // limit unknown
		{20024, 1 << 20, true, 40112},
	} {
		e := &env{connCap: c.connCap, nofile: c.nofile}
		hl := haproxyLimits(e)
		if !strings.HasPrefix(hl, fmt.Sprintf("maxconn %d ", c.connCap)) || strings.Contains(hl, "no strict-limits") == c.strict {
			t.Errorf("haproxyLimits(connCap %d, nofile %d) = %q, want strict limits %v", c.connCap, c.nofile, hl, c.strict)
		}
		if got := nginxRlimit(e); got != c.nginxRlimits {
			t.Errorf("nginxRlimit(connCap %d, nofile %d) = %d, want %d", c.connCap, c.nofile, got, c.nginxRlimits)
		}
	}
}
