package h1

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// failingBody returns some bytes, then err.
type failingBody struct {
	data string
	err  error
}

func (b *failingBody) Read(p []byte) (int, error) {
	if b.data == "" {
		return 0, b.err
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// TestRequestBodyErrorIsTyped: a request body whose source fails (a
// client's malformed chunked body, an upload cut off) is reported as
// ErrRequestBody with its cause, so that the upstream pool does not count
// it against the backend (issue 15); a backend that drops the connection
// is not.
func TestRequestBodyErrorIsTyped(t *testing.T) {
	checkGoroutines(t)
	cause := errors.New("invalid byte in chunk length")
	for _, tc := range []struct {
		name   string
		body   io.Reader
		length int64
		want   error
	}{
		{"chunked source error", &failingBody{"abc", cause}, -1, cause},
		{"sized source error", &failingBody{"abc", cause}, 10, cause},
		{"short body", strings.NewReader("abc"), 10, io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPeer(t, func(c *peerConn) { c.waitEOF() })
			tr := p.transport(Options{})
			req, _ := http.NewRequest("POST", "http://b/", io.NopCloser(tc.body))
			req.ContentLength = tc.length
			_, err := tr.RoundTrip(req)
			if !errors.Is(err, ErrRequestBody) || !errors.Is(err, tc.want) {
				t.Fatalf("RoundTrip error %v; want one matching ErrRequestBody and %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want.Error()) || strings.Contains(err.Error(), ErrRequestBody.Error()) {
				t.Errorf("error text %q; want the cause's text only", err)
			}
		})
	}
	t.Run("backend drops the connection", func(t *testing.T) {
		p := newPeer(t, func(c *peerConn) { c.readRequest() })
		tr := p.transport(Options{})
		req, _ := http.NewRequest("POST", "http://b/", strings.NewReader("hello"))
		_, err := tr.RoundTrip(req)
		if err == nil || errors.Is(err, ErrRequestBody) {
			t.Fatalf("RoundTrip error %v; want a failure that is not ErrRequestBody", err)
		}
	})
}
