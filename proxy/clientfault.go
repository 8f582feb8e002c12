package proxy

import (
	"errors"
	"net"
	"net/http"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/upstream"
)

// requestBodyError answers a request whose body could not be read from the
// client (upstream.ErrRequestBody): malformed chunked encoding or an upload
// cut off is 400, a body read timeout 408, a body over a limit 413. It is
// the client's doing, so it is logged at debug only: a client must not be
// able to fill the log (nginx logs these at info), and the backend is not
// blamed (the pool did not count the try against the address). The
// connection is closed after the answer: the rest of the request's framing
// is unknown.
func (f *front) requestBodyError(w http.ResponseWriter, r *http.Request, p *upstream.Pool, err error) {
	status := http.StatusBadRequest
	var netErr net.Error
	switch {
	case errors.As(err, new(*http.MaxBytesError)):
		status = http.StatusRequestEntityTooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		status = http.StatusRequestTimeout
	}
	if ce := f.h.log.Check(zap.DebugLevel, "request body could not be read from the client"); ce != nil {
		ce.Write(zap.String("listener", f.name), zap.String("upstream", p.Name()),
			zap.String("method", r.Method), zap.String("host", r.Host), zap.String("path", r.URL.Path),
			zap.String("remote", r.RemoteAddr), zap.Int("status", status),
			zap.String("request_id", f.requestIDOf(r)), zap.Error(err))
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Connection", "close")
	w.WriteHeader(status)
	switch status {
	case http.StatusRequestEntityTooLarge:
		w.Write([]byte("413 Request Entity Too Large\n"))
	case http.StatusRequestTimeout:
		w.Write([]byte("408 Request Timeout: the request body did not arrive in time\n"))
	default:
		w.Write([]byte("400 Bad Request: the request body could not be read\n"))
	}
}
