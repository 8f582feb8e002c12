package frontend

import (
	"bufio"
	"errors"
	"net/http"
	"strings"
	"testing"
)

var classifyHeadSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.0\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: 1\r\nX: 2\r\nX: 3\r\nX: 4\r\nX: 5\r\nX: 6\r\nX: 7\r\n\r\n",
	"GET /" + strings.Repeat("a", 100) + " HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nCookie: " + strings.Repeat("c", 80) + "\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
	"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
	"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}

// FuzzClassifyHead: for any bytes and limits, readHead (and classifyHead
// under it) does not panic, consumes nothing, answers 414/431 only for a
// head over a limit, passes no head over one, and a head it keeps on the
// fast path that net/http's parser accepts is one the fast path may serve:
// no upgrade, Expect or CONNECT, the limits hold for what net/http parsed,
// and a framing conflict closes the connection.
func FuzzClassifyHead(f *testing.F) {
	for _, s := range classifyHeadSeeds {
		f.Add(s, uint8(64), uint8(48), uint8(6), uint16(256))
	}
	f.Fuzz(func(t *testing.T, raw string, rl, fs, nf uint8, hs uint16) {
		lim := headLimits{requestLine: 8 + int(rl), fieldSize: 8 + int(fs), fields: 1 + int(nf%32), headSize: 32 + int(hs%2048)}
		br := bufio.NewReaderSize(strings.NewReader(raw), 256)
		h, err := readHead(br, &lim)
		if buf, _ := br.Peek(br.Buffered()); !strings.HasPrefix(raw, string(buf)) {
			t.Fatalf("readHead consumed bytes")
		}
		if err != nil {
			return // errNotFast (net/http decides) or the end of raw
		}
		var head string
		if h.status == 0 {
			if h.size < 4 || h.size > len(raw) || !strings.HasSuffix(raw[:h.size], "\r\n\r\n") ||
				strings.Contains(raw[:h.size-2], "\r\n\r\n") {
				t.Fatalf("size %d: not one whole head of %q", h.size, raw)
			}
			head = raw[:h.size]
		}
		over := overLimits(raw, h.size, &lim)
		switch h.status {
		case 0:
			// A head with a reason for 400 (bad) is refused, not
			// passed: the h2c preface is answered 400 at its first
			// line, whatever follows it.
			if over != 0 && h.bad == "" {
				t.Fatalf("head over a limit (%d) passed: %q %+v", over, head, lim)
			}
		case http.StatusRequestURITooLong, http.StatusRequestHeaderFieldsTooLarge:
			if over == 0 {
				t.Fatalf("%d for a head within the limits: %q %+v", h.status, raw, lim)
			}
			return
		default:
			t.Fatalf("status %d", h.status)
		}
		if status, _ := h.check(); status != 0 {
			return // answered 400 by the fast path
		}
		req, rerr := http.ReadRequest(bufio.NewReader(strings.NewReader(head)))
		if rerr != nil {
			return // answered 400 by the fast path, as net/http's server would
		}
		if req.Method == http.MethodConnect || req.Header["Upgrade"] != nil || req.Header["Expect"] != nil {
			t.Fatalf("kept on the fast path: %q", head)
		}
		n := len(req.TransferEncoding)
		for _, vv := range req.Header {
			n += len(vv)
		}
		if req.Host != "" {
			n++
		}
		if n > lim.fields+1 { // + a Content-Length net/http may have merged
			t.Fatalf("%d fields passed, limit %d: %q", n, lim.fields, head)
		}
		te, cl := hasField(head, "transfer-encoding"), hasField(head, "content-length")
		if want := te && (cl || req.ProtoMinor == 0); h.closeAfter != want {
			t.Fatalf("closeAfter %v; want %v for %q", h.closeAfter, want, head)
		}
	})
}

// overLimits says which limit the head at the start of raw is over (0:
// none). size is the whole head's, 0 if readHead stopped before the end:
// then only what it read (up to 256 bytes) counts.
func overLimits(raw string, size int, lim *headLimits) int {
	head := raw
	if size > 0 {
		head = raw[:size]
	} else if len(head) > 256 {
		head = head[:256]
	}
	if size > lim.headSize || size == 0 && len(head) >= lim.headSize {
		return 431
	}
	lines := strings.Split(head, "\n")
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		switch {
		case i > 0 && l == "" && i < len(lines)-1:
			return 0 // the end of the head
		case i == 0 && len(l) > lim.requestLine:
			return 414
		case i > 0 && len(l) > lim.fieldSize:
			return 431
		case i > lim.fields && i < len(lines)-1 && l != "":
			return 431
		}
	}
	return 0
}

// The limits as classifyHead applies them: a head exactly at each limit
// passes, one byte or field more does not.
func TestClassifyHead_limits(t *testing.T) {
	lim := headLimits{requestLine: 30, fieldSize: 20, fields: 3, headSize: 120}
	line := func(n int) string { return "GET /" + strings.Repeat("a", n-len("GET / HTTP/1.1")) + " HTTP/1.1" }
	field := func(n int) string { return "X: " + strings.Repeat("v", n-3) }
	tests := []struct {
		name string
		head string
		want int
	}{
		{"at-limits", line(30) + "\r\nHost: x\r\n" + field(20) + "\r\nA: b\r\n\r\n", 0},
		{"request-line", line(31) + "\r\nHost: x\r\n\r\n", 414},
		{"field", "GET / HTTP/1.1\r\nHost: x\r\n" + field(21) + "\r\n\r\n", 431},
		{"fields", "GET / HTTP/1.1\r\nHost: x\r\nA: b\r\nA: b\r\nA: b\r\n\r\n", 431},
		{"head", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat(field(20)+"\r\n", 2) + strings.Repeat("b", 60) + "\r\n\r\n", 431},
		{"partial-request-line", line(40), 414},
		{"partial-field", "GET / HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("v", 30), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := readHead(bufio.NewReaderSize(strings.NewReader(tt.head), 256), &lim)
			if err != nil && !(tt.want == 0 && errors.Is(err, errNotFast)) && h.status == 0 && tt.want != 0 {
				t.Fatalf("readHead: %v", err)
			}
			if h.status != tt.want {
				t.Errorf("status %d; want %d", h.status, tt.want)
			}
		})
	}
}
