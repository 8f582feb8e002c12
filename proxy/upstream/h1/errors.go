package h1

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrInvalidRequest is wrapped by the error RoundTrip returns for a
// request it will not write: an invalid method, Host, request target,
// header or trailer name (not a token) or value (CR, LF, NUL or another
// control character), or a ContentLength without a Body. None of such a
// request reaches the backend. Test for it with errors.Is.
var ErrInvalidRequest = errors.New("h1: invalid request")

// ErrRequestBody is matched (errors.Is) by the error RoundTrip returns when
// the request body could not be read from its source: a read error (for a
// proxy, the client's malformed chunked encoding, an upload the client cut
// off or reset, a body read timeout), a body shorter than its
// ContentLength, a source that makes no progress, or an invalid trailer.
// The backend is not at fault; the error's text is the cause's.
var ErrRequestBody = errors.New("h1: request body not readable")

// requestBodyError is a failure of the request body's source.
type requestBodyError struct{ err error }

func (e *requestBodyError) Error() string   { return e.err.Error() }
func (e *requestBodyError) Unwrap() []error { return []error{ErrRequestBody, e.err} }

var (
	// errBodyClosed is returned by reads after the response body was closed.
	errBodyClosed = errors.New("h1: read on closed response body")

	// errHeadersTooLarge: the response head exceeds maxHeaderBytes. It
	// bounds what a broken backend can make the proxy buffer.
	errHeadersTooLarge = fmt.Errorf("h1: response headers exceed %d bytes", maxHeaderBytes)

	// errTooMany1xx: more than max1xx informational responses in a row.
	errTooMany1xx = fmt.Errorf("h1: more than %d 1xx informational responses", max1xx)

	// errWriterAborted is the result of a body writer that was stopped
	// before it read anything.
	errWriterAborted = errors.New("h1: request body not sent")

	// errInterrupted: the connection was interrupted (by the request's
	// context, or by the request body failing) before the next step.
	errInterrupted = errors.New("h1: connection interrupted")
)

// timeoutError is returned when no response head arrived within
// Options.ResponseHeaderTimeout or the route's timeout. It is a net.Error
// whose Timeout reports true, which the proxy answers with 504, like
// net/http's error for the same case.
type timeoutError struct {
	d     time.Duration
	route bool  // d is the route's timeout (Options.RouteTimeouts)
	err   error // the read error, os.ErrDeadlineExceeded underneath
}

func (e *timeoutError) Error() string {
	if e.route {
		return fmt.Sprintf("h1: no response headers within %v (the route's timeout)", e.d)
	}
	return fmt.Sprintf("h1: no response headers within %v (the upstream's response_header_timeout)", e.d)
}
func (e *timeoutError) Timeout() bool   { return true }
func (e *timeoutError) Temporary() bool { return true }
func (e *timeoutError) Unwrap() error   { return e.err }

// canceledError is the error of a request whose context ended: it wraps
// the context's cause (context.Canceled, context.DeadlineExceeded, or what
// the canceller passed to a CancelCauseFunc), so that callers can tell who
// stopped the request.
func canceledError(ctx context.Context) error {
	return fmt.Errorf("h1: request canceled: %w", context.Cause(ctx))
}
