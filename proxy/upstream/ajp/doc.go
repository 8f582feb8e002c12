// Package ajp is webtier's AJP13 client: a codec for the Apache JServ
// Protocol 1.3 as Tomcat speaks it, and a Transport that sends
// *http.Request values to one Tomcat AJP connector through a pool of
// connections, so that the proxy core (httputil.ReverseProxy) treats AJP
// like HTTP.
//
// The codec (Framer, AppendForwardRequest, AppendBodyPacket) follows
// golang.org/x/net/http2's Framer: typed packet, method and header codes,
// length checked against the maximum packet size before any allocation,
// append-based writers that back-fill the length, and one reused read
// buffer whose contents are valid until the next read.
//
// What it assumes:
//   - The backend is Tomcat 9/10 or compatible, with packetSize equal to
//     Options.PacketSize (both default to 8192) and, if secretRequired,
//     the same secret as Options.Secret.
//   - The *http.Request is the proxy's outbound copy: RemoteAddr is the
//     client's ip:port, TLS the client's TLS state, Host what the client
//     asked for, and the context may carry http.LocalAddrContextKey, a
//     route (WithRoute) and an authenticated user (WithRemoteUser).
//
// What it refuses to do:
//   - Forward any request attribute whose name comes from the client. The
//     attribute set is closed (see ForwardRequest), which rules out
//     Ghostcat (CVE-2020-1938) style attribute injection.
//   - Carry upgrades/WebSockets or CONNECT (ErrUpgrade): AJP cannot.
//   - Split request headers over several packets: AJP13 cannot; a request
//     whose headers do not fit gets ErrHeadersTooLarge, never a hang.
//   - Log. Errors carry a Kind and an operator-facing message; metrics and
//     logging hook in through Options.OnError and the errors returned.
//
// It needs only the standard library and proxy/internal (httplex,
// idlepool, interrupt).
package ajp
