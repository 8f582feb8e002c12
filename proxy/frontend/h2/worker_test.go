package h2

import (
	"testing"
	"time"
)

// TestNextStreamIdle: a handler goroutine's timer, armed once, ends the
// goroutine only after workerIdle without a stream, counted from the end
// of its last stream: a timer that fires early (it was armed before the
// last stream) is re-armed for the rest.
func TestNextStreamIdle(t *testing.T) {
	for _, tc := range []struct {
		name string
		idle time.Duration // how long ago the last stream ended
	}{
		{"idle for the whole time", workerIdle},
		{"timer fired before the time was up", workerIdle - 20*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timer := time.NewTimer(0) // fires at once, as an old timer would
			defer timer.Stop()
			idleSince := time.Now().Add(-tc.idle)
			if st := nextStream(timer, idleSince); st != nil {
				t.Fatalf("nextStream returned a stream; want nil (nothing was queued)")
			}
			if waited := time.Since(idleSince); waited < workerIdle {
				t.Errorf("the goroutine would end after %v idle; want at least workerIdle (%v)", waited, workerIdle)
			}
		})
	}
}
