// Package h1 is webtier's HTTP/1.1 client for http:// backends: a
// Transport that sends *http.Request values to one backend address through
// a pool of keep-alive connections.
//
// It exists for CPU. net/http's Transport runs a read and a write goroutine
// per connection and hands every request and response between them and the
// caller over channels; a proxied request costs about 40 allocations there.
// This Transport does the whole exchange of a bodiless request (the hot
// path: GET, HEAD) on the caller's goroutine: pop an idle connection, write
// the head into the connection's bufio.Writer, flush, read the response
// from its bufio.Reader (parseHead for the common kind of head, else
// http.ReadResponse), and push the connection back into the pool when the
// body reaches EOF, before EOF is returned.
// It has the shape of the AJP transport (proxy/upstream/ajp): synchronous, a LIFO
// pool of idle connections, net/http's CloseIdleConnections contract.
//
// What it does like net/http:
//   - Framing: Content-Length for a known length, chunked for an unknown
//     one (with req.Trailer), "Content-Length: 0" for a bodiless POST, PUT
//     or PATCH; a request body is written on a goroutine of its own while
//     the response is read, so a backend may answer early.
//   - 1xx responses other than 101 are passed to
//     httptrace.ClientTrace.Got1xxResponse and skipped; a 101 response
//     gets an io.ReadWriteCloser body (what httputil.ReverseProxy needs for
//     WebSocket).
//   - A pooled connection the backend closed while it was idle is replaced
//     by a new one, and the request is sent again, once, when that is safe
//     (see Transport.RoundTrip).
//   - A pooled connection holding bytes no request asked for (a backend
//     that sent more than its response) is closed, never read from for the
//     next request, as net/http's "Unsolicited response received on idle
//     HTTP channel"; every reuse checks with one non-blocking peek (on unix).
//   - httptrace's GotConn is called when a connection is obtained.
//
// What it does not do: TLS (https:// backends keep net/http's Transport),
// HTTP/2, proxies, transparent decompression, a default User-Agent,
// waiting for "100 Continue" before sending a body, or limiting the number
// of connections. It validates what it writes: a header name that is not a
// token or a value with CR, LF, NUL or another control character is
// refused (ErrInvalidRequest), never written.
//
// It needs only the standard library and proxy/internal (httplex,
// idlepool, interrupt).
package h1
