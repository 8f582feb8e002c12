package h2

// The write timeout and the header list limits, seen from the attacker's
// side with raw frames (h2tRaw, server_test.go).

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// h2tWindowTimeout is the WriteTimeout of the tests below: short, so that
// they end soon; nothing is asserted about how long the server waited.
const h2tWindowTimeout = 200 * time.Millisecond

// A client that grants no flow-control window (SETTINGS_INITIAL_WINDOW_SIZE
// 0) and opens many streams: each response write waits for window until
// WriteTimeout, then its stream is reset (CANCEL) and the handler's write
// fails, so that a proxy handler frees its backend connection. The
// connection window was open all along: the connection goes on.
func TestServerWindowTimeout(t *testing.T) {
	const streams = 100
	body := bytes.Repeat([]byte("w"), 2*pendingMax) // past what is held back
	writeErrs := make(chan error, streams)
	e := h2tStart(t, &Server{WriteTimeout: h2tWindowTimeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			w.Write([]byte("small")) //nolint:errcheck // the client reads it
			return
		}
		_, err := w.Write(body)
		writeErrs <- err
	}))
	rc := h2tDial(t, e, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 0})
	ids := make([]uint32, streams)
	for i := range ids {
		ids[i] = uint32(2*i + 1)
		rc.headers(ids[i], true, h2tReq("GET", e.addr, "/big")...)
	}
	rs := rc.responses(ids...)
	for _, id := range ids {
		r := rs[id]
		if r.status != "200" || len(r.data) != 0 || !r.reset || r.resetCode != http2.ErrCodeCancel {
			t.Errorf("stream %d: status %q, %d body bytes, reset %v %v; want 200, no body, RST_STREAM CANCEL",
				id, r.status, len(r.data), r.reset, r.resetCode)
		}
	}
	for range ids {
		if err := h2tWait(t, writeErrs, "a handler's write"); err == nil {
			t.Errorf("a handler's write succeeded without window")
		}
	}
	// The client opens its windows: the connection still serves.
	if err := rc.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535}); err != nil {
		t.Fatal(err)
	}
	id := uint32(2*streams + 1)
	rc.headers(id, true, h2tReq("GET", e.addr, "/small")...)
	if r := rc.response(id); r.status != "200" || string(r.data) != "small" {
		t.Errorf("after the resets: %q %q reset %v %v; want 200 small", r.status, r.data, r.reset, r.resetCode)
	}
}

// A client that never returns connection window: once it is used up the
// response waits for WriteTimeout, then the connection is sent away (GOAWAY
// ENHANCE_YOUR_CALM) and closed, the handler's write failing: new streams
// would only wait again.
func TestServerConnWindowTimeout(t *testing.T) {
	body := bytes.Repeat([]byte("c"), 4*initialWindow)
	writeErr := make(chan error, 1)
	e := h2tStart(t, &Server{WriteTimeout: h2tWindowTimeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := w.Write(body)
		writeErr <- err
	}))
	// Stream windows large enough: only the connection's runs out.
	rc := h2tDial(t, e, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30})
	rc.headers(1, true, h2tReq("GET", e.addr, "/")...)
	var data uint32
	for _, fh := range rc.expectClosed() { // no WINDOW_UPDATE sent
		if fh.Type == http2.FrameData {
			data += fh.Length
		}
	}
	if rc.goAway == nil || rc.goAway.code != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %+v; want ENHANCE_YOUR_CALM", rc.goAway)
	}
	if data != initialWindow {
		t.Errorf("%d DATA bytes before the close; want the connection window, %d", data, initialWindow)
	}
	if err := h2tWait(t, writeErr, "the handler's write"); err == nil {
		t.Errorf("the handler's write succeeded without window")
	}
}

// Header lists over MaxHeaderBytes (decoded size, as an HPACK block can
// expand a few bytes into many) or MaxHeaderFields are answered 431 without
// calling the handler; the HPACK table stays in step, so the connection
// goes on.
func TestServerHeaderLimits(t *testing.T) {
	called := make(chan string, 10)
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		called <- r.URL.Path
		fmt.Fprintf(w, "%d %d", len(r.Header), len(r.Header.Get("X-Big")))
	}))
	rc := h2tDial(t, e)
	rc.sync() // the server's SETTINGS
	var advertised uint32
	for _, s := range rc.serverSettings {
		if s.ID == http2.SettingMaxHeaderListSize {
			advertised = s.Val
		}
	}
	if advertised != DefaultMaxHeaderBytes {
		t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d; want %d", advertised, DefaultMaxHeaderBytes)
	}

	fields := func(n int, name string) []string {
		var kv []string
		for i := range n {
			kv = append(kv, fmt.Sprintf("%s%d", name, i), "v")
		}
		return kv
	}
	// The bomb: one 4000-byte value enters the dynamic table, then 40
	// one-byte references to it: about 4 KB on the wire, 160 KiB decoded
	// (under the former 1 MiB limit).
	big := strings.Repeat("b", 4000)
	var bomb []string
	for range 40 {
		bomb = append(bomb, "x-big", big)
	}
	cookies := make([]string, 0, 300)
	for i := range 150 {
		cookies = append(cookies, "cookie", fmt.Sprintf("c%d=1", i))
	}

	id := uint32(1)
	for _, tc := range []struct {
		name   string
		fields []string
		body   bool // the request has a body still to come
		status string
		data   string
	}{
		{"HPACK bomb", bomb, false, "431", ""},
		{"HPACK bomb with a body", bomb, true, "431", ""},
		{"101 fields", fields(101, "x-f"), false, "431", ""},
		{"100 fields", fields(100, "x-f"), false, "200", "100 0"},
		{"150 cookie crumbs: one field", cookies, false, "200", "1 0"},
		// The table entry the bombs added is still there and used: the
		// decoder state is the client's.
		{"after the bombs", []string{"x-big", big}, false, "200", "1 4000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := "/" + strings.ReplaceAll(tc.name, " ", "-")
			rc.headers(id, !tc.body, h2tReq("GET", e.addr, path, tc.fields...)...)
			r := rc.response(id)
			if r.status != tc.status || string(r.data) != tc.data || r.reset {
				t.Errorf("status %q body %q reset %v %v; want %s %q", r.status, r.data, r.reset, r.resetCode, tc.status, tc.data)
			}
			if tc.body {
				// The client is told to stop sending the body.
				for _, fh := range rc.sync() {
					if fh.Type == http2.FrameRSTStream && fh.StreamID == id {
						return
					}
				}
				t.Errorf("no RST_STREAM after the 431 of a request with a body")
			}
		})
		id += 2
	}
	rc.sync()
	close(called)
	var paths []string
	for p := range called {
		paths = append(paths, p)
	}
	if want := "[/100-fields /150-cookie-crumbs:-one-field /after-the-bombs]"; fmt.Sprint(paths) != want {
		t.Errorf("handlers called for %v; want %s", paths, want)
	}
}

// Request trailers over the limits reset the stream (CANCEL): its handler
// runs, a 431 is too late; the handler's body read fails.
func TestServerTrailerLimits(t *testing.T) {
	readErr := make(chan error, 1)
	e := h2tStart(t, &Server{MaxHeaderFields: 10}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}))
	rc := h2tDial(t, e)
	rc.headers(1, false, h2tReq("POST", e.addr, "/", "trailer", "x-t0")...)
	rc.data(1, false, []byte("body"))
	var tr []string
	for i := range 11 {
		tr = append(tr, fmt.Sprintf("x-t%d", i), "v")
	}
	rc.headers(1, true, tr...)
	if r := rc.response(1); !r.reset || r.resetCode != http2.ErrCodeCancel {
		t.Errorf("status %q reset %v %v; want RST_STREAM CANCEL", r.status, r.reset, r.resetCode)
	}
	if err := h2tWait(t, readErr, "the handler's body read"); err == nil || errors.Is(err, errBodyLength) {
		t.Errorf("body read error %v; want the stream's reset", err)
	}
}
