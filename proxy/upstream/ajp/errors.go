package ajp

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is: the transport wraps them in
// an *Error that carries the operator-facing explanation.
var (
	// ErrPacketTooLarge is returned by the reader when a packet header
	// announces more bytes than the configured maximum packet size. The
	// check happens before any buffer is allocated for the payload.
	ErrPacketTooLarge = errors.New("ajp: packet too large")

	// ErrHeadersTooLarge is returned when a Forward Request (request line,
	// headers and attributes) does not fit one AJP packet. AJP13 has no
	// continuation packet for headers, so the only remedies are a larger
	// packet size on both sides or a smaller request.
	ErrHeadersTooLarge = errors.New("ajp: request headers too large for one AJP packet")

	// ErrUpgrade is returned for requests that ask for a protocol upgrade
	// (Connection: upgrade, WebSocket). AJP13 cannot carry them.
	ErrUpgrade = errors.New("ajp: WebSocket/upgrade requests cannot go over AJP; route them to an http:// upstream")

	// ErrBadMagic is returned when a packet does not start with the
	// two-byte signature of the direction being read ("AB" from the
	// container, 0x12 0x34 to it).
	ErrBadMagic = errors.New("ajp: bad packet signature")

	// ErrProtocol is returned for a malformed packet or a packet that is
	// not allowed at this point of the exchange.
	ErrProtocol = errors.New("ajp: protocol error")

	// ErrStringTooLong is returned when a string does not fit the 16-bit
	// length of the AJP string encoding (0xFFFF is reserved for null).
	ErrStringTooLong = errors.New("ajp: string too long")

	// errBodyClosed is returned by reads after the response body was closed.
	errBodyClosed = errors.New("ajp: read on closed response body")
)

// Kinds of *Error. The same strings are passed to Options.OnError, so they
// double as bounded metric label values.
const (
	// KindDial: the TCP connect to the backend failed or timed out
	// (the upstream's connect_timeout). Nothing was sent; retrying elsewhere is safe.
	KindDial = "dial"
	// KindCPing: the backend accepted the connection but did not answer
	// CPING with CPONG within Options.CPingTimeout. A Tomcat whose AJP
	// connector failed to start keeps its port bound and behaves this way.
	KindCPing = "cping"
	// KindSecret: Tomcat answered the first request of a connection with
	// a short 403 and closed the connection (END_RESPONSE reuse=0): the
	// secret is wrong or missing, or Tomcat refused a request attribute.
	// RoundTrip returns this error instead of Tomcat's 403 page.
	KindSecret = "secret"
	// KindAttributeRefused is reserved for a 403 that can only be an
	// attribute refusal. The transport sends only attributes Tomcat accepts
	// without allowedRequestAttributesPattern, so today every such 403 is
	// reported as KindSecret (whose message names both causes).
	KindAttributeRefused = "attribute_refused"
	// KindPacketSize: the packet sizes of the two sides differ (a packet
	// from Tomcat above ajp.packet_size, or Tomcat closed/refused a request
	// packet larger than its packetSize; RoundTrip returns this error
	// instead of Tomcat's 400 or 500 page).
	KindPacketSize = "packet_size"
	// KindHeadersTooLarge: this request's headers do not fit one packet.
	KindHeadersTooLarge = "headers_too_large"
	// KindReset: the backend closed or reset the connection in the middle
	// of an exchange.
	KindReset = "reset"
	// KindTimeout: no response headers within the upstream's
	// response_header_timeout (Options.ResponseHeaderTimeout), or within
	// the route's timeout (Options.RouteTimeouts).
	KindTimeout = "timeout"
	// KindProtocol: the backend sent a malformed or unexpected packet.
	KindProtocol = "protocol"
	// KindRequestBody: reading the client's request body failed, or it was
	// shorter than its Content-Length. Not the backend's fault.
	KindRequestBody = "request_body"
	// KindCanceled: the request's context ended. Not reported to OnError.
	KindCanceled = "canceled"
)

// Error is the error type of the transport. Kind says what went wrong in
// terms an operator can act on; the message names the configuration key to
// change where there is one. Error never contains the secret.
type Error struct {
	Kind string // one of the Kind constants
	Err  error  // underlying cause; may be nil
	// Unsent holds request body bytes the client read from the request
	// but never sent to Tomcat (a KindDial or KindCPing error after a
	// first try that wrote nothing): the caller sends them, then the rest
	// of the body, with the request to another address.
	Unsent []byte

	msg string
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.msg
	}
	return e.msg + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func newError(kind string, err error, format string, args ...any) *Error {
	return &Error{Kind: kind, Err: err, msg: "ajp: " + fmt.Sprintf(format, args...)}
}

// headersTooLarge builds the error for a Forward Request of size bytes.
func headersTooLarge(size, max int) *Error {
	return newError(KindHeadersTooLarge, ErrHeadersTooLarge,
		"request needs a %d-byte Forward Request packet but the AJP packet size is %d "+
			"(raise ajp.packet_size, and packetSize on Tomcat's AJP Connector to the same value, "+
			"max 65536; or send smaller headers/cookies)", size, max)
}
