package peer_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/webtier/webtier/e2e/peer"
)

// fakeWebtierEnv makes the test binary act as a stand-in for the webtier
// binary (see fakeWebtier), so StartWebtier's process handling is tested
// before cmd/webtier exists.
const fakeWebtierEnv = "PEER_TEST_FAKE_WEBTIER"

func TestMain(m *testing.M) {
	if os.Getenv(fakeWebtierEnv) == "1" {
		fakeWebtier()
		return
	}
	peer.Main(m)
}

func elbRecords() []peer.Record {
	return []peer.Record{
		{Name: "ttl0", TTL: 0, Type: "A", Value: "127.0.0.10"},
		{Name: "ttl1", TTL: 1, Type: "A", Value: "127.0.0.11"},
		{Name: "app2", TTL: 1, Type: "CNAME", Value: "elb2"},
		{Name: "elb2", TTL: 1, Type: "CNAME", Value: "internal-x-99.eu-west-1.elb.proxy.test."},
		{Name: "internal-x-99.eu-west-1.elb", TTL: 1, Type: "A", Value: "127.0.0.31"},
		{Name: "internal-x-99.eu-west-1.elb", TTL: 1, Type: "A", Value: "127.0.0.32"},
		{Name: "flip", TTL: 5, Type: "A", Value: "127.0.3.1"},
	}
}

// query is BIND.Query that fails the test on error.
func query(t *testing.T, b *peer.BIND, name, qtype string) peer.Answer {
	t.Helper()
	a, err := b.Query(name, qtype)
	if err != nil {
		t.Fatalf("Query(%q, %s): %v", name, qtype, err)
	}
	return a
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestBIND_initialRecords(t *testing.T) {
	t.Parallel()
	b := peer.StartBIND(t, peer.BINDOptions{Records: elbRecords()})

	if got, want := b.Zone(), "proxy.test."; got != want {
		t.Errorf("Zone() = %q; want %q", got, want)
	}
	if host, _, err := net.SplitHostPort(b.Addr()); err != nil || host != "127.0.0.1" {
		t.Errorf("Addr() = %q; want 127.0.0.1:port", b.Addr())
	}

	tests := []struct {
		name      string
		qname     string
		wantRcode string
		wantA     []string
		wantCNAME []string
		wantTTL   uint32
	}{
		{name: "ttl0", qname: "ttl0", wantRcode: "NOERROR", wantA: []string{"127.0.0.10"}, wantTTL: 0},
		{name: "ttl1-absolute", qname: "ttl1.proxy.test.", wantRcode: "NOERROR", wantA: []string{"127.0.0.11"}, wantTTL: 1},
		{name: "cname-chain", qname: "app2", wantRcode: "NOERROR",
			wantA:     []string{"127.0.0.31", "127.0.0.32"},
			wantCNAME: []string{"elb2.proxy.test.", "internal-x-99.eu-west-1.elb.proxy.test."}, wantTTL: 1},
		{name: "nxdomain", qname: "nope", wantRcode: "NXDOMAIN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := query(t, b, tt.qname, "A")
			if a.Rcode != tt.wantRcode || !a.Authoritative {
				t.Fatalf("Query(%q) rcode %s aa %v; want %s aa true", tt.qname, a.Rcode, a.Authoritative, tt.wantRcode)
			}
			if got := sorted(a.Values("A")); !slices.Equal(got, tt.wantA) {
				t.Errorf("Query(%q) A = %v; want %v", tt.qname, got, tt.wantA)
			}
			if got := a.Values("CNAME"); !slices.Equal(got, tt.wantCNAME) {
				t.Errorf("Query(%q) CNAME = %v; want %v", tt.qname, got, tt.wantCNAME)
			}
			for _, r := range a.Records {
				if r.TTL != tt.wantTTL {
					t.Errorf("Query(%q) record %+v TTL = %d; want %d", tt.qname, r, r.TTL, tt.wantTTL)
				}
			}
		})
	}
}

func TestBIND_SetA(t *testing.T) {
	t.Parallel()
	b := peer.StartBIND(t, peer.BINDOptions{Records: elbRecords()})

	b.SetA(t, "flip", 0, "127.0.3.3", "127.0.3.2")
	a := query(t, b, "flip", "A")
	if got, want := sorted(a.Values("A")), []string{"127.0.3.2", "127.0.3.3"}; !slices.Equal(got, want) {
		t.Errorf("after SetA: A = %v; want %v", got, want)
	}
	if a.Records[0].TTL != 0 {
		t.Errorf("after SetA: TTL = %d; want 0", a.Records[0].TTL)
	}

	// A new name, then a shrink to one address.
	b.SetA(t, "new.proxy.test.", 1, "127.0.3.9")
	b.SetA(t, "flip", 1, "127.0.3.2")
	if got, want := query(t, b, "flip", "A").Values("A"), []string{"127.0.3.2"}; !slices.Equal(got, want) {
		t.Errorf("after second SetA: A = %v; want %v", got, want)
	}
	if got, want := query(t, b, "new", "A").Values("A"), []string{"127.0.3.9"}; !slices.Equal(got, want) {
		t.Errorf("new name: A = %v; want %v", got, want)
	}
}

func TestBIND_SetCNAMEAndDelete(t *testing.T) {
	t.Parallel()
	b := peer.StartBIND(t, peer.BINDOptions{Records: elbRecords()})

	// flip has an A record; turning it into a CNAME must replace it.
	b.SetCNAME(t, "flip", "internal-x-99.eu-west-1.elb", 1)
	a := query(t, b, "flip", "A")
	if got, want := a.Values("CNAME"), []string{"internal-x-99.eu-west-1.elb.proxy.test."}; !slices.Equal(got, want) {
		t.Errorf("after SetCNAME: CNAME = %v; want %v", got, want)
	}
	if got, want := sorted(a.Values("A")), []string{"127.0.0.31", "127.0.0.32"}; !slices.Equal(got, want) {
		t.Errorf("after SetCNAME: chained A = %v; want %v", got, want)
	}

	// And back: an A record replaces the CNAME.
	b.SetA(t, "flip", 1, "127.0.3.7")
	a = query(t, b, "flip", "A")
	if got := a.Values("CNAME"); len(got) != 0 {
		t.Errorf("after SetA over CNAME: CNAME = %v; want none", got)
	}
	if got, want := a.Values("A"), []string{"127.0.3.7"}; !slices.Equal(got, want) {
		t.Errorf("after SetA over CNAME: A = %v; want %v", got, want)
	}

	b.Delete(t, "flip")
	if got := query(t, b, "flip", "A"); got.Rcode != "NXDOMAIN" {
		t.Errorf("after Delete: %+v; want NXDOMAIN", got)
	}
}

func TestBIND_stopRestartKeepsUpdates(t *testing.T) {
	t.Parallel()
	b := peer.StartBIND(t, peer.BINDOptions{Records: elbRecords()})
	addr := b.Addr()
	pid := b.PID()

	b.SetA(t, "flip", 1, "127.0.3.5")
	b.SetCNAME(t, "app2", "ttl1", 1)
	b.Stop(t)

	if b.PID() != 0 {
		t.Errorf("PID() after Stop = %d; want 0", b.PID())
	}
	if a, err := b.Query("flip", "A"); err == nil {
		t.Fatalf("Query after Stop = %+v; want an error", a)
	}

	b.Restart(t)
	if b.Addr() != addr {
		t.Errorf("Addr() after Restart = %q; want %q", b.Addr(), addr)
	}
	if b.PID() == pid || b.PID() == 0 {
		t.Errorf("PID() after Restart = %d; want a new process (was %d)", b.PID(), pid)
	}
	if got, want := query(t, b, "flip", "A").Values("A"), []string{"127.0.3.5"}; !slices.Equal(got, want) {
		t.Errorf("after Restart: flip A = %v; want %v (the nsupdate change)", got, want)
	}
	a := query(t, b, "app2", "A")
	if got, want := a.Values("CNAME"), []string{"ttl1.proxy.test."}; !slices.Equal(got, want) {
		t.Errorf("after Restart: app2 CNAME = %v; want %v", got, want)
	}

	// Restart of a running server works too, and updates still apply.
	b.Restart(t)
	b.SetA(t, "flip", 1, "127.0.3.6")
}

func TestBIND_pauseTimesOut(t *testing.T) {
	t.Parallel()
	b := peer.StartBIND(t, peer.BINDOptions{Records: elbRecords()})

	b.Pause(t)
	_, err := b.Query("ttl1", "A")
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("Query while paused: err = %v; want a timeout", err)
	}
	b.Resume(t)
	if got, want := query(t, b, "ttl1", "A").Values("A"), []string{"127.0.0.11"}; !slices.Equal(got, want) {
		t.Errorf("after Resume: A = %v; want %v", got, want)
	}
}

func TestBIND_Queries(t *testing.T) {
	t.Parallel()
	b := peer.StartBIND(t, peer.BINDOptions{Records: elbRecords()})
	b.SetA(t, "flip", 1, "127.0.3.8") // the harness's own queries are not counted

	if got := b.Queries("flip", "A"); got != 0 {
		t.Fatalf("Queries before any client query = %d; want 0", got)
	}
	// A client that is not the harness: Go's own resolver, sent to BIND.
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, b.Addr())
	}}
	ips, err := r.LookupIP(context.Background(), "ip4", "flip.proxy.test.")
	if err != nil {
		t.Fatalf("LookupIP: %v", err)
	}
	if len(ips) != 1 || ips[0].String() != "127.0.3.8" {
		t.Errorf("LookupIP = %v; want [127.0.3.8]", ips)
	}
	if got := b.Queries("flip", "A"); got != 1 {
		t.Errorf("Queries(flip, A) = %d; want 1\nlog:\n%s", got, b.Log())
	}
}

func TestBackends_sharePort(t *testing.T) {
	t.Parallel()
	bs := peer.StartBackends(t, "127.0.0.21", "127.0.0.22")
	if bs[0].Port() != bs[1].Port() {
		t.Fatalf("ports %d and %d; want the same", bs[0].Port(), bs[1].Port())
	}
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	for _, b := range bs {
		req, _ := http.NewRequest("GET", b.URL()+"/x?y=1", nil)
		req.Header.Set("X-Forwarded-For", "192.0.2.1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", b.URL(), err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Backend") != b.IP() || string(body) != b.IP()+"\n" {
			t.Errorf("GET %s = %d X-Backend %q body %q; want 200 %q", b.URL(), resp.StatusCode, resp.Header.Get("X-Backend"), body, b.IP())
		}
		last := b.Last()
		if last.RequestURI != "/x?y=1" || last.Header.Get("X-Forwarded-For") != "192.0.2.1" {
			t.Errorf("%v Last() = %+v; want URI /x?y=1 and X-Forwarded-For 192.0.2.1", b, last)
		}
	}
	for _, b := range bs {
		if b.Count() != 1 {
			t.Errorf("%v Count() = %d; want 1", b, b.Count())
		}
	}

	bs[0].Close()
	if c, err := net.Dial("tcp", bs[0].Addr()); err == nil {
		c.Close()
		t.Errorf("dial %s after Close succeeded; want refused", bs[0].Addr())
	}
}

func TestStartBackend_explicitPort(t *testing.T) {
	t.Parallel()
	a := peer.StartBackend(t, "127.0.0.23", "a")
	b := peer.StartBackendAt(t, fmt.Sprintf("127.0.0.24:%d", a.Port()), "b")
	if a.Port() != b.Port() || b.Name() != "b" || b.IP() != "127.0.0.24" {
		t.Errorf("got %v and %v; want the same port on 127.0.0.23 and .24", a, b)
	}
}

func TestRequireTools(t *testing.T) {
	// Not parallel: t.Setenv.
	tests := []struct {
		name     string
		require  string
		tools    []string
		wantSkip bool
		wantFail bool
		wantText string
	}{
		{name: "present", tools: []string{"sh"}},
		{name: "missing-skips", tools: []string{"sh", "no-such-tool-xyz"}, wantSkip: true, wantText: "no-such-tool-xyz"},
		{name: "missing-named-names-package", tools: []string{"named"}, wantSkip: true, wantText: "apt package bind9"},
		{name: "missing-fails-in-ci", require: "1", tools: []string{"no-such-tool-xyz"}, wantFail: true, wantText: "e2e/test.sh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(peer.RequireEnv, tt.require)
			if tt.tools[0] == "named" {
				t.Setenv("PATH", t.TempDir()) // hide the real named
			}
			rec := &recordTB{TB: t}
			rec.run(func() { peer.RequireTools(rec, tt.tools...) })
			if rec.skipped != tt.wantSkip {
				t.Errorf("skipped = %v; want %v (%s)", rec.skipped, tt.wantSkip, rec.msg)
			}
			if rec.failed != tt.wantFail {
				t.Errorf("failed = %v; want %v (%s)", rec.failed, tt.wantFail, rec.msg)
			}
			if !strings.Contains(rec.msg, tt.wantText) {
				t.Errorf("message %q; want it to contain %q", rec.msg, tt.wantText)
			}
		})
	}
}

// recordTB records Skipf and Fatalf instead of ending the real test.
type recordTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recordTB) Helper() {}
func (r *recordTB) Skipf(format string, args ...any) {
	r.skipped, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recordTB) Fatalf(format string, args ...any) {
	r.failed, r.msg = true, fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls f on its own goroutine, so that Skipf/Fatalf can end it.
func (r *recordTB) run(f func()) {
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	<-done
}

func TestBuild(t *testing.T) {
	if ok, why := peer.HasMain(); !ok {
		t.Skipf("cmd/webtier is not buildable yet (other work in progress): %s", why)
	}
	bin := peer.Build(t)
	fi, err := os.Stat(bin)
	if err != nil || fi.Mode()&0o111 == 0 {
		t.Fatalf("Build() = %q: %v, mode %v; want an executable", bin, err, fi.Mode())
	}
	if again := peer.Build(t); again != bin {
		t.Errorf("second Build() = %q; want %q (built once)", again, bin)
	}
}

// TestStartWebtier checks the process handling of StartWebtier with this
// test binary standing in for webtier (see fakeWebtier).
func TestStartWebtier(t *testing.T) {
	t.Setenv(fakeWebtierEnv, "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	addr := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, exe, addr, "listen: "+addr+"\n")

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(w.URL() + "/")
	if err != nil {
		t.Fatalf("GET %s: %v", w.URL(), err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fake webtier\n" {
		t.Errorf("GET %s body %q; want %q", w.URL(), body, "fake webtier\n")
	}

	if err := w.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("Signal(SIGHUP): %v", err)
	}
	w.WaitLog(t, "reload requested")
	if !strings.Contains(w.Logs(), "config "+filepath.Base(w.ConfigPath())) {
		t.Errorf("Logs() = %q; want the config file named", w.Logs())
	}
	if err := w.Stop(t); err != nil {
		t.Errorf("Stop() = %v; want a clean exit", err)
	}
	select {
	case <-w.Exited():
	default:
		t.Errorf("Exited() not closed after Stop")
	}
	if !strings.Contains(w.Logs(), "terminating") {
		t.Errorf("Logs() = %q; want the shutdown message", w.Logs())
	}
}

// fakeWebtier stands in for the webtier binary: `-config FILE` whose first
// line is "listen: ADDR"; serves HTTP there; logs SIGHUP; exits 0 on SIGINT
// (what StartWebtier's Stop sends) or SIGTERM.
func fakeWebtier() {
	if len(os.Args) != 3 || os.Args[1] != "-config" {
		fmt.Fprintf(os.Stderr, "usage: %s -config FILE\n", os.Args[0])
		os.Exit(2)
	}
	f, err := os.Open(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sc := bufio.NewScanner(f)
	sc.Scan()
	f.Close()
	addr := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "listen:"))
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("config %s: listening on %s\n", filepath.Base(os.Args[2]), addr)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "fake webtier\n")
	}))
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			fmt.Println("reload requested")
			continue
		}
		fmt.Println("terminating")
		os.Exit(0)
	}
}
