package backendconn

import (
	"context"
	"time"
)

// A route's `timeout` takes the place of its upstream's
// response_header_timeout for the route's requests, longer or shorter.
// The front puts it in the request's context (WithHeaderTimeout); a
// client whose upstream has such routes (the clients' RouteTimeouts
// option) looks for it when a request starts, so that a request of an
// upstream without them never pays for the lookup.

// headerTimeoutCtx is a request context carrying a route's timeout. It
// ends when its parent does: the timeout is the client's deadline on the
// connection, not the context's, so that it stops counting once the head
// has come and never cuts off a body.
type headerTimeoutCtx struct {
	context.Context
	d time.Duration
}

type headerTimeoutKey struct{}

func (c *headerTimeoutCtx) Value(key any) any {
	if key == (headerTimeoutKey{}) {
		return c
	}
	return c.Context.Value(key)
}

// WithHeaderTimeout returns ctx carrying d as the request's response
// header timeout in place of the upstream's.
func WithHeaderTimeout(ctx context.Context, d time.Duration) context.Context {
	return &headerTimeoutCtx{Context: ctx, d: d}
}

// HeaderTimeout returns the route's timeout ctx carries (route true), or
// def.
func HeaderTimeout(ctx context.Context, def time.Duration) (d time.Duration, route bool) {
	if c, ok := ctx.Value(headerTimeoutKey{}).(*headerTimeoutCtx); ok {
		return c.d, true
	}
	return def, false
}
