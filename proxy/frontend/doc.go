// Package frontend is webtier's client-facing side: it opens the listeners
// (plain HTTP and TLS), accepts connections, serves HTTP/1 with webtier's
// own server (http1*.go, with net/http's server for what it hands off) and
// HTTP/2 with proxy/frontend/h2, and swaps the proxy.Handler a config
// reload builds without dropping a connection. What a request becomes
// (routing, forwarding rules, error answers) is package proxy's; the
// servers here see the handler only as an http.Handler.
package frontend
