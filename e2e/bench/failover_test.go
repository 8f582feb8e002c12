package main

// Unit tests of the failover scenario's pure parts: the run summary, the
// failure kinds and the webtier log excerpt. Nothing here starts a peer.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummarizeRun(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	w := foWindow{start: at(0), update: at(3000), changed: at(3400), vanish: at(3401), end: at(10000)}
	ms := time.Millisecond
	recs := []foRec{
		{sent: at(-50), took: 2 * ms, status: 200, backend: foOldIP},            // warm-up: not counted
		{sent: at(100), took: 2 * ms, status: 200, backend: foOldIP},            // before
		{sent: at(200), took: 4 * ms, status: 200, backend: foOldIP},            // before
		{sent: at(3100), took: 3 * ms, status: 200, backend: foOldIP},           // during nsupdate
		{sent: at(3405), took: 1500 * ms, status: 200, backend: foNewIP},        // stuck, then rescued
		{sent: at(3410), took: 2000 * ms, status: 504},                          // connect timeout
		{sent: at(3420), took: 5000 * ms, err: "timeout (5s)"},                  // hung
		{sent: at(6000), took: 1 * ms, status: 200, backend: foNewIP},           // after
		{sent: at(10000), took: 1 * ms, status: 200, backend: foNewIP},          // after end: not counted
		{sent: at(3450), took: 10 * ms, status: 200, backend: foOldIP, err: ""}, // answered by old after the change
	}
	got := summarizeRun(recs, w, foNewIP)
	if got.Requests != 8 || got.Failed != 2 {
		t.Errorf("requests, failed = %d, %d; want 8, 2", got.Requests, got.Failed)
	}
	if k := kindsText(got.Kinds); k != "1 × 504, 1 × timeout (5s)" {
		t.Errorf("kinds = %q", k)
	}
	if got.FailFrom != 10*ms || got.FailTo != 20*ms {
		t.Errorf("failures sent %v to %v after the change; want 10ms to 20ms", got.FailFrom, got.FailTo)
	}
	if got.P99Before != 4*ms {
		t.Errorf("p99 before = %v; want 4ms", got.P99Before)
	}
	if got.P99After != 5000*ms || got.MaxAfter != 5000*ms || got.Slow != 3 {
		t.Errorf("p99 after, max, slow = %v, %v, %d; want 5s, 5s, 3", got.P99After, got.MaxAfter, got.Slow)
	}
	// First answer from new: the rescued request, done at 3405+1500 ms.
	if want := 1505 * ms; !got.OnNew || got.FirstOnNew != want {
		t.Errorf("first on new = %v; want %v", got.FirstOnNew, want)
	}
	// Last answer not from new: the timeout, done at 3420+5000 ms.
	if want := 5020 * ms; got.Settled != want {
		t.Errorf("settled = %v; want %v", got.Settled, want)
	}

	none := summarizeRun(recs[:3], w, foNewIP)
	if none.OnNew || none.Failed != 0 || none.Kinds != nil || none.Settled != 0 {
		t.Errorf("summary without a change = %+v; want never on new, no failure", none)
	}
}

func TestLogWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webtier.log")
	log := `{"level":"info","ts":"2026-11-23T15:48:00.000Z","msg":"webtier started"}
{"level":"info","ts":"2026-11-23T15:48:03.039Z","logger":"resolver","msg":"dns answer changed","name":"app.bench.test","old":["127.0.0.2"],"new":["127.0.0.3"],"ttl":1}
not json
{"level":"warn","ts":"2026-11-23T15:48:04.040Z","logger":"proxy.upstream","msg":"requests re-sent from a failed address","upstream":"app","address":"127.0.0.2:80","requests":20}
{"level":"info","ts":"2026-11-23T15:49:00.000Z","msg":"webtier stopped"}
`
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := time.Date(2026, 11, 23, 15, 48, 3, 0, time.UTC)
	got := logWindow(path, ref.Add(-time.Second), ref.Add(10*time.Second), ref, 10)
	if len(got) != 2 || !strings.HasPrefix(got[0], "+0.039s {") || !strings.HasPrefix(got[1], "+1.040s {") {
		t.Fatalf("logWindow = %q", got)
	}
	if c := compactLogLine(got[1]); c != ` +1.040s  warn  requests re-sent from a failed address address="127.0.0.2:80" requests=20` {
		t.Errorf("compactLogLine = %q", c)
	}
	if got := logWindow(path, ref.Add(-time.Second), ref.Add(10*time.Second), ref, 1); len(got) != 2 || !strings.HasPrefix(got[1], "...") {
		t.Errorf("logWindow with n=1 = %q; want one line and a note", got)
	}
}

func TestFailoverConfigsFollowDNS(t *testing.T) {
	fx := &foEnv{webtierBin: "/bin/webtier"}
	for _, tg := range foTargets {
		t.Run(tg.name, func(t *testing.T) {
			dir := t.TempDir()
			argv, _, err := tg.write(fx, dir, 8080, 9090)
			if err != nil || len(argv) == 0 {
				t.Fatalf("write = %v, %v", argv, err)
			}
			var conf []byte
			for _, name := range []string{"webtier.yaml", "haproxy.cfg", "nginx.conf", "httpd.conf", "Caddyfile"} {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					conf = b
				}
			}
			if !strings.Contains(string(conf), foName) || !strings.Contains(string(conf), "9090") {
				t.Errorf("config does not name %s port 9090:\n%s", foName, conf)
			}
		})
	}
	if _, _, err := writeFoHttpd(&foEnv{resolvConf: "no mount"}, t.TempDir(), 1, 2); err == nil {
		t.Error("httpd config written although glibc cannot reach the test DNS")
	}
}
