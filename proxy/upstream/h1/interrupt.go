package h1

import (
	"fmt"
	"net/http"

	"github.com/webtier/webtier/proxy/internal/backendconn"
	"github.com/webtier/webtier/proxy/internal/interrupt"
)

// RoundTripInterruptible is RoundTrip with in (if not nil) as a second
// way, besides req's context, to end the request: the caller's Fire
// interrupts the connection the request is on (package interrupt says
// why this is cheaper than a context of the request's own).
func (t *Transport) RoundTripInterruptible(req *http.Request, in *interrupt.Interrupt) (*http.Response, error) {
	ex := &exchange{t: t, req: req, intr: in, rht: t.o.ResponseHeaderTimeout}
	if t.o.RouteTimeouts {
		ex.rht, ex.routeTimeout = backendconn.HeaderTimeout(req.Context(), ex.rht)
	}
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
