package resolver

import (
	"fmt"
	"testing"
	"time"
)

// The ring of recent changes keeps the newest changeRingSize, newest
// first, however many changes come: memory stays bounded.
func TestChangesBounded(t *testing.T) {
	for _, n := range []int{0, 1, changeRingSize - 1, changeRingSize, changeRingSize + 1, 3*changeRingSize + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := &Resolver{}
			t0 := time.Unix(1e9, 0)
			for i := range n {
				r.changes.add(Change{At: t0.Add(time.Duration(i) * time.Second), Name: fmt.Sprint(i)})
			}
			got := r.Changes()
			if want := min(n, changeRingSize); len(got) != want {
				t.Fatalf("%d changes kept; want %d", len(got), want)
			}
			for i, c := range got {
				if want := fmt.Sprint(n - 1 - i); c.Name != want {
					t.Fatalf("change %d is %s; want %s (newest first)", i, c.Name, want)
				}
			}
		})
	}
}
