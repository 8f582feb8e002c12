package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/net/http/httpguts"

	"github.com/webtier/webtier/proxy/internal/httplex"
	"github.com/webtier/webtier/proxy/upstream"
)

// forward proxies one request to p the way httputil.ReverseProxy with our
// Rewrite does, with fewer allocations and header passes: the outbound
// request is one shallow copy of the inbound one (sharing its URL, which the
// pool copies per try), its header is built in one pass that leaves out the
// hop-by-hop and X-Forwarded headers instead of copying them and deleting
// them again, and response headers are moved into the ResponseWriter without
// copying their values.
//
// It serves every request but an upgrade to a protocol rt allows
// (WebSocket by default), which goes to the ReverseProxy (rp), so that what
// is rare keeps the standard library's code. An upgrade to any other
// protocol (h2c above all) is served here as a plain request: Upgrade,
// HTTP2-Settings and the Connection-listed fields are hop-by-hop and left
// out, and a 101 answer is a 502, so that no tunnel can carry later
// requests past routing and the rules. What forward keeps from
// ReverseProxy: hop-by-hop removal both ways (Connection-listed and the
// RFC 2616 list), "Te: trailers", X-Forwarded-* via setForwarded (Forwarded
// removed), an empty User-Agent when the client sent none, a nil body for
// ContentLength 0, 1xx responses passed on (103 Early Hints), trailers
// (announced and not), flushing after every write for text/event-stream and
// bodies of unknown length, http.ErrAbortHandler on a broken body copy, 502
// for a 101 answer to a request that asked for no upgrade. Where it
// differs, on purpose (rp's Rewrite does the same): the query is passed
// byte for byte, and header fields with "_" in their name are dropped
// unless the listener keeps them.
//
// x, when the request is observed, gets the upstream's address and
// timings; the request id (when on) is the one x holds, else made here.
func (f *front) forward(w http.ResponseWriter, r *http.Request, rt *route, p *upstream.Pool, rp http.Handler, x *exchange) {
	if up := requestedUpgrade(r.Header); up != "" && rt.allowsUpgrade(up) {
		if f.reqID.Header != "" {
			// ReverseProxy copies it from the inbound header.
			id := ""
			if x != nil {
				id = x.reqID
			} else {
				id = f.requestID(r, new([requestIDLen]byte))
			}
			r.Header[f.reqID.Header] = []string{id}
		}
		// Rewrite rules (proxy/rules/rewrite): ProxyPassReverse, in rp's ModifyResponse.
		if rt.rewrite != nil {
			r = withReverse(r, rt)
		}
		rp.ServeHTTP(w, r)
		return
	}
	var st *forwardState
	var sid *forwardStateID
	if f.reqID.Header != "" {
		sid = &forwardStateID{forwardState: forwardState{w: w}}
		st = &sid.forwardState
	} else {
		st = &forwardState{w: w}
	}
	st.trace.Got1xxResponse = st.got1xx
	ctx := httptrace.WithClientTrace(r.Context(), &st.trace)
	if x != nil {
		x.tctx.Context = ctx
		ctx = &x.tctx
	}
	out := r.WithContext(ctx)
	out.Close = false
	out.RemoteAddr = f.clientRemote(r) // the client, for the pool and the AJP client (client.go)
	// A copy taken before the body is read, as ReverseProxy's Clone: the
	// announced trailer names without their values, so that no request
	// trailer (which arrives after the header rules ran) reaches the backend.
	out.Trailer = r.Trailer.Clone()
	if r.ContentLength == 0 {
		out.Body = nil // for the transport's retries (Go issue 16036)
	}
	if out.Body != nil {
		// The transport closes a request body when it fails; the inbound
		// body is the server's to close (see ReverseProxy's noopCloseReader).
		out.Body = &noopCloseReader{out.Body}
		defer out.Body.Close()
	}
	out.Header = outboundHeader(r.Header, f.keepUnderscores, f.reqID.Header)
	f.setForwardedIn(r, out, &st.fwd)
	if sid != nil {
		if x != nil {
			sid.idVal[0] = x.reqID
		} else {
			sid.idVal[0] = f.requestID(r, &sid.idBuf)
		}
		out.Header[f.reqID.Header] = sid.idVal[:]
	}
	if rt.rules != nil { // request header rules (rules.go)
		f.requestRules(r, out, rt)
	}

	var sent time.Time
	if x != nil {
		sent = time.Now()
	}
	res, err := p.RoundTrip(out)
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
	if x != nil {
		tm := &x.tctx.Timing
		x.proxied = true
		x.upstreamAddr, x.upstreamConnect, x.upstreamHeader = tm.Addr(), tm.Connect(), tm.Header()
	}
	if err != nil {
		f.upstreamError(w, out, p, rt, err)
		return
	}
	if res.StatusCode == http.StatusSwitchingProtocols {
		// The outbound request asked for no upgrade: those the route
		// allows go to ReverseProxy, the others lost their Upgrade.
		res.Body.Close()
		f.upstreamError(w, out, p, rt, fmt.Errorf("backend tried to switch protocol %q when %q was requested",
			upgradeType(res.Header), ""))
		return
	}
	removeHopByHop(res.Header)
	if rt.rules != nil && f.responseRules(w, r, out, rt, res) { // response header rules, error pages (rules.go)
		return
	}
	moveHeader(w.Header(), res.Header)
	// Rewrite rules (proxy/rules/rewrite): ProxyPassReverse.
	if rt.rewrite != nil {
		f.reverse(w.Header(), res, r, rt)
	}
	if len(res.Trailer) > 0 {
		dropInvalidTrailers(res.Trailer)
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		w.Header().Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	err = f.copyBody(w, res)
	if x != nil {
		x.upstreamTotal = time.Since(sent)
	}
	if err != nil {
		defer res.Body.Close()
		if r.Context().Value(http.ServerContextKey) == nil {
			return // not under an http.Server: nobody to recover (as ReverseProxy)
		}
		panic(http.ErrAbortHandler)
	}
	res.Body.Close() // now, not deferred: it fills res.Trailer

	if len(res.Trailer) > 0 {
		dropInvalidTrailers(res.Trailer)
		// Force chunking, so that net/http sends the trailers.
		http.NewResponseController(w).Flush()
	}
	if len(res.Trailer) == announced {
		moveHeader(w.Header(), res.Trailer)
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			w.Header().Add(k, v)
		}
	}
}

// forwardState is the per-request state forward shares with the transport's
// 1xx callback, in one allocation.
type forwardState struct {
	trace httptrace.ClientTrace
	w     http.ResponseWriter
	mu    sync.Mutex // guards done and writing 1xx responses
	done  bool       // RoundTrip returned: the header map is the final response's
	// fwd backs the outbound X-Forwarded-For, -Proto and -Host values
	// (setForwardedIn): the state lives as long as the outbound request.
	fwd [3]string
}

// forwardStateID is forwardState with room for the request id, allocated
// instead of it when the listener gives requests an id, so that a request
// without one allocates exactly what it did before.
type forwardStateID struct {
	forwardState
	// idBuf holds a request id made for this request and idVal the
	// outbound header's value: the state is never reused, so the id
	// string may share idBuf's memory (see requestID).
	idBuf [requestIDLen]byte
	idVal [1]string
}

func (st *forwardState) got1xx(code int, header textproto.MIMEHeader) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return nil
	}
	h := st.w.Header()
	for k, vv := range header {
		for _, v := range vv {
			h.Add(k, v)
		}
	}
	st.w.WriteHeader(code)
	clear(h) // WriteHeader does not clear the map for 1xx responses
	return nil
}

// copyBody streams the response body to w, flushing after every write when
// the client should see data as it comes (ReverseProxy's flushInterval -1).
func (f *front) copyBody(w http.ResponseWriter, res *http.Response) error {
	var rc *http.ResponseController
	if res.ContentLength == -1 || isEventStream(res.Header["Content-Type"]) {
		rc = http.NewResponseController(w)
		rc.Flush() // the headers now, even if the body is slow to come
	}
	buf := bufPool.Get()
	defer bufPool.Put(buf)
	for {
		nr, rerr := res.Body.Read(buf)
		if rerr != nil && rerr != io.EOF && !errors.Is(rerr, context.Canceled) {
			f.h.log.Info("reading a response body failed", zap.String("listener", f.name), zap.Error(rerr))
		}
		if nr > 0 {
			nw, werr := w.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nw != nr {
				return io.ErrShortWrite
			}
			if rc != nil {
				rc.Flush()
			}
		}
		if rerr != nil {
			if rerr == io.EOF {
				return nil
			}
			return rerr
		}
	}
}

// isEventStream reports whether the Content-Type's media type is
// text/event-stream as ReverseProxy decides it (mime.ParseMediaType, which
// also rejects some malformed parameters), parsing only types that start so.
func isEventStream(ct []string) bool {
	if len(ct) == 0 {
		return false
	}
	v := ct[0]
	if i := strings.IndexByte(v, ';'); i >= 0 {
		v = v[:i]
	}
	if !strings.EqualFold(strings.TrimSpace(v), "text/event-stream") {
		return false
	}
	mt, _, _ := mime.ParseMediaType(ct[0])
	return mt == "text/event-stream"
}

// requestedUpgrade returns the protocol r's header asks to switch to, as
// ReverseProxy reads it (Upgrade listed in Connection), or "" for none or
// for an Upgrade that names several protocols or has several fields: only
// a request for one protocol can be allowed.
func requestedUpgrade(h http.Header) string {
	up := h["Upgrade"]
	if up == nil || !httplex.HasToken(h["Connection"], "Upgrade") {
		return ""
	}
	if len(up) != 1 || strings.IndexByte(up[0], ',') >= 0 {
		return ""
	}
	return up[0]
}

// isForwarding reports whether k is a forwarding header, which
// setForwarded rewrites.
func isForwarding(k string) bool {
	switch k {
	case "Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto":
		return true
	}
	return false
}

// connectionTokens returns the canonical header names listed in
// Connection, appended to buf.
func connectionTokens(h http.Header, buf []string) []string {
	for _, v := range h["Connection"] {
		for sf := range strings.SplitSeq(v, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				buf = append(buf, httplex.Canonical(sf))
			}
		}
	}
	return buf
}

// outboundHeader builds the header of the outbound request from in: every
// field except hop-by-hop ones, those listed in Connection, the forwarding
// ones and, unless keepUnderscores, those with "_" in their name (see
// ListenerOptions.KeepUnderscoreHeaders) and the request id header
// (requestID; forward sets it), with the values copied into one
// backing array (as Header.Clone does); "Te: trailers" when the client sent
// it; and an empty User-Agent when the client sent none, so that the
// transport adds no Go default.
func outboundHeader(in http.Header, keepUnderscores bool, requestID string) http.Header {
	var tokBuf [8]string
	conn := connectionTokens(in, tokBuf[:0])
	nv := 0
	for _, vv := range in {
		nv += len(vv)
	}
	sv := make([]string, nv)
	extra := 4 // X-Forwarded-For, -Proto, -Host, and Te or User-Agent
	if requestID != "" {
		extra++
	}
	out := make(http.Header, len(in)+extra)
	for k, vv := range in {
		if httplex.IsHopByHop(k) || isForwarding(k) || contains(conn, k) || k == requestID ||
			!keepUnderscores && strings.IndexByte(k, '_') >= 0 {
			continue
		}
		if vv == nil {
			out[k] = nil // (Header.Clone keeps nil values nil)
			continue
		}
		n := copy(sv, vv)
		out[k] = sv[:n:n]
		sv = sv[n:]
	}
	if httplex.HasToken(in["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	if _, ok := out["User-Agent"]; !ok {
		out["User-Agent"] = []string{""}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// removeHopByHop deletes the hop-by-hop fields of a response header.
func removeHopByHop(h http.Header) {
	var tokBuf [8]string
	for _, k := range connectionTokens(h, tokBuf[:0]) {
		delete(h, k)
	}
	// A lookup in a map of up to eight fields (a typical response head)
	// compares without hashing; a delete always hashes. Most of these
	// names are absent, so look first.
	for _, k := range httplex.HopByHop {
		if _, ok := h[k]; ok {
			delete(h, k)
		}
	}
}

// dropInvalidTrailers deletes the trailer fields a message must not carry
// in trailers (RFC 9110 6.5.1: framing, routing, connection and the like,
// as httpguts lists them): a backend's Content-Length or Transfer-Encoding
// trailer must not reach a client that merges trailers into the header.
// No transport drops them all (golang.org/x/net/http2's client keeps a
// Host or Connection trailer).
func dropInvalidTrailers(tr http.Header) {
	for k := range tr {
		if !httpguts.ValidTrailerHeader(k) {
			delete(tr, k)
		}
	}
}

// moveHeader adds src's fields to dst. A field dst does not have yet takes
// src's value slice as it is: src (a response header the transport built
// for this request) is not used after.
func moveHeader(dst, src http.Header) {
	for k, vv := range src {
		if old, ok := dst[k]; ok {
			dst[k] = append(old, vv...)
		} else {
			dst[k] = vv
		}
	}
}

func upgradeType(h http.Header) string {
	if !httplex.HasToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// noopCloseReader keeps the transport from closing the inbound body.
type noopCloseReader struct{ io.ReadCloser }

func (noopCloseReader) Close() error { return nil }
