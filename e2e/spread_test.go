package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// Issue 16: 200 names with TTL 1 were re-queried in one ~30 ms burst every
// 0.9 s; a VPC resolver allows 1024 packets/s per interface. With refresh
// jitter (each refresh at a random point in the last fifth of the TTL) the
// queries BIND logs spread over the second: the busiest 100 ms window holds
// at most four times the mean (it held all 200, nine times the mean,
// before), and the average rate stays one query per
// name per 80-100% of the TTL.
func TestRefreshSpreadAgainstBIND(t *testing.T) {
	const names = 200
	var records []peer.Record
	var upstreams strings.Builder
	for i := range names {
		records = append(records, peer.Record{Name: fmt.Sprintf("n%d", i), TTL: recordTTL, Type: "A", Value: "127.0.0.1"})
		fmt.Fprintf(&upstreams, "  n%d:\n    targets:\n      - url: http://n%d.proxy.test:9\n", i, i)
	}
	bind := peer.StartBIND(t, peer.BINDOptions{Records: records})
	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`
listeners:
  - address: %q
routes:
  - path: /
    upstream: n0
upstreams:
%sresolver:
  nameservers: [%q]
logging:
  level: warn
`, listen, upstreams.String(), bind.Addr())
	peer.StartWebtier(t, peer.Build(t), listen, cfg)

	// The spread grows with every refresh from the start-up burst; look at
	// a 10 s window after 15 s.
	settle := time.Now().Add(15 * time.Second)
	const windows = 100 // of 100 ms
	end := settle.Add(windows * 100 * time.Millisecond)
	time.Sleep(time.Until(end) + 200*time.Millisecond) // a bounded observation window; nothing signals "spread"
	counts := make([]int, windows)
	total := 0
	for _, line := range strings.Split(bind.Log(), "\n") {
		if !strings.Contains(line, " query: n") || !strings.Contains(line, " IN A ") {
			continue
		}
		// "07-Dec-2026 19:10:39.279 client @0x... 127.0.0.1#port (n5.proxy.test): query: ..."
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		at, err := time.ParseInLocation("02-Jan-2006 15:04:05.000", f[0]+" "+f[1], time.Local)
		if err != nil || at.Before(settle) || !at.Before(end) {
			continue
		}
		counts[int(at.Sub(settle)/(100*time.Millisecond))]++
		total++
	}
	peak := slices.Max(counts)
	mean := float64(total) / windows
	// One refresh per name every 0.8-1.0 s of TTL: 200-250 queries a second.
	if lo, hi := names*10, names*10*5/4; total < lo*9/10 || total > hi*11/10 {
		t.Errorf("BIND logged %d queries for the %d names in 10 s; want about %d-%d (one per name per 80-100%% of the 1 s TTL)", total, names, lo, hi)
	}
	if float64(peak) > 4*mean {
		t.Errorf("busiest 100 ms window: %d queries; want at most 4× the mean %.1f (windows: %v)", peak, mean, counts)
	}
	t.Logf("queries per 100 ms over 10 s: mean %.1f, peak %d", mean, peak)
}
