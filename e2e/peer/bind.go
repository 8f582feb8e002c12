package peer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// DefaultZone is the zone a BIND serves when BINDOptions.Zone is empty.
const DefaultZone = "proxy.test."

// bindIP is the address named listens on. named only listens on addresses
// configured on an interface (it scans interfaces and matches listen-on
// against them), so a random 127.x.y.z that Go could bind would be silently
// ignored: named then logs no error and answers nothing. 127.0.0.1 is on lo
// on every Linux host and in every network namespace whose lo is up.
const bindIP = "127.0.0.1"

// harnessIP is the source address of every DNS message this package sends
// itself (readiness probes, update confirmations, nsupdate). Queries excludes
// it, so query counts show only what the system under test asked.
const harnessIP = "127.0.53.53"

const (
	// queryTimeout bounds one query made by this package.
	queryTimeout = time.Second
	// updateTimeout bounds one nsupdate run plus the confirmation that BIND
	// serves the change.
	updateTimeout = 30 * time.Second
	// bindStartAttempts bounds retries when the chosen port was taken
	// between picking it and named binding it.
	bindStartAttempts = 5
)

// errPortTaken reports that named could not bind its port.
var errPortTaken = errors.New("peer: named could not listen: port taken")

// Record is one resource record, in zone-file presentation form.
type Record struct {
	// Name is relative to the zone ("www"), "@" for the apex, or absolute
	// with a trailing dot ("www.proxy.test."). Records returned by Query
	// always carry the absolute, lower-case name.
	Name string
	// TTL in seconds. 0 is allowed and means "do not cache".
	TTL uint32
	// Type is the record type: "A", "AAAA", "CNAME", "TXT", ...
	Type string
	// Value is the record data in presentation form: "127.0.0.21",
	// "elb.proxy.test.", `"some text"`. Names in values must be absolute
	// (end with a dot) or are taken relative to the zone.
	Value string
}

// BINDOptions configure StartBIND.
type BINDOptions struct {
	// Zone is the zone BIND is authoritative for. Default DefaultZone.
	Zone string
	// Records are the zone's initial records, besides SOA, NS and ns1's A
	// record, which StartBIND writes itself. The zone's default TTL is 1 s
	// and its negative-caching TTL (SOA minimum) is 0.
	Records []Record
	// ZoneLines are appended to the zone file verbatim, for records Record
	// cannot express. The zone file is checked with named-checkconf -z, so
	// they must be valid.
	ZoneLines []string
}

// Answer is the reply to one query.
type Answer struct {
	// Rcode is the response code as text: "NOERROR", "NXDOMAIN",
	// "SERVFAIL", "REFUSED", ...
	Rcode string
	// Authoritative is the AA bit.
	Authoritative bool
	// Truncated is the TC bit (over UDP: the answer did not fit).
	Truncated bool
	// Records is the answer section in order, including any CNAME chain.
	Records []Record
}

// Values returns the Value of each record of type rtype in the answer.
func (a Answer) Values(rtype string) []string {
	var out []string
	for _, r := range a.Records {
		if strings.EqualFold(r.Type, rtype) {
			out = append(out, r.Value)
		}
	}
	return out
}

// BIND is a running BIND 9 named, authoritative for one zone that accepts
// dynamic updates from 127.0.0.0/8 without TSIG. It keeps its address and
// port, and its zone data (zone file plus journal), across Stop and Restart.
type BIND struct {
	zone     string
	port     int
	dir      string
	confPath string
	logPath  string
	nonce    string // TXT data of readyName, unique to this instance
	cfg      BINDConfig

	mu sync.Mutex // guards p: the current named process, nil before the first start
	p  *proc
}

// StartBIND writes a named.conf and zone file under t.TempDir(), starts
// named in the foreground on 127.0.0.1 and a free port, and returns once
// BIND answers a query for a record unique to this instance. It stops named
// in t.Cleanup. Missing named/nsupdate skip the test (see RequireTools).
func StartBIND(t testing.TB, opts BINDOptions) *BIND {
	t.Helper()
	RequireTools(t, "named", "named-checkconf", "nsupdate")

	zone := opts.Zone
	if zone == "" {
		zone = DefaultZone
	}
	b := &BIND{
		zone:  dns.Fqdn(strings.ToLower(zone)),
		dir:   t.TempDir(),
		nonce: randomHex(8),
	}
	b.confPath = BINDConfig{Dir: b.dir}.ConfPath()
	b.logPath = filepath.Join(b.dir, "named.log")

	// The readiness record first, then the caller's.
	b.cfg = BINDConfig{Dir: b.dir, Zone: b.zone, ZoneLines: opts.ZoneLines,
		Records: append([]Record{{Name: b.readyName(), TTL: 0, Type: "TXT", Value: strconv.Quote(b.nonce)}}, opts.Records...)}
	if err := b.cfg.WriteZone(); err != nil {
		t.Fatalf("StartBIND: %v", err)
	}

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("named log (%s), last 50 lines:\n%s", b.logPath, tailLines(b.Log(), 50))
		}
	})
	t.Cleanup(func() { b.stop(t) })

	for attempt := 1; ; attempt++ {
		b.port = freeUDPTCPPort(t, bindIP)
		b.cfg.Port = b.port
		if err := b.cfg.WriteConf(); err != nil {
			t.Fatalf("StartBIND: %v", err)
		}
		if attempt == 1 {
			if err := b.cfg.Check(context.Background()); err != nil {
				t.Fatalf("StartBIND: %v", err)
			}
		}
		err := b.start()
		if err == nil {
			return b
		}
		if errors.Is(err, errPortTaken) && attempt < bindStartAttempts {
			t.Logf("StartBIND: port %d was taken before named bound it; retrying with another", b.port)
			continue
		}
		t.Fatalf("StartBIND: %v", err)
	}
}

// Addr returns "127.0.0.1:port", where BIND answers over UDP and TCP.
func (b *BIND) Addr() string { return net.JoinHostPort(bindIP, fmt.Sprint(b.port)) }

// Zone returns the zone's absolute name, e.g. "proxy.test.".
func (b *BIND) Zone() string { return b.zone }

// FQDN returns name made absolute within the zone: "www" becomes
// "www.proxy.test.", "@" and "" the zone, and names ending in a dot are
// returned lower-cased.
func (b *BIND) FQDN(name string) string { return fqdnIn(b.zone, name) }

// fqdnIn is name made absolute within zone (see BIND.FQDN).
func fqdnIn(zone, name string) string {
	switch {
	case name == "" || name == "@":
		return zone
	case strings.HasSuffix(name, "."):
		return strings.ToLower(name)
	default:
		return strings.ToLower(name) + "." + zone
	}
}

// PID returns the process ID of the running named, or 0 when stopped.
func (b *BIND) PID() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p == nil || b.p.exited() {
		return 0
	}
	return b.p.pid()
}

// Log returns named's log so far (all runs, including the query log).
func (b *BIND) Log() string {
	out, err := os.ReadFile(b.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", b.logPath, err)
	}
	return string(out)
}

// Queries counts the queries for name (see FQDN) and type qtype ("A", ...)
// in named's query log, over all runs, excluding the queries this package
// sent itself. Named logs a query before answering it, so every query whose
// answer a client has received is counted.
func (b *BIND) Queries(name, qtype string) int {
	want := strings.ToLower(fmt.Sprintf("query: %s IN %s ", strings.TrimSuffix(b.FQDN(name), "."), qtype))
	harness := " " + harnessIP + "#"
	n := 0
	for _, line := range strings.Split(b.Log(), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, want) && !strings.Contains(l, harness) {
			n++
		}
	}
	return n
}

// Query sends one query for name (see FQDN) and type qtype over UDP with
// EDNS0 (buffer 1232, as Go's resolver and BIND use), with a 1 s timeout, no
// retry and no TCP fallback. It returns an error when BIND does not answer:
// a timeout when it is paused, typically "connection refused" when it is
// stopped (the kernel answers a closed UDP port with ICMP at once).
func (b *BIND) Query(name, qtype string) (Answer, error) {
	return b.query("udp", b.FQDN(name), qtype)
}

func (b *BIND) query(network, fqdn, qtype string) (Answer, error) {
	qt, ok := dns.StringToType[strings.ToUpper(qtype)]
	if !ok {
		return Answer{}, fmt.Errorf("peer: unknown query type %q", qtype)
	}
	m := new(dns.Msg)
	m.SetQuestion(fqdn, qt)
	m.SetEdns0(1232, false)
	local := net.ParseIP(harnessIP)
	d := &net.Dialer{Timeout: queryTimeout}
	if network == "tcp" {
		d.LocalAddr = &net.TCPAddr{IP: local}
	} else {
		d.LocalAddr = &net.UDPAddr{IP: local}
	}
	c := &dns.Client{Net: network, Dialer: d, Timeout: queryTimeout}
	r, _, err := c.Exchange(m, b.Addr())
	if err != nil {
		return Answer{}, fmt.Errorf("query %s %s @%s/%s: %w", fqdn, qtype, b.Addr(), network, err)
	}
	a := Answer{
		Rcode:         dns.RcodeToString[r.Rcode],
		Authoritative: r.Authoritative,
		Truncated:     r.Truncated,
	}
	for _, rr := range r.Answer {
		a.Records = append(a.Records, fromRR(rr))
	}
	return a, nil
}

// SetA replaces all address records of name (see FQDN) with A records for
// ips, removing a CNAME at name if there is one. It runs the real nsupdate,
// as Route 53 changes an ELB's record, and returns once BIND serves exactly
// the new set.
func (b *BIND) SetA(t testing.TB, name string, ttl uint32, ips ...string) {
	t.Helper()
	if len(ips) == 0 {
		t.Fatalf("SetA(%q): no addresses; use Delete to remove a name", name)
	}
	for _, ip := range ips {
		if a := net.ParseIP(ip); a == nil || a.To4() == nil {
			t.Fatalf("SetA(%q): %q is not an IPv4 address", name, ip)
		}
	}
	b.Set(t, name, "A", ttl, ips...)
}

// SetCNAME makes name (see FQDN) a CNAME for target (see FQDN), replacing
// every record name had, via nsupdate, and returns once BIND serves it.
func (b *BIND) SetCNAME(t testing.TB, name, target string, ttl uint32) {
	t.Helper()
	b.Set(t, name, "CNAME", ttl, b.FQDN(target))
}

// Set replaces the records of type rtype at name (see FQDN) with values, via
// nsupdate, and returns once BIND serves exactly that set. Setting a CNAME
// first deletes everything at name; setting any other type deletes a CNAME
// at name (a name cannot have a CNAME and other data).
func (b *BIND) Set(t testing.TB, name, rtype string, ttl uint32, values ...string) {
	t.Helper()
	fqdn := b.FQDN(name)
	rtype = strings.ToUpper(rtype)
	want := make([]dns.RR, 0, len(values))
	for _, v := range values {
		rr, err := dns.NewRR(fmt.Sprintf("$ORIGIN %s\n%s %d IN %s %s", b.zone, fqdn, ttl, rtype, v))
		if err != nil || rr == nil {
			t.Fatalf("Set(%q, %s): bad value %q: %v", name, rtype, v, err)
		}
		want = append(want, rr)
	}
	var cmds []string
	if rtype == "CNAME" {
		cmds = append(cmds, "update delete "+fqdn)
	} else {
		cmds = append(cmds, "update delete "+fqdn+" CNAME")
	}
	cmds = append(cmds, "update delete "+fqdn+" "+rtype)
	for _, rr := range want {
		cmds = append(cmds, "update add "+rr.String())
	}
	b.update(t, cmds, fmt.Sprintf("%s %s = %v (ttl %d)", fqdn, rtype, values, ttl), func(a Answer) bool {
		return sameRRset(a, fqdn, rtype, ttl, want)
	}, fqdn, rtype)
}

// Delete removes every record at name (see FQDN) via nsupdate and returns
// once BIND serves none.
func (b *BIND) Delete(t testing.TB, name string) {
	t.Helper()
	fqdn := b.FQDN(name)
	b.update(t, []string{"update delete " + fqdn}, fqdn+" deleted", func(a Answer) bool {
		for _, r := range a.Records {
			if r.Name == fqdn {
				return false
			}
		}
		return true
	}, fqdn, "ANY")
}

// update runs nsupdate with cmds against the zone and then queries fqdn
// qtype over TCP until done accepts the answer.
func (b *BIND) update(t testing.TB, cmds []string, what string, done func(Answer) bool, fqdn, qtype string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), updateTimeout)
	defer cancel()
	if err := NSUpdate(ctx, b.Addr(), b.zone, cmds...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var last Answer
	var lastErr error
	ok := poll(updateTimeout, func() bool {
		last, lastErr = b.query("tcp", fqdn, qtype)
		return lastErr == nil && done(last)
	})
	if !ok {
		t.Fatalf("after nsupdate, BIND did not serve %s: last answer %+v, error %v", what, last, lastErr)
	}
}

// Stop stops named with SIGTERM (SIGKILL after 10 s) and waits for it to
// exit. Queries then fail (see Query). Restart brings it back.
func (b *BIND) Stop(t testing.TB) {
	t.Helper()
	b.stop(t)
}

func (b *BIND) stop(t testing.TB) {
	t.Helper()
	b.mu.Lock()
	p := b.p
	b.mu.Unlock()
	if p == nil || p.exited() {
		return
	}
	if _, killed := p.stop(stopGrace); killed {
		t.Errorf("named (pid %d) ignored SIGTERM for %v and was killed", p.pid(), stopGrace)
	}
}

// Restart stops named if it runs and starts it again on the same address
// and port with the same zone data, including every change made with
// nsupdate (BIND keeps them in its journal, zone.db.jnl). It returns once
// BIND answers again.
func (b *BIND) Restart(t testing.TB) {
	t.Helper()
	b.stop(t)
	if err := b.start(); err != nil {
		t.Fatalf("Restart BIND on %s: %v", b.Addr(), err)
	}
}

// Pause stops named with SIGSTOP: its sockets stay open, so queries time out
// instead of being refused (an unresponsive DNS server rather than a dead
// one). Resume continues it.
func (b *BIND) Pause(t testing.TB) {
	t.Helper()
	b.signal(t, syscall.SIGSTOP)
	// SIGSTOP is delivered asynchronously: a query sent right after kill(2)
	// could still be answered. Wait until every thread of named is stopped.
	b.mu.Lock()
	pid := b.p.pid()
	b.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for !allThreadsStopped(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("named (pid %d) did not stop within 10s of SIGSTOP", pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in state T.
func allThreadsStopped(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		i := strings.LastIndexByte(string(stat), ')')
		if i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Resume continues a named paused with Pause.
func (b *BIND) Resume(t testing.TB) { t.Helper(); b.signal(t, syscall.SIGCONT) }

func (b *BIND) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	b.mu.Lock()
	p := b.p
	b.mu.Unlock()
	if p == nil || p.exited() {
		t.Fatalf("BIND on %s is not running", b.Addr())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to named (pid %d): %v", sig, p.pid(), err)
	}
}

// start runs named and waits until it answers the readiness record.
func (b *BIND) start() error {
	logStart := fileSize(b.logPath)
	p, err := startProc(b.logPath, b.cfg.Command()...)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.p = p
	b.mu.Unlock()

	ready := poll(readyTimeout, func() bool {
		if p.exited() {
			return true
		}
		a, err := b.query("udp", b.readyName(), "TXT")
		return err == nil && slices.Contains(a.Values("TXT"), `"`+b.nonce+`"`)
	})
	if p.exited() {
		log := b.Log()
		if int64(len(log)) >= logStart {
			log = log[logStart:]
		}
		if strings.Contains(log, "unable to listen on any configured interfaces") ||
			strings.Contains(log, "address in use") {
			return fmt.Errorf("%w: %s", errPortTaken, b.Addr())
		}
		return fmt.Errorf("named exited (%s) before answering on %s; log:\n%s",
			exitDescription(p.waitErr), b.Addr(), tailLines(log, 50))
	}
	if !ready {
		p.stop(stopGrace)
		return fmt.Errorf("named (pid %d) did not answer %s TXT on %s within %v",
			p.pid(), b.readyName(), b.Addr(), readyTimeout)
	}
	return nil
}

// readyName holds a TXT record unique to this BIND, so readiness is proven
// by this instance answering, not by whatever else might hold the port.
func (b *BIND) readyName() string { return "_webtier-peer-ready." + b.zone }

// BINDConfig is a private named: named.conf and zone.db in Dir, named
// authoritative for Zone on 127.0.0.1:Port (UDP and TCP), taking dynamic
// updates from 127.0.0.0/8 without TSIG (shared/PEERS.md section 3), with
// its query log on. StartBIND writes one for the tests; e2e/bench writes
// one for its failover scenario (port 53 in a network namespace of its
// own) and starts Command itself.
type BINDConfig struct {
	Dir  string
	Port int
	// Zone is the zone's absolute name ("proxy.test.").
	Zone string
	// Records and ZoneLines are the zone's records besides SOA, NS and
	// ns1's A record (see BINDOptions). The zone's default TTL is 1 s and
	// its negative-caching TTL 0.
	Records   []Record
	ZoneLines []string
}

// ConfPath is named.conf's path.
func (c BINDConfig) ConfPath() string { return filepath.Join(c.Dir, "named.conf") }

// Write writes named.conf and the zone file.
func (c BINDConfig) Write() error {
	if err := c.WriteZone(); err != nil {
		return err
	}
	return c.WriteConf()
}

// WriteConf writes named.conf, which holds the port.
func (c BINDConfig) WriteConf() error {
	return os.WriteFile(c.ConfPath(), []byte(c.namedConf()), 0o644)
}

// WriteZone writes the zone file, zone.db.
func (c BINDConfig) WriteZone() error {
	z, err := c.zoneFile()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir, "zone.db"), []byte(z), 0o644)
}

// Check runs named-checkconf -z on the written files.
func (c BINDConfig) Check(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "named-checkconf", "-z", c.ConfPath()).CombinedOutput()
	if err != nil {
		z, _ := os.ReadFile(filepath.Join(c.Dir, "zone.db"))
		return fmt.Errorf("named-checkconf -z %s: %v\n%s\nzone file:\n%s", c.ConfPath(), err, out, z)
	}
	return nil
}

// Command is named's command line: in the foreground, logging to stderr,
// IPv4 only, one worker thread.
func (c BINDConfig) Command() []string {
	return []string{"named", "-g", "-4", "-n", "1", "-c", c.ConfPath()}
}

func (c BINDConfig) namedConf() string {
	return fmt.Sprintf(`options {
	directory %[1]q;
	pid-file %[2]q;
	session-keyfile %[3]q;
	listen-on port %[4]d { %[5]s; };
	listen-on-v6 { none; };
	recursion no;
	allow-query { any; };
	dnssec-validation no;
	notify no;
	querylog yes;
	minimal-responses yes;
};
controls { };
zone %[6]q {
	type primary;
	file "zone.db";
	allow-update { 127.0.0.0/8; };
};
`, c.Dir, filepath.Join(c.Dir, "named.pid"), filepath.Join(c.Dir, "session.key"),
		c.Port, bindIP, strings.TrimSuffix(c.Zone, "."))
}

func (c BINDConfig) zoneFile() (string, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "$ORIGIN %s\n$TTL 1\n", c.Zone)
	fmt.Fprintf(&sb, "@ IN SOA ns1.%[1]s hostmaster.%[1]s 1 3600 600 86400 0\n", c.Zone)
	fmt.Fprintf(&sb, "@ IN NS ns1.%s\n", c.Zone)
	fmt.Fprintf(&sb, "ns1 IN A %s\n", bindIP)
	for _, r := range c.Records {
		if r.Type == "" || r.Value == "" {
			return "", fmt.Errorf("record %+v: Type and Value are required", r)
		}
		fmt.Fprintf(&sb, "%s %d IN %s %s\n", fqdnIn(c.Zone, r.Name), r.TTL, strings.ToUpper(r.Type), r.Value)
	}
	for _, l := range c.ZoneLines {
		sb.WriteString(l + "\n")
	}
	return sb.String(), nil
}

// NSUpdate runs the real nsupdate against the BIND at addr ("ip:port")
// with cmds ("update delete ...", "update add ...") for zone, sent from
// this package's own source address (BIND.Queries leaves its queries out),
// bounded by ctx. It returns once BIND accepted the update; whether BIND
// serves it yet is the caller's to check.
func NSUpdate(ctx context.Context, addr, zone string, cmds ...string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	script := fmt.Sprintf("server %s %s\nlocal %s\nzone %s\n%s\nsend\n",
		host, port, harnessIP, zone, strings.Join(cmds, "\n"))
	cmd := exec.CommandContext(ctx, "nsupdate", "-t", "10")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nsupdate: %v\n%s\nscript:\n%s", err, out, script)
	}
	return nil
}

// sameRRset reports whether a holds exactly want (type, data and TTL) as the
// records of type rtype owned by fqdn, and no CNAME at fqdn unless rtype is
// CNAME.
func sameRRset(a Answer, fqdn, rtype string, ttl uint32, want []dns.RR) bool {
	if a.Rcode != "NOERROR" {
		return false
	}
	var got []dns.RR
	for _, r := range a.Records {
		if r.Name != fqdn {
			continue
		}
		if r.Type != rtype {
			return false // e.g. a CNAME still at fqdn
		}
		if r.TTL != ttl {
			return false
		}
		rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", r.Name, r.TTL, r.Type, r.Value))
		if err != nil {
			return false
		}
		got = append(got, rr)
	}
	if len(got) != len(want) {
		return false
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g dns.RR) bool { return dns.IsDuplicate(g, w) }) {
			return false
		}
	}
	return true
}

func fromRR(rr dns.RR) Record {
	h := rr.Header()
	return Record{
		Name:  strings.ToLower(h.Name),
		TTL:   h.Ttl,
		Type:  dns.TypeToString[h.Rrtype],
		Value: strings.TrimPrefix(rr.String(), h.String()),
	}
}

// freeUDPTCPPort returns a port that is free for both UDP and TCP on ip at
// the time of the call.
func freeUDPTCPPort(t testing.TB, ip string) int {
	t.Helper()
	for range 20 {
		tl, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("listen tcp %s:0: %v", ip, err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := net.ListenPacket("udp", net.JoinHostPort(ip, fmt.Sprint(port)))
		tl.Close()
		if err == nil {
			ul.Close()
			return port
		}
	}
	t.Fatalf("no port free for both UDP and TCP on %s after 20 tries", ip)
	return 0
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error.
	return hex.EncodeToString(b)
}
