package main

// The client side of the failover scenario: a bounded Go load loop (every
// worker owns one keep-alive connection and sends a GET every
// foInterval) that records every request, and the pure summary of one run.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// foClients is the number of load workers, each with one keep-alive
	// connection to the proxy.
	foClients = 20
	// foInterval is the period of each worker's GETs (a request that takes
	// longer delays that worker's next one: ticks are dropped, not queued).
	foInterval = 10 * time.Millisecond
	// foTimeout bounds one request, as wrk's --timeout 5s in the other
	// scenarios; a request that hits it counts as failed.
	foTimeout = 5 * time.Second
	// foMaxPerWorker bounds the requests of one worker in one run (at
	// foInterval, 60 s of load).
	foMaxPerWorker = 6000
)

// foRec is what the client saw of one request.
type foRec struct {
	sent    time.Time
	took    time.Duration
	status  int
	backend string // X-Backend of the answer
	err     string // transport error kind ("" when a response came)
}

func (r foRec) ok() bool { return r.err == "" && r.status == http.StatusOK }

// done is when the client had the whole answer (or gave up).
func (r foRec) done() time.Time { return r.sent.Add(r.took) }

// failure is the kind of a failed request, for the errors column.
func (r foRec) failure() string {
	if r.err != "" {
		return r.err
	}
	return fmt.Sprint(r.status)
}

// foLoad is one run's load: foClients workers against one URL until stop.
type foLoad struct {
	url  string
	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards recs and streak
	recs   []foRec
	streak int // consecutive successful answers from streakFrom
	// streakFrom is the backend the warm-up waits for (the record's
	// current address).
	streakFrom string
}

// startLoad starts the workers; they stop at stop(), at ctx's end, or after
// foMaxPerWorker requests each.
func startLoad(ctx context.Context, url, streakFrom string) *foLoad {
	l := &foLoad{url: url, stop: make(chan struct{}), streakFrom: streakFrom}
	for range foClients {
		l.wg.Add(1)
		go l.worker(ctx)
	}
	return l
}

func (l *foLoad) worker(ctx context.Context) {
	defer l.wg.Done()
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: foTimeout}).DialContext,
		MaxIdleConns:        1,
		MaxIdleConnsPerHost: 1,
		MaxConnsPerHost:     1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: foTimeout}
	tick := time.NewTicker(foInterval)
	defer tick.Stop()
	for range foMaxPerWorker {
		select {
		case <-l.stop:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l.add(doGet(cl, l.url))
	}
}

// doGet sends one GET and reads the whole answer.
func doGet(cl *http.Client, url string) foRec {
	r := foRec{sent: time.Now()}
	resp, err := cl.Get(url)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		r.status, r.backend = resp.StatusCode, resp.Header.Get("X-Backend")
	}
	r.took = time.Since(r.sent)
	if err != nil {
		r.err = errKind(err)
	}
	return r
}

// errKind names a client-side failure briefly.
func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timeout (%s)", foTimeout)
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed (EOF)"
	}
	return "transport error"
}

func (l *foLoad) add(r foRec) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	if r.ok() && r.backend == l.streakFrom {
		l.streak++
	} else {
		l.streak = 0
	}
}

// currentStreak is the number of consecutive successful answers from
// streakFrom, the last one included.
func (l *foLoad) currentStreak() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.streak
}

// finish stops the workers (no new request) and waits for the requests in
// flight, which foTimeout bounds; it returns every record.
func (l *foLoad) finish() []foRec {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recs
}

// foWindow are the instants of one run.
type foWindow struct {
	start   time.Time // measuring starts (the proxy answers from old)
	update  time.Time // nsupdate started
	changed time.Time // nsupdate returned: BIND serves the new address
	vanish  time.Time // old backend black-holed
	end     time.Time // the last request counted was sent before this
}

// foRun is one measured run of one proxy, as the child reports it.
type foRun struct {
	Round int    `json:"round"`
	Proxy string `json:"proxy"`
	// Err, when set, says why the run has no result.
	Err string `json:"err,omitempty"`

	Requests int            `json:"requests"`
	Failed   int            `json:"failed"`
	Kinds    map[string]int `json:"kinds,omitempty"` // failure kind -> count
	// FailFrom and FailTo are the send times of the first and last
	// failed request, relative to changed.
	FailFrom time.Duration `json:"fail_from,omitempty"`
	FailTo   time.Duration `json:"fail_to,omitempty"`

	P99Before time.Duration `json:"p99_before"` // requests sent before the update
	P99After  time.Duration `json:"p99_after"`  // sent at or after the update
	MaxAfter  time.Duration `json:"max_after"`
	Slow      int           `json:"slow"` // sent after the update and slower than 1 s (failed ones included)

	// FirstOnNew is when the first answer from the new backend arrived,
	// relative to changed (negative: before nsupdate returned, BIND
	// serves the change from some point inside it); OnNew is false when
	// none came.
	FirstOnNew time.Duration `json:"first_on_new"`
	OnNew      bool          `json:"on_new"`
	// Settled is when the last answer that did not come from the new
	// backend (a failure or an answer from the old one) arrived, relative
	// to changed; 0 when every answer after the change came from new.
	Settled time.Duration `json:"settled"`
	// Update is how long nsupdate took (BIND serves the change at some
	// point inside it).
	Update time.Duration `json:"update"`
	// Served is when a query first saw BIND serve the new address,
	// relative to changed (negative: inside nsupdate's run); Gap is how
	// long after that the old backend vanished. A proxy that re-resolved
	// within Gap moved before the black hole.
	Served time.Duration `json:"served"`
	Gap    time.Duration `json:"gap"`

	// Log holds the proxy's log lines of the run (webtier only), each
	// prefixed with its time relative to changed.
	Log []string `json:"log,omitempty"`
}

// slowAfter is the latency counted in foRun.Slow.
const slowAfter = time.Second

// summarizeRun reduces the records of one run: those sent in [w.start,
// w.end) count; before and after are split at w.update; newBackend is the
// X-Backend of the address the record moved to.
func summarizeRun(recs []foRec, w foWindow, newBackend string) foRun {
	r := foRun{Kinds: map[string]int{}}
	var before, after []time.Duration
	first, last := time.Time{}, time.Time{}
	for _, rc := range recs {
		if rc.sent.Before(w.start) || !rc.sent.Before(w.end) {
			continue
		}
		r.Requests++
		if rc.sent.Before(w.update) {
			before = append(before, rc.took)
		} else {
			after = append(after, rc.took)
			r.MaxAfter = max(r.MaxAfter, rc.took)
			if rc.took > slowAfter {
				r.Slow++
			}
		}
		if !rc.ok() {
			r.Failed++
			r.Kinds[rc.failure()]++
			if first.IsZero() || rc.sent.Before(first) {
				first = rc.sent
			}
			if rc.sent.After(last) {
				last = rc.sent
			}
		}
		done := rc.done()
		if rc.ok() && rc.backend == newBackend {
			if d := done.Sub(w.changed); !r.OnNew || d < r.FirstOnNew {
				r.FirstOnNew, r.OnNew = d, true
			}
		} else if !rc.sent.Before(w.update) || done.After(w.changed) {
			r.Settled = max(r.Settled, done.Sub(w.changed))
		}
	}
	if r.Failed > 0 {
		r.FailFrom, r.FailTo = first.Sub(w.changed), last.Sub(w.changed)
	}
	r.P99Before = percentile(before, 99)
	r.P99After = percentile(after, 99)
	if len(r.Kinds) == 0 {
		r.Kinds = nil
	}
	return r
}

// kindsText renders failure kinds, most frequent first: "12 × 502, 3 × reset".
func kindsText(kinds map[string]int) string {
	type kv struct {
		k string
		n int
	}
	var s []kv
	for k, n := range kinds {
		s = append(s, kv{k, n})
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].n != s[j].n {
			return s[i].n > s[j].n
		}
		return s[i].k < s[j].k
	})
	var parts []string
	for _, e := range s {
		parts = append(parts, fmt.Sprintf("%d × %s", e.n, e.k))
	}
	return strings.Join(parts, ", ")
}
