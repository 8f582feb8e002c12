package interrupt

import (
	"errors"
	"testing"
)

type target struct{ n int }

func (t *target) Interrupt() { t.n++ }

func TestInterrupt(t *testing.T) {
	first, second := errors.New("first"), errors.New("second")
	tests := []struct {
		name       string
		run        func(in *Interrupt, t *target) bool // returns Detach's answer
		interrupts int
		cause      error
		detach     bool
	}{
		{"never fired", func(in *Interrupt, t *target) bool { in.Attach(t); return in.Detach() }, 0, nil, true},
		{"fired while attached", func(in *Interrupt, t *target) bool {
			in.Attach(t)
			in.Fire(first)
			return in.Detach()
		}, 1, first, false},
		{"fired before attach", func(in *Interrupt, t *target) bool {
			in.Fire(first)
			in.Attach(t)
			return in.Detach()
		}, 1, first, false},
		{"fired after detach", func(in *Interrupt, t *target) bool {
			in.Attach(t)
			ok := in.Detach()
			in.Fire(first)
			return ok
		}, 0, first, true},
		{"first cause wins", func(in *Interrupt, t *target) bool {
			in.Attach(t)
			in.Fire(first)
			in.Fire(second)
			return in.Detach()
		}, 1, first, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in Interrupt
			var tg target
			if got := tc.run(&in, &tg); got != tc.detach {
				t.Errorf("Detach = %v; want %v", got, tc.detach)
			}
			if tg.n != tc.interrupts {
				t.Errorf("target interrupted %d times; want %d", tg.n, tc.interrupts)
			}
			if in.Cause() != tc.cause {
				t.Errorf("Cause = %v; want %v", in.Cause(), tc.cause)
			}
		})
	}
}
