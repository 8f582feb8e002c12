package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/webtier/webtier/e2e/peer"
)

// Response smuggling through an HTTP/2 upstream: a backend (compromised,
// or an application that copies input into fields) answers over h2c with
// fields HTTP/2 forbids (RFC 9113 8.2.2: connection-specific fields,
// upper-case names, CR or LF in values, pseudo-fields in trailers) or with
// trailers that would reframe an HTTP/1.1 response (Content-Length,
// Transfer-Encoding). An HTTP/1.1 client of webtier must never see them as
// such: it gets the response without them, or 502, or a cut-off body;
// never a second framing header, a hop-by-hop field, or a header line the
// backend hid in a value; and the next response on its connection is
// still the next response.

// h2Answer writes one response on stream id with enc encoding a field
// block (name, value pairs, in order, unchecked).
type h2Answer func(fr *http2.Framer, enc func(fields ...string) []byte, id uint32) error

// startRawH2C serves cleartext HTTP/2 with prior knowledge on 127.0.0.1,
// answering each request by its path with answers (200 "ok" for others),
// writing the frames as given: no check of what HTTP/2 forbids.
func startRawH2C(t *testing.T, answers map[string]h2Answer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRawH2C(c, answers)
		}
	}()
	return ln.Addr().String()
}

func serveRawH2C(c net.Conn, answers map[string]h2Answer) {
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, len(http2.ClientPreface))); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	var buf bytes.Buffer
	henc := hpack.NewEncoder(&buf)
	enc := func(fields ...string) []byte {
		buf.Reset()
		for i := 0; i+1 < len(fields); i += 2 {
			henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return bytes.Clone(buf.Bytes())
	}
	if fr.WriteSettings() != nil {
		return
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() && fr.WriteSettingsAck() != nil {
				return
			}
		case *http2.PingFrame:
			if !f.IsAck() && fr.WritePing(true, f.Data) != nil {
				return
			}
		case *http2.MetaHeadersFrame:
			answer, ok := answers[f.PseudoValue("path")]
			if !ok {
				answer = func(fr *http2.Framer, enc func(...string) []byte, id uint32) error {
					if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(":status", "200"), EndHeaders: true}); err != nil {
						return err
					}
					return fr.WriteData(id, true, []byte("ok"))
				}
			}
			if answer(fr, enc, f.StreamID) != nil {
				return
			}
		}
	}
}

// h2Respond answers with head, the body "hello", and trailers when given.
func h2Respond(head, trailers []string) h2Answer {
	return func(fr *http2.Framer, enc func(...string) []byte, id uint32) error {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(head...), EndHeaders: true}); err != nil {
			return err
		}
		if err := fr.WriteData(id, trailers == nil, []byte("hello")); err != nil || trailers == nil {
			return err
		}
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: enc(trailers...), EndHeaders: true, EndStream: true})
	}
}

func TestAttackH2UpstreamSmuggling(t *testing.T) {
	const cookie = "set-cookie: pwned=1"
	ok := []string{":status", "200", "content-type", "text/plain"}
	with := func(extra ...string) []string { return append(append([]string(nil), ok...), extra...) }
	answers := map[string]h2Answer{
		"/connection-specific": h2Respond(with("connection", "keep-alive, x-hop", "x-hop", "1",
			"keep-alive", "timeout=600", "proxy-connection", "keep-alive", "upgrade", "h2c",
			"transfer-encoding", "chunked", "content-length", "5"), nil),
		"/two-lengths":    h2Respond(with("content-length", "5", "content-length", "50"), nil),
		"/short-length":   h2Respond(with("content-length", "3", "content-length", "5"), nil),
		"/upper-name":     h2Respond(with("X-Upper", "1"), nil),
		"/value-crlf":     h2Respond(with("x-a", "a\r\n"+cookie), nil),
		"/value-lf":       h2Respond(with("x-a", "a\n"+cookie), nil),
		"/trailer-frame":  h2Respond(with("trailer", "x-t"), []string{"x-t", "ok", "content-length", "0", "transfer-encoding", "chunked", "connection", "close", "host", "evil"}),
		"/trailer-pseudo": h2Respond(with("trailer", "x-t"), []string{":status", "204", "x-t", "ok"}),
		"/trailer-crlf":   h2Respond(with("trailer", "x-t"), []string{"x-t", "a\r\n" + cookie}),
	}
	backend := startRawH2C(t, answers)
	listen := peer.FreeAddr(t, "127.0.0.1")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "", []string{"http://" + backend}, "", "    protocol: h2c\n"))

	for uri := range answers {
		t.Run(strings.TrimPrefix(uri, "/"), func(t *testing.T) {
			// The attack, then a plain request on the same connection:
			// its answer must be read as the second response.
			raw := rawExchange(t, w.Addr(), "GET "+uri+" HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n"+
				"GET /next HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
			status, _, _ := strings.Cut(raw, "\r\n")
			t.Logf("attacker got %q", status)
			br := bufio.NewReader(strings.NewReader(raw))
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first answer does not parse (%v):\n%q", err, raw)
			}
			if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusBadGateway {
				t.Errorf("first answer %d; want 200 or 502:\n%q", resp.StatusCode, raw)
			}
			body, berr := io.ReadAll(resp.Body)
			for _, line := range strings.FieldsFunc(raw, func(r rune) bool { return r == '\r' || r == '\n' }) {
				if strings.HasPrefix(strings.ToLower(line), "set-cookie") {
					t.Errorf("attacker got the header line %q the backend hid in a value:\n%q", line, raw)
				}
			}
			if n := len(resp.TransferEncoding); n > 1 || n == 1 && resp.TransferEncoding[0] != "chunked" {
				t.Errorf("Transfer-Encoding %v; want webtier's own chunked at most:\n%q", resp.TransferEncoding, raw)
			}
			for _, name := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade", "X-Hop", "X-Upper"} {
				if v, ok := resp.Header[name]; ok {
					t.Errorf("attacker got %s: %v from the backend:\n%q", name, v, raw)
				}
			}
			for name := range resp.Trailer {
				switch strings.ToLower(name) {
				case "content-length", "transfer-encoding", "connection", "host", ":status":
					t.Errorf("attacker got the trailer %s:\n%q", name, raw)
				}
			}
			if berr != nil {
				// A cut-off body: webtier closed the connection.
				return
			}
			if resp.StatusCode == http.StatusOK && string(body) != "hello" {
				t.Errorf("body %q; want hello:\n%q", body, raw)
			}
			if resp.Close {
				return
			}
			next, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("the next answer on the connection does not parse (%v):\n%q", err, raw)
			}
			nb, _ := io.ReadAll(next.Body)
			if next.StatusCode != http.StatusOK || string(nb) != "ok" {
				t.Errorf("the next answer is %d %q; want 200 ok (the next request's own):\n%q", next.StatusCode, nb, raw)
			}
		})
	}
}
