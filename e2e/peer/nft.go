package peer

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

// faultSeq numbers the nftables tables of one test process.
var faultSeq atomic.Int64

// Blackhole makes ip:port vanish, as an ELB node that is replaced does:
// every TCP packet to it and from it is dropped, new connects time out and
// established (keep-alive) connections hang. It loads an nftables table in
// the test's network namespace and returns a function that removes it
// (also done in t.Cleanup; calling it twice is fine).
//
// It fails the test unless it runs inside a namespace InNetns created, so
// the host's ruleset is never touched.
func Blackhole(t testing.TB, ip string, port int) (remove func()) {
	t.Helper()
	return loadFault(t, "blackhole", ip, port, "drop")
}

// Reject makes ip:port refuse TCP: every packet to it is answered with a
// TCP reset, so connects fail at once and established connections break.
// Like Blackhole it only runs inside a namespace InNetns created and
// returns a function that lifts the fault.
func Reject(t testing.TB, ip string, port int) (remove func()) {
	t.Helper()
	return loadFault(t, "reject", ip, port, "reject with tcp reset")
}

func loadFault(t testing.TB, what, ip string, port int, verdict string) func() {
	t.Helper()
	ns := os.Getenv(NetnsEnv)
	if ns == "" {
		t.Fatalf("%s(%s, %d): refusing to run nft outside a network namespace made by InNetns (%s unset)", what, ip, port, NetnsEnv)
	}
	if err := checkInNetns(ns); err != nil {
		t.Fatalf("%s(%s, %d): refusing to run nft: %v", what, ip, port, err)
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil || port <= 0 || port > 65535 {
		t.Fatalf("%s(%q, %d): want an IP address and a port", what, ip, port)
	}
	family := "ip"
	if addr.Is6() && !addr.Is4In6() {
		family = "ip6"
	}
	table := fmt.Sprintf("wt_%s_%d", what, faultSeq.Add(1))
	// Blackhole drops in the input hook: on lo every packet, in both
	// directions, passes it once, after the sender's TCP counted it as
	// sent. That is how a vanished host looks: the sender retransmits
	// unacknowledged bytes (what webtier's stall watch reads in TCP_INFO),
	// and the replies never come, since a vanished host sends nothing
	// either. A drop in the output hook would instead fail the send
	// locally, which the kernel treats as a send not yet made. Reject
	// answers with a reset from the output hook, where the reply is
	// generated for the local sender at once.
	hook := "output"
	if verdict == "drop" {
		hook = "input"
	}
	rules := fmt.Sprintf(`table inet %[1]s {
  chain %[6]s {
    type filter hook %[6]s priority filter; policy accept;
    %[2]s daddr %[3]s tcp dport %[4]d %[5]s
`, table, family, addr.Unmap(), port, verdict, hook)
	if verdict == "drop" {
		rules += fmt.Sprintf("    %s saddr %s tcp sport %d drop\n", family, addr.Unmap(), port)
	}
	rules += "  }\n}\n"
	if out, err := runToolInput(rules, "nft", "-f", "-"); err != nil {
		t.Fatalf("%s(%s, %d): nft -f: %v: %s\nrules:\n%s", what, ip, port, err, out, rules)
	}
	var once sync.Once
	remove := func() {
		once.Do(func() {
			if out, err := runTool("nft", "delete", "table", "inet", table); err != nil {
				t.Errorf("%s(%s, %d): nft delete table inet %s: %v: %s", what, ip, port, table, err, out)
			}
		})
	}
	t.Cleanup(remove)
	return remove
}
