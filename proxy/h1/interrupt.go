package h1

import (
	"fmt"
	"net/http"
	"sync"
)

// Interrupt ends one request from another goroutine, as cancelling its
// context would, for a caller that owns the request's lifetime anyway (the
// upstream pool's rescue of requests stuck on a failed address). It lives
// in the caller's own per-request struct: no allocation, and no
// registration with the request's context, which context.WithCancelCause
// and context.AfterFunc cost on every request (a child map in the parent,
// an AfterFunc record; 8% of the CPU of an HTTP/2 request in pprof).
//
// The zero value is ready; an Interrupt serves one RoundTripInterruptible.
type Interrupt struct {
	mu    sync.Mutex
	cause error
	pc    *persistConn // the connection the request is on, while watched
}

// Fire ends the request with cause (the first cause wins): a blocked read
// or write returns, and RoundTripInterruptible reports an error wrapping
// cause. After the response head, it breaks the response body.
func (in *Interrupt) Fire(cause error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.cause != nil {
		return
	}
	in.cause = cause
	if in.pc != nil {
		in.pc.interrupt()
	}
}

// Cause returns what Fire was given, or nil.
func (in *Interrupt) Cause() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.cause
}

// attach watches pc for the request, interrupting it at once if Fire came
// first.
func (in *Interrupt) attach(pc *persistConn) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.pc = pc
	if in.cause != nil {
		pc.interrupt()
	}
}

// detach stops watching; false if Fire came (pc is then broken).
func (in *Interrupt) detach() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.pc = nil
	return in.cause == nil
}

// RoundTripInterruptible is RoundTrip with in (if not nil) as a second
// way, besides req's context, to end the request.
func (t *Transport) RoundTripInterruptible(req *http.Request, in *Interrupt) (*http.Response, error) {
	ex := &exchange{t: t, req: req, intr: in}
	if err := ex.init(); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return ex.run()
}

// ended reports whether the request's context ended or its Interrupt
// fired.
func (ex *exchange) ended() bool {
	return ex.ctx.Err() != nil || ex.intr != nil && ex.intr.Cause() != nil
}

// endedError is the error of an ended request: the context's cause, or
// the Interrupt's.
func (ex *exchange) endedError() error {
	if ex.ctx.Err() != nil || ex.intr == nil {
		return canceledError(ex.ctx)
	}
	return fmt.Errorf("h1: request interrupted: %w", ex.intr.Cause())
}
