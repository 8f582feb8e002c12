package upstream

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/proxy/upstream/ajp"
)

// failingBody gives a few bytes, then err.
type failingBody struct {
	r   io.Reader
	err error
}

func (b *failingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		err = b.err
	}
	return n, err
}

func (b *failingBody) Close() error { return nil }

// Issue 15, finding 3: a request whose body the client breaks fails with
// ErrRequestBody and never counts against the address, however often;
// connect failures and broken backends still do (the resilience tests).
func TestPool_requestBodyFailureNeverCounts(t *testing.T) {
	b := startBackend(t, "a", "127.0.0.2", 0)
	opts := fastOpts("app", Target{Scheme: "http", Host: "127.0.0.2", Port: uint16(b.port())})
	opts.Consecutive5xx, opts.MaxEjectedPercent, opts.EjectBackoffBase = 1, 100, time.Hour
	p, err := New(opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cause := errors.New("invalid byte in chunk length")
	for i := range 12 {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://upstream/",
			&failingBody{r: strings.NewReader("abc"), err: cause})
		_, err := p.RoundTrip(req)
		if !errors.Is(err, ErrRequestBody) || !errors.Is(err, cause) {
			t.Fatalf("request %d: error %v; want ErrRequestBody wrapping the body's error", i, err)
		}
	}
	if s := stateOf(p, "127.0.0.2"); s != StateRunning {
		t.Errorf("address is %v after 12 broken request bodies; want running", s)
	}
}

// net/http's Transport (https targets) returns a request body's read
// error as it is: the try's bodyGuard tells it from a backend fault.
func TestRequestBodyFailed_bodyGuard(t *testing.T) {
	cause := errors.New("unexpected EOF from the client")
	for _, tc := range []struct {
		name string
		read bool // the try read the body and got cause
		want bool
	}{
		{"body failed", true, true},
		{"body fine", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := &bodyGuard{read: &bodyRead{real: &failingBody{r: strings.NewReader(""), err: cause}}}
			if tc.read {
				g.Read(make([]byte, 8))
			}
			req, _ := http.NewRequest(http.MethodPost, "https://upstream/", g)
			if got := requestBodyFailed(req, errors.New("write tcp: broken pipe")); got != tc.want {
				t.Errorf("requestBodyFailed = %v; want %v", got, tc.want)
			}
		})
	}
}

// A request the h1 client refuses to write (here a header value with a
// control character) never reached the backend: it does not count either.
func TestPool_invalidRequestNeverCounts(t *testing.T) {
	b := startBackend(t, "a", "127.0.0.2", 0)
	opts := fastOpts("app", Target{Scheme: "http", Host: "127.0.0.2", Port: uint16(b.port())})
	opts.Consecutive5xx, opts.MaxEjectedPercent, opts.EjectBackoffBase = 1, 100, time.Hour
	p, err := New(opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for i := range 12 {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://upstream/", nil)
		req.Header.Set("X-Bad", "a\x01b")
		if _, err := p.RoundTrip(req); err == nil {
			t.Fatalf("request %d was sent; want it refused", i)
		}
	}
	if s := stateOf(p, "127.0.0.2"); s != StateRunning {
		t.Errorf("address is %v after 12 refused requests; want running", s)
	}
}

// A try that read the first bytes of a request body and never sent them
// (the AJP client after a pooled connection failed before a byte was
// written and the new one refused CPING) gives them back in
// ajp.Error.Unsent: the request may go to another address, and that try
// reads the whole body, the given-back bytes first.
func TestPool_unsentBodyIsSentElsewhere(t *testing.T) {
	p, err := New(fastOpts("app", Target{Scheme: "ajp", Host: "127.0.0.1", Port: 9}), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const whole = "0123456789abcdef"
	body := &bodyRead{real: io.NopCloser(strings.NewReader(whole))}
	first := make([]byte, 6)
	if _, err := io.ReadFull(&bodyGuard{read: body}, first); err != nil {
		t.Fatal(err)
	}
	cping := &notSentError{&ajp.Error{Kind: ajp.KindCPing, Unsent: first}}
	if !p.retryable(cping, false, body) {
		t.Fatal("a POST whose read body bytes came back unsent is not retryable")
	}
	if p.retryable(&notSentError{&ajp.Error{Kind: ajp.KindCPing, Unsent: first[:3]}}, false, body) {
		t.Fatal("retryable although the try kept some of the bytes it read")
	}
	if u := unsentBody(cping); string(u) != "012345" {
		t.Fatalf("unsentBody = %q", u)
	}
	body.prefix, _ = unsentBody(cping), body.n.Swap(0)
	got, err := io.ReadAll(&bodyGuard{read: body})
	if err != nil || string(got) != whole {
		t.Errorf("the next try read %q, %v; want the whole body %q", got, err, whole)
	}
	if n := body.n.Load(); n != int64(len(whole)) {
		t.Errorf("counted %d bytes read; want %d", n, len(whole))
	}
}
