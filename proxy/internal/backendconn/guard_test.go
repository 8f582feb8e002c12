package backendconn

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func pipe(t *testing.T) (*Guard, net.Conn) {
	t.Helper()
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	g := &Guard{}
	g.Init(a)
	return g, a
}

// Once interrupted, a connection stays broken: no later deadline change
// goes through (it would undo the interruption), a blocked read wakes,
// and Release says not to pool it.
func TestGuard_interruptIsFinal(t *testing.T) {
	for _, tc := range []struct {
		name string
		stop func(*Guard)
	}{
		{"Interrupt", func(g *Guard) { g.Interrupt() }},
		{"InterruptFor its owner", func(g *Guard) { g.SetOwner(1); g.InterruptFor(1) }},
		{"BreakWith", func(g *Guard) { g.BreakWith(func() {}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, c := pipe(t)
			read := make(chan error, 1)
			go func() {
				_, err := c.Read(make([]byte, 1))
				read <- err
			}()
			tc.stop(g)
			if err := <-read; !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("blocked read ended with %v; want a deadline error", err)
			}
			for name, ok := range map[string]bool{
				"SetDeadline":     g.SetDeadline(time.Time{}),
				"SetReadDeadline": g.SetReadDeadline(time.Time{}),
				"AwaitHeaders":    g.AwaitHeaders(time.Now().Add(time.Hour)),
				"GotHeaders":      g.GotHeaders(2),
				"Release":         g.Release(),
			} {
				if ok {
					t.Errorf("%s went through on an interrupted connection", name)
				}
			}
		})
	}
}

// InterruptFor leaves a connection alone once another owner (or none)
// has it: a response body closed late must not break the connection of
// the next request.
func TestGuard_interruptForOtherOwner(t *testing.T) {
	g, _ := pipe(t)
	g.SetOwner(1)
	g.SetOwner(2)
	g.InterruptFor(1)
	if !g.SetReadDeadline(time.Time{}) || !g.Release() {
		t.Error("InterruptFor an earlier owner broke the connection")
	}
}
