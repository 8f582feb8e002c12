package main

// Unit tests of the pure parsing code only: nothing here starts a peer or
// sends load (the benchmark itself runs only as `go run ./e2e/bench`).

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

const wrkOK = `Running 1s test @ http://127.0.0.1:18777/x
  1 threads and 2 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.13ms  778.06us  12.78ms   97.41%
    Req/Sec     1.74k    78.71     1.80k    90.91%
  Latency Distribution
     50%    1.05ms
     75%    1.27ms
     90%    1.52ms
     99%    3.34ms
  1904 requests in 1.10s, 375.79KB read
Requests/sec:   1728.74
Transfer/sec:    341.20KB
`

const wrkErrors = `Running 10s test @ http://127.0.0.1:8080/100
  2 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   386.95us  291.49us  11.53ms   92.13%
    Req/Sec    65.49k     5.13k   74.61k    72.50%
  Latency Distribution
     50%  320.00us
     75%  426.00us
     90%  573.00us
     99%    1.02s
  1302948 requests in 10.01s, 186.39MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 5
Requests/sec: 130157.07
Transfer/sec:     18.62MB
`

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(wrkOK)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 1904 || r.rps != 1728.74 || r.p50 != 1050*time.Microsecond || r.p99 != 3340*time.Microsecond ||
		r.errors != 0 || r.errText != "" {
		t.Errorf("parseWrk = %+v", r)
	}
	if r.seconds < 1.0999 || r.seconds > 1.1001 {
		t.Errorf("seconds = %v, want 1.10", r.seconds)
	}

	r, err = parseWrk(wrkErrors)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 1302948 || r.p50 != 320*time.Microsecond || r.p99 != 1020*time.Millisecond ||
		r.errors != 10 || r.errText != "3 read, 2 timeout, 5 non-2xx/3xx" {
		t.Errorf("parseWrk = %+v", r)
	}

	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("no error for output without results")
	}
	noLatency := "  10 requests in 1.00s, 1KB read\nRequests/sec: 10.00\n"
	if _, err := parseWrk(noLatency); err == nil {
		t.Error("no error for output without --latency distribution")
	}
}

const h2loadOut = `starting benchmark...
Application protocol: h2
finished in 1.00s, 41444.00 req/s, 8.62MB/s
requests: 41444 total, 41448 started, 41444 done, 41440 succeeded, 4 failed, 0 errored, 1 timeout
status codes: 41440 2xx, 0 3xx, 0 4xx, 2 5xx
traffic: 8.62MB (9034890) total, 3.95MB (4144400) headers (space savings 42.53%), 3.95MB (4144400) data
                     min         max         mean         sd        +/- sd
time for request:       31us      2.65ms        63us        39us    94.39%
`

func TestParseH2load(t *testing.T) {
	r, err := parseH2load(h2loadOut)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 41440 || r.rps != 41444 || r.seconds != 1 || r.errors != 7 ||
		r.errText != "4 failed, 1 timeout, 2 4xx/5xx" {
		t.Errorf("parseH2load = %+v", r)
	}
	if _, err := parseH2load("starting benchmark...\nNo protocol negotiated. Aborted\n"); err == nil {
		t.Error("no error for an aborted run")
	}
}

func TestParseH2loadLogAndPercentile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h2.log")
	content := ""
	for i := 1; i <= 100; i++ {
		status := "200"
		if i == 7 {
			status = "502"
		}
		content += "1795441560540380\t" + status + "\t" + strconv.Itoa(i*10) + "\n"
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lat, bad, err := parseH2loadLog(f)
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 100 || bad != 1 {
		t.Fatalf("got %d latencies, %d bad", len(lat), bad)
	}
	if p := percentile(lat, 50); p != 500*time.Microsecond {
		t.Errorf("p50 = %v", p)
	}
	if p := percentile(lat, 99); p != 990*time.Microsecond {
		t.Errorf("p99 = %v", p)
	}
	if p := percentile([]time.Duration{3}, 99); p != 3 {
		t.Errorf("p99 of one = %v", p)
	}
}

func TestParseStat(t *testing.T) {
	// comm with spaces and parentheses, as the kernel prints it.
	line := "4242 (nginx: wo)rker (x)) S 4200 4200 4200 0 -1 4194624 1000 0 0 0 " +
		"1234 567 89 10 20 0 1 0 98765 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	s, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	want := procStat{pid: 4242, ppid: 4200, utime: 1234, stime: 567, cutime: 89, cstime: 10, startTime: 98765}
	if s != want {
		t.Errorf("parseStat = %+v, want %+v", s, want)
	}
	if s.cpuTicks() != 1234+567+89+10 {
		t.Errorf("cpuTicks = %d", s.cpuTicks())
	}
	if _, err := parseStat("12 (short) S 1 2"); err == nil {
		t.Error("no error for a truncated line")
	}
	// Our own /proc entry parses.
	self, err := readStat(os.Getpid())
	if err != nil || self.pid != os.Getpid() || self.ppid != os.Getppid() {
		t.Errorf("readStat(self) = %+v, %v", self, err)
	}
}

func TestParseStatusKiB(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t   20000 kB\nVmRSS:\t   17408 kB\nRssAnon:\t 1000 kB\n"
	if v, err := parseStatusKiB(status, "VmRSS"); err != nil || v != 17408 {
		t.Errorf("VmRSS = %d, %v", v, err)
	}
	if _, err := parseStatusKiB(status, "Pss"); err == nil {
		t.Error("no error for a missing key")
	}
}

func TestParseStubStatus(t *testing.T) {
	body := "Active connections: 1 \nserver accepts handled requests\n 3 3 41449 \nReading: 0 Writing: 1 Waiting: 0 \n"
	if v, err := parseStubStatus(body); err != nil || v != 3 {
		t.Errorf("accepts = %d, %v", v, err)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

func TestParseLimitsNofile(t *testing.T) {
	limits := "Limit                     Soft Limit           Hard Limit           Units     \n" +
		"Max processes             94212                94212                processes \n" +
		"Max open files            20000                20000                files     \n"
	if v := parseLimitsNofile(limits); v != "20000" {
		t.Errorf("nofile = %q", v)
	}
	if v := parseLimitsNofile("Max open files            unlimited            unlimited            files\n"); v != "unlimited" {
		t.Errorf("nofile = %q", v)
	}
}

func TestNewConns(t *testing.T) {
	// Port 8009 = 0x1F49: a listener, both sides of a pooled connection
	// (the client's in tcp, the JVM's IPv4-mapped socket in tcp6, inode
	// 200), a connection in TIME_WAIT with 55 s left, and an unrelated one.
	tcp := "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0100007F:1F49 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1\n" +
		"   1: 0100007F:9C40 0100007F:1F49 01 00000000:00000000 00:00000000 00000000     0        0 101 1\n" +
		"   2: 0100007F:9C41 0100007F:1F49 06 00000000:00000000 03:0000157C 00000000     0        0 0 3\n" +
		"   3: 0100007F:9C42 0100007F:0050 01 00000000:00000000 00:00000000 00000000     0        0 102 1\n"
	tcp6 := "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n" +
		"   0: 0000000000000000FFFF00000100007F:1F49 0000000000000000FFFF00000100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 200 1\n"
	after := connSample{open: map[string]bool{}}
	after.add(tcp, 8009)
	after.add(tcp6, 8009)
	if len(after.open) != 1 || !after.open["200"] || len(after.tw) != 1 || after.tw[0] != 0x157C {
		t.Fatalf("sample = %+v", after)
	}
	now := time.Now()
	after.at = now
	// 10 s earlier: inode 200 is new, and the TIME_WAIT (5 s old) is a
	// connection opened and closed during the run; inode 300 was open and
	// closed during the run (its TIME_WAIT is the one seen): 1 + 1 - 1.
	before := connSample{at: now.Add(-10 * time.Second), open: map[string]bool{"300": true}}
	if n := newConns(before, after); n != 1 {
		t.Errorf("newConns = %d, want 1", n)
	}
	// 3 s earlier: the TIME_WAIT is older than the run.
	before = connSample{at: now.Add(-3 * time.Second), open: map[string]bool{"200": true}}
	if n := newConns(before, after); n != 0 {
		t.Errorf("newConns = %d, want 0", n)
	}
	// Our own /proc/net tables parse.
	if _, err := sampleConns(1); err != nil {
		t.Error(err)
	}
}
