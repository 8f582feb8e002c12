package resolver_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/webtier/webtier/resolver"
)

// TestNameserverHealth: with ["dead", "live"], the dead server costs one
// timeout, not one per query: after it, queries go to the live server
// first, and the dead one only gets a probe once its retry time has come.
// When a probe gets a reply, the server is back in its place.
func TestNameserverHealth(t *testing.T) {
	dead, live := startServer(t), startServer(t)
	dead.SetDrop(true)
	for i := range 20 {
		name := fmt.Sprintf("n%d.test", i)
		dead.SetA(name, 60, addrs("10.0.0.1")...)
		live.SetA(name, 60, addrs("10.0.0.2")...)
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{QueryTimeout: 50 * time.Millisecond}, dead, live)
		resolve := func(i int) string {
			t.Helper()
			a, err := h.r.Resolve(context.Background(), fmt.Sprintf("n%d.test", i))
			if err != nil || len(a.Addrs) != 1 {
				t.Fatalf("Resolve n%d = %+v, %v; want one address", i, a, err)
			}
			return a.Addrs[0].String()
		}
		for i := range 10 {
			if got := resolve(i); got != "10.0.0.2" {
				t.Errorf("n%d from %s; want the live server's 10.0.0.2", i, got)
			}
		}
		if got := dead.Queries(); got != 1 {
			t.Errorf("queries to the dead server = %d; want 1 (one timeout, then asked last)", got)
		}
		if got := h.count("nameserver did not answer; asking it after the others until a probe gets a reply"); got != 1 {
			t.Errorf("went-down log lines = %d; want 1", got)
		}
		if got := h.metric(t, "webtier_resolver_nameservers_down"); got != 1 {
			t.Errorf("nameservers_down = %v; want 1", got)
		}

		// Still dead when its retry time comes: one probe, no query waits
		// for it, and the wait doubles.
		sleep(2 * time.Second)
		resolve(10)
		synctest.Wait()
		if got := dead.Queries(); got != 2 {
			t.Errorf("queries to the dead server after its first retry time = %d; want 2 (one probe)", got)
		}
		sleep(2 * time.Second) // less than the doubled 4 s
		resolve(11)
		synctest.Wait()
		if got := dead.Queries(); got != 2 {
			t.Errorf("queries to the dead server before its second retry time = %d; want still 2", got)
		}

		// It answers again: the next probe brings it back, and from then on
		// it is asked first, as configured.
		dead.SetDrop(false)
		sleep(2 * time.Second)
		if got := resolve(12); got != "10.0.0.2" {
			t.Errorf("n12 from %s; want the live server's (the probe runs beside the query)", got)
		}
		synctest.Wait()
		if got := h.count("nameserver answers again; back in its place in the order"); got != 1 {
			t.Errorf("came-back log lines = %d; want 1", got)
		}
		if got := resolve(13); got != "10.0.0.1" {
			t.Errorf("n13 from %s; want the first server's 10.0.0.1 once it is back", got)
		}
		if got := h.metric(t, "webtier_resolver_nameservers_down"); got != 0 {
			t.Errorf("nameservers_down = %v; want 0", got)
		}
	})
}
