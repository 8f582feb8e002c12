package frontend

import (
	"bufio"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/internal/httplex"
)

// The HTTP/1 response writer checks every field it writes, whoever set it:
// the backend clients drop bad fields as they parse, but a handler, a
// forward rule or a future backend client may not, and one name holding
// "\r\nSet-Cookie: ..." would otherwise reach the client as a header of
// its own (response splitting). The checks are table lookups over the
// bytes, nothing allocates, and a valid field costs one pass over its
// name and one over its value.

// validFieldName reports whether k can be written as a field name: an
// RFC 9110 token, as net/http's server (httpguts.ValidHeaderFieldName)
// and the HTTP/2 writer require. Anything else (CR, LF, a space, a colon,
// an empty name) is left out with all its values.
func validFieldName(k string) bool { return httplex.ValidToken(k) }

// valueSplits marks the bytes that RFC 9110 5.5 says a recipient must
// replace by SP (or refuse the message for): CR, LF and NUL. net/http's
// server replaces CR and LF the same way. Other control bytes are kept,
// as RFC 9110 allows and net/http does.
var valueSplits = [256]bool{'\r': true, '\n': true, 0: true}

// writeFieldValue writes v with CR, LF and NUL replaced by spaces.
func writeFieldValue(bw *bufio.Writer, v string) {
	i := 0
	for i < len(v) && !valueSplits[v[i]] {
		i++
	}
	if i == len(v) {
		bw.WriteString(v)
		return
	}
	bw.WriteString(v[:i])
	for ; i < len(v); i++ {
		c := v[i]
		if valueSplits[c] {
			c = ' '
		}
		bw.WriteByte(c)
	}
}

// dropField notes a field left out for its name: n lines were not sent.
func (w *fastWriter) dropField(k string, n int) {
	if w.log != nil && w.log.Core().Enabled(zap.DebugLevel) {
		w.log.Debug("response header field with an invalid name left out",
			zap.String("name", k), zap.Int("values", n),
			zap.String("method", w.req.Method), zap.String("uri", w.req.RequestURI))
	}
}
