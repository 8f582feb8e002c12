// Package interrupt lets the owner of a request end it from another
// goroutine, as cancelling the request's context would, without giving the
// request a context of its own.
//
// The upstream pool rescues requests stuck on an address that was ejected
// while they waited for an answer. With a context per try that costs, on
// every request, context.WithCancelCause (a child registered in its
// parent), http.Request.WithContext (a copy of the request) and the
// backend client's context.AfterFunc (another registration): 8% of the CPU
// of an HTTP/2 request, and 5% of an AJP one, in pprof. An Interrupt lives
// in the caller's per-request struct instead, and the backend clients (h1
// and AJP) attach their connection to it for as long as they use it.
package interrupt

import "sync"

// Target is what an Interrupt ends: a backend connection whose Interrupt
// wakes any blocked read or write and keeps the connection from being
// reused.
type Target interface {
	Interrupt()
}

// Interrupt ends one request. The zero value is ready; an Interrupt serves
// one request at a time.
type Interrupt struct {
	mu     sync.Mutex
	cause  error
	target Target // the connection the request is on, while attached
}

// Fire ends the request with cause (the first cause wins): the attached
// connection, or the next one attached, is interrupted.
func (in *Interrupt) Fire(cause error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cause != nil {
		return
	}
	in.cause = cause
	if in.target != nil {
		in.target.Interrupt()
	}
}

// Cause returns what Fire was given, or nil.
func (in *Interrupt) Cause() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cause
}

// Attach watches t for the request, interrupting it at once if Fire came
// first.
func (in *Interrupt) Attach(t Target) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.target = t
	if in.cause != nil {
		t.Interrupt()
	}
}

// Detach stops watching; false if Fire came (the connection is then
// interrupted, or was).
func (in *Interrupt) Detach() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.target = nil
	return in.cause == nil
}

// Staller is a Target that can tell whether its peer stopped
// acknowledging what was sent on it (see Unacknowledged).
type Staller interface {
	Stalled() bool
}

// Stalled reports whether the attached connection is a Staller whose peer
// stopped acknowledging the request; false once Fire came, or with no
// connection attached.
func (in *Interrupt) Stalled() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	s, ok := in.target.(Staller)
	return ok && in.cause == nil && s.Stalled()
}
