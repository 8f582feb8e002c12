package resolver_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/webtier/webtier/resolver"
)

// webtier_resolver_answer_age_seconds says, per name, how old the answer
// in use is: it grows while the answer is cached and starts again from 0
// at each refresh. Every resolver metric passes the linter.
func TestAnswerAgeMetric(t *testing.T) {
	srv := startServer(t)
	srv.SetA("app.test", 60, addrs("10.0.0.1")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{}, srv)
		if _, err := h.r.Lookup(context.Background(), "app.test"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Second)
		if got := h.metric(t, "webtier_resolver_answer_age_seconds", "name", "app.test"); got != 20 {
			t.Errorf("answer age after 20 s = %v; want 20", got)
		}
		time.Sleep(45 * time.Second) // past the 60 s TTL: refreshed
		synctest.Wait()
		if got := h.metric(t, "webtier_resolver_answer_age_seconds", "name", "app.test"); got < 0 || got >= 20 {
			t.Errorf("answer age after a refresh = %v; want it restarted below 20", got)
		}
		if problems, err := testutil.GatherAndLint(h.reg); err != nil || len(problems) > 0 {
			t.Errorf("lint: %v %v", problems, err)
		}
	})
}
