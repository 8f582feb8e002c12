// Package accesslog writes one line per request, as httpd's CustomLog and
// nginx's access_log do: Apache's "combined" and "common" formats byte for
// byte, or JSON with named fields.
//
// The request path only copies an Entry into a bounded channel (Writer.Log);
// one goroutine formats and writes the lines. A request never waits for the
// disk: when the channel is full or a write fails, the line is counted in
// webtier_access_log_dropped_total instead.
package accesslog

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Format is a line format.
type Format uint8

// The formats. FormatOff is the zero value: no line is written.
const (
	FormatOff Format = iota
	// FormatCombined is httpd's
	// "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-agent}i\"".
	FormatCombined
	// FormatCommon is httpd's "%h %l %u %t \"%r\" %>s %b".
	FormatCommon
	// FormatJSON is one JSON object per line, with named fields.
	FormatJSON
)

// DefaultFormat is the format when the config names none: httpd users
// expect combined (Debian's and RHEL's default vhosts log it).
const DefaultFormat = "combined"

// DefaultPath is where lines go when the config names no path: stdout,
// which a container runtime and systemd's journal both collect.
const DefaultPath = "stdout"

// ParseFormat returns the Format named s: "combined", "common", "json" or
// "off".
func ParseFormat(s string) (Format, error) {
	switch s {
	case "combined":
		return FormatCombined, nil
	case "common":
		return FormatCommon, nil
	case "json":
		return FormatJSON, nil
	case "off":
		return FormatOff, nil
	}
	return FormatOff, fmt.Errorf("access log format %q: write combined, common, json or off", s)
}

func (f Format) String() string {
	switch f {
	case FormatCombined:
		return "combined"
	case FormatCommon:
		return "common"
	case FormatJSON:
		return "json"
	}
	return "off"
}

// Entry is what is known of one request when its response is done. Strings
// are copied by reference: they must not change after Log (request fields
// never do).
type Entry struct {
	Format Format    // the format of the line; set by the proxy from its config
	Start  time.Time // when the request's head was read

	Client    netip.Addr // the client: the peer, or the address a trusted proxy gave
	Method    string
	URI       string // as the client sent it (RequestURI)
	Proto     string // "HTTP/1.1", "HTTP/2.0"
	Host      string
	Status    int
	Bytes     int64 // response body bytes sent
	Referer   string
	UserAgent string
	HasRef    bool // a Referer field was sent (possibly empty)
	HasUA     bool // a User-Agent field was sent (possibly empty)

	RequestID string
	Listener  string
	Route     string // "" when no route matched
	Upstream  string // "" when not proxied

	UpstreamAddr    netip.AddrPort // zero when no address was tried
	UpstreamConnect time.Duration  // connect time of a new connection; -1 when a kept-alive one was used or none
	UpstreamHeader  time.Duration  // until the response header; -1 when none came
	UpstreamTotal   time.Duration  // until the response body ended; -1 when none came
	Duration        time.Duration  // the whole request

	TLSVersion string // "TLSv1.3"; "" for plain HTTP
	ALPN       string // "h2", "http/1.1"; "" when none was negotiated
}

// AppendLine appends e's line, with its newline, in e.Format.
func AppendLine(b []byte, e *Entry) []byte {
	switch e.Format {
	case FormatCombined, FormatCommon:
		return appendApache(b, e)
	case FormatJSON:
		return appendJSON(b, e)
	}
	return b
}

// appendApache writes httpd's common or combined line. As mod_log_config:
// "-" for an absent value and for 0 bytes (%b), the time of the request's
// start in local time, and quoted values escaped by ap_escape_logitem
// (\" \\ \n \r \t \b \v, other bytes outside 0x20-0x7e as \xhh).
func appendApache(b []byte, e *Entry) []byte {
	if e.Client.IsValid() {
		b = e.Client.AppendTo(b)
	} else {
		b = append(b, '-')
	}
	b = append(b, " - - ["...)
	b = e.Start.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	if e.Method == "" {
		b = append(b, '-') // no request line could be read (httpd's 400 and 408)
	} else {
		b = appendEscaped(b, e.Method)
		b = append(b, ' ')
		b = appendEscaped(b, e.URI)
		b = append(b, ' ')
		b = appendEscaped(b, e.Proto)
	}
	b = append(b, "\" "...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, ' ')
	if e.Bytes > 0 {
		b = strconv.AppendInt(b, e.Bytes, 10)
	} else {
		b = append(b, '-')
	}
	if e.Format == FormatCombined {
		b = append(b, " \""...)
		b = appendHeader(b, e.Referer, e.HasRef)
		b = append(b, "\" \""...)
		b = appendHeader(b, e.UserAgent, e.HasUA)
		b = append(b, '"')
	}
	return append(b, '\n')
}

func appendHeader(b []byte, v string, present bool) []byte {
	if !present {
		return append(b, '-')
	}
	return appendEscaped(b, v)
}

const hexDigits = "0123456789abcdef"

// appendEscaped is httpd's ap_escape_logitem: a log line cannot be split
// or forged by what a client sends.
func appendEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c >= 0x20 && c < 0x7f:
			b = append(b, c)
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\v':
			b = append(b, '\\', 'v')
		default:
			b = append(b, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return b
}

// appendJSON writes one JSON object. Times are RFC 3339 with milliseconds,
// durations seconds with microseconds; upstream fields are left out when
// the request reached no upstream, TLS fields on plain HTTP.
func appendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Start.AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	b = append(b, `","client":`...)
	if e.Client.IsValid() {
		b = append(b, '"')
		b = e.Client.AppendTo(b)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = jsonField(b, "method", e.Method)
	b = jsonField(b, "uri", e.URI)
	b = jsonField(b, "proto", e.Proto)
	b = jsonField(b, "host", e.Host)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	if e.HasRef {
		b = jsonField(b, "referer", e.Referer)
	}
	if e.HasUA {
		b = jsonField(b, "user_agent", e.UserAgent)
	}
	if e.RequestID != "" {
		b = jsonField(b, "request_id", e.RequestID)
	}
	b = jsonField(b, "listener", e.Listener)
	if e.Route != "" {
		b = jsonField(b, "route", e.Route)
	}
	if e.Upstream != "" {
		b = jsonField(b, "upstream", e.Upstream)
	}
	if e.UpstreamAddr.IsValid() {
		b = append(b, `,"upstream_addr":"`...)
		b = e.UpstreamAddr.AppendTo(b)
		b = append(b, '"')
	}
	b = jsonSeconds(b, "upstream_connect", e.UpstreamConnect)
	b = jsonSeconds(b, "upstream_header", e.UpstreamHeader)
	b = jsonSeconds(b, "upstream_total", e.UpstreamTotal)
	b = jsonSeconds(b, "duration", e.Duration)
	if e.TLSVersion != "" {
		b = jsonField(b, "tls_version", e.TLSVersion)
	}
	if e.ALPN != "" {
		b = jsonField(b, "alpn", e.ALPN)
	}
	return append(b, "}\n"...)
}

func jsonField(b []byte, name, v string) []byte {
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return appendJSONString(b, v)
}

// jsonSeconds writes d in seconds with microseconds; a negative d (not
// measured) is left out.
func jsonSeconds(b []byte, name string, d time.Duration) []byte {
	if d < 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, name...)
	b = append(b, `":`...)
	return strconv.AppendFloat(b, d.Seconds(), 'f', 6, 64)
}

// appendJSONString writes s as a JSON string. Bytes that are not UTF-8
// become U+FFFD, so that the line stays valid JSON whatever a client sent.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
