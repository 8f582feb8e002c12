// Package httpdate gives the current time in the format of the HTTP Date
// header, formatted at most once a second and shared by every response
// written in that second: the HTTP/1 and HTTP/2 servers write one per
// response, and time.Time.Format per response showed in profiles.
package httpdate

import (
	"net/http"
	"sync/atomic"
	"time"
)

type text struct {
	sec int64
	s   string
	b   []byte // s's bytes; never modified
}

var cached atomic.Pointer[text]

func current() *text {
	now := time.Now().Unix()
	if t := cached.Load(); t != nil && t.sec == now {
		return t
	}
	b := time.Unix(now, 0).UTC().AppendFormat(nil, http.TimeFormat)
	t := &text{sec: now, s: string(b), b: b}
	cached.Store(t)
	return t
}

// String returns the current time as "Mon, 02 Jan 2006 15:04:05 GMT".
func String() string { return current().s }

// Bytes returns the same as String as bytes, which the caller must not
// modify.
func Bytes() []byte { return current().b }
