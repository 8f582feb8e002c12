package proxy

import (
	"crypto/rand"
	"encoding/binary"
	"net/http"
	"sync/atomic"
	"unsafe"
)

// DefaultRequestIDHeader is the request header that carries the request id
// to the backend (and from a trusted proxy in front).
const DefaultRequestIDHeader = "X-Request-Id"

// RequestIDOptions configure the request id: taken from a trusted proxy's
// header or made here (httpd's mod_unique_id), passed to the backend, and
// written in the access log and in warnings about the request.
type RequestIDOptions struct {
	// Header carries the id, in canonical form. "": no request id.
	Header string
	// AJPAttribute, when set, also sends the id to AJP backends as a
	// request attribute of this name (request.getAttribute). Tomcat
	// answers 403 unless its AJP connector's
	// allowedRequestAttributesPattern matches the name. "": header only.
	AJPAttribute string
}

// requestIDLen is the length of a generated id: 13 base32 digits of a
// per-process random prefix, then 13 of a counter.
const requestIDLen = 26

// idPrefix is the random half of every id this process makes, and
// idCounter the other half: unique without a lock or a random read per
// request.
var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

const base32Digits = "0123456789abcdefghijklmnopqrstuv"

func newIDPrefix() [13]byte {
	var b [8]byte
	rand.Read(b[:]) //nolint:errcheck // crypto/rand.Read never fails (Go 1.24)
	var p [13]byte
	putBase32(p[:], binary.BigEndian.Uint64(b[:]))
	return p
}

// putBase32 writes v as 13 base32 digits (65 bits), most significant first.
func putBase32(dst []byte, v uint64) {
	for i := 12; i >= 0; i-- {
		dst[i] = base32Digits[v&31]
		v >>= 5
	}
}

// newRequestID writes a fresh id into buf.
func newRequestID(buf *[requestIDLen]byte) {
	copy(buf[:13], idPrefix[:])
	putBase32(buf[13:], idCounter.Add(1))
}

// validRequestID reports whether v, from a trusted proxy, can be kept: 1 to
// 200 visible ASCII characters, so that it cannot break a log line or a
// header.
func validRequestID(v string) bool {
	if len(v) == 0 || len(v) > 200 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if v[i] <= ' ' || v[i] >= 0x7f {
			return false
		}
	}
	return true
}

// trustedRequestID returns the id a trusted peer sent, or "".
func (f *front) trustedRequestID(r *http.Request) string {
	v := r.Header[f.reqID.Header]
	if len(v) != 1 || !validRequestID(v[0]) || !f.trusts(peerHost(r.RemoteAddr)) {
		return ""
	}
	return v[0]
}

// requestID returns r's id: the trusted peer's or a new one. A new one is
// written into buf, which must never change afterwards: the string shares
// its memory (in a per-request struct that is never reused: forward's
// state or the exchange), so that an id costs no allocation of its own.
func (f *front) requestID(r *http.Request, buf *[requestIDLen]byte) string {
	if id := f.trustedRequestID(r); id != "" {
		return id
	}
	newRequestID(buf)
	return unsafe.String(&buf[0], requestIDLen)
}

// requestIDOf returns the id forward gave the outbound request r, for log
// lines about it, or "".
func (f *front) requestIDOf(r *http.Request) string {
	if f.reqID.Header == "" {
		return ""
	}
	if v := r.Header[f.reqID.Header]; len(v) > 0 {
		return v[0]
	}
	return ""
}
