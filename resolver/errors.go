package resolver

import (
	"context"
	"errors"
	"net"
	"os"
)

// Sentinel errors. An *Error carries one of them (or a network error) as its
// cause, so callers can use errors.Is without looking at the text.
var (
	// ErrClosed is the cause when the Resolver was closed before an answer
	// could be had.
	ErrClosed = errors.New("resolver: closed")
	// ErrNoSuchHost is the cause of an NXDOMAIN answer.
	ErrNoSuchHost = errors.New("resolver: no such host")
	// ErrNoAddress is the cause of a NOERROR answer without address records
	// of the asked family (NODATA).
	ErrNoAddress = errors.New("resolver: no address records")
	// ErrServerFailure is the cause when every nameserver answered with a
	// failure rcode (SERVFAIL, REFUSED, FORMERR, ...); Error.Rcode says
	// which one the last server sent.
	ErrServerFailure = errors.New("resolver: server failure")
	// ErrCNAMEChain is the cause when a CNAME chain is longer than
	// maxCNAMEHops or loops.
	ErrCNAMEChain = errors.New("resolver: CNAME chain too long")
	// ErrInvalidName is the cause when a name is not a valid domain name.
	ErrInvalidName = errors.New("resolver: invalid name")
	// ErrBadResponse is the cause when a reply over TCP does not match the
	// query (over UDP such replies are skipped as strays).
	ErrBadResponse = errors.New("resolver: reply does not match query")
)

// Error describes a failed resolution, like *net.DNSError. Every error that
// Lookup and Resolve return is an *Error.
type Error struct {
	// Name is the name as given to Lookup, Resolve or Subscribe.
	Name string
	// Server is the last nameserver ("ip:port") that was asked, or "" when
	// no query was sent.
	Server string
	// Rcode is the DNS response code of the last reply, or -1 when no reply
	// arrived (timeout, network error, closed resolver).
	Rcode int
	// IsTimeout is true when the last query timed out.
	IsTimeout bool
	// IsNotFound is true for NXDOMAIN and for a NOERROR answer without
	// addresses (NODATA).
	IsNotFound bool
	// IsTemporary is true when asking again later may succeed: timeouts,
	// network errors and failure rcodes.
	IsTemporary bool
	// Err is the cause: one of the sentinel errors above, a context error or
	// a network error.
	Err error
}

// Error reads like net.DNSError: "lookup NAME on SERVER: CAUSE".
func (e *Error) Error() string {
	s := "lookup " + e.Name
	if e.Server != "" {
		s += " on " + e.Server
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause, so errors.Is(err, ErrNoSuchHost) and
// errors.Is(err, context.Canceled) work.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the error is a timeout, as net.Error asks.
func (e *Error) Timeout() bool { return e.IsTimeout }

// Temporary reports whether asking again may succeed, as net.Error asks.
func (e *Error) Temporary() bool { return e.IsTimeout || e.IsTemporary }

var _ net.Error = (*Error)(nil)

// waitError is the *Error for a caller whose own ctx ended while it waited.
func waitError(name string, err error) *Error {
	return &Error{
		Name:      name,
		Rcode:     -1,
		IsTimeout: errors.Is(err, context.DeadlineExceeded),
		Err:       err,
	}
}

// isTimeout reports whether a network error is a deadline expiry.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
