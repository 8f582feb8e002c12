package upstream

import (
	"errors"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest/observer"
)

// The tests below pin what engine std keeps of the pool's behaviour with
// net/http's Transport as the client of http:// targets: the seam
// (backendTransport) is the same, so the dial, the ejection, DNS following
// and the failure classification must be too.

// requireStd fails the test unless every endpoint of p sends with
// net/http's Transport: a test of the std client that ran on proxy/h1
// would prove nothing.
func requireStd(t *testing.T, p *Pool) {
	t.Helper()
	eps := p.Endpoints()
	if len(eps) == 0 {
		t.Fatal("no endpoints")
	}
	for _, e := range eps {
		if _, ok := e.transport.(stdTransport); !ok {
			t.Fatalf("endpoint %v sends with %T; want net/http's Transport (engine std)", e.Addr(), e.transport)
		}
	}
}

// A dead address is retried elsewhere and ejected, with the refused connect
// as the reason, exactly as with the own client.
func TestStdClient_connectFailureEjects(t *testing.T) {
	b := startBackend(t, "b", "127.0.0.3", 0)
	deadPort := freePort(t, "127.0.0.2")
	log, logs := observed()
	opts := fastOpts("app",
		Target{Scheme: "http", Host: "127.0.0.2", Port: uint16(deadPort)},
		Target{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port())},
	)
	opts.Engine = EngineStd
	p, err := New(opts, nil, log)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	requireStd(t, p)
	for i := range 6 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatalf("request %d: %v; want it retried on the live address", i, err)
		}
		if got := body(t, resp); got != "b" {
			t.Fatalf("request %d answered by %q; want b", i, got)
		}
	}
	waitFor(t, "the dead address to be ejected", func() bool { return stateOf(p, "127.0.0.2") == StateEjected })
	var ejections []observer.LoggedEntry
	for _, e := range logs.FilterMessage("address state changed").All() {
		if e.ContextMap()["to"] == "ejected" {
			ejections = append(ejections, e)
		}
	}
	if len(ejections) != 1 || !strings.Contains(ejections[0].ContextMap()["reason"].(string), "connection refused") {
		t.Errorf("ejection log lines = %v; want one whose reason is the refused connect", ejections)
	}
	// A connect failure is a DialError for the caller too.
	p2, err := New(Options{Name: "dead", Engine: EngineStd,
		Targets: []Target{{Scheme: "http", Host: "127.0.0.2", Port: uint16(deadPort)}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	var de *DialError
	if _, err := get(t, p2, "/"); !errors.As(err, &de) || de.Addr.Port() != uint16(deadPort) {
		t.Errorf("err = %v (%T); want a *DialError for port %d", err, err, deadPort)
	}
}

// The Transport connects to the address the pool picked from the shared
// resolver's answer, follows a change of that answer, and closes its idle
// connections to an address that left it. The target's name is not
// resolvable: a Transport that resolved it itself would fail.
func TestStdClient_followsDNS(t *testing.T) {
	a := startBackend(t, "a", "127.0.0.2", 0)
	startBackend(t, "b", "127.0.0.3", a.port())
	res := &pushResolver{}
	p, err := New(Options{Name: "app", Engine: EngineStd,
		Targets: []Target{{Scheme: "http", Host: "elb.invalid", Port: uint16(a.port())}}}, res, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	res.push(t, "elb.invalid", "127.0.0.2")
	requireStd(t, p)
	for range 3 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "a" {
			t.Fatalf("answered by %q; want a, the only address in the answer", got)
		}
	}
	res.push(t, "elb.invalid", "127.0.0.3")
	<-a.closed // the idle pooled connection to a closes at once
	if got := p.Endpoints(); len(got) != 1 || got[0].Addr().Addr() != netip.MustParseAddr("127.0.0.3") {
		t.Fatalf("Endpoints() = %v; want only 127.0.0.3", got)
	}
	for range 3 {
		resp, err := get(t, p, "/")
		if err != nil {
			t.Fatal(err)
		}
		if got := body(t, resp); got != "b" {
			t.Fatalf("after the answer changed, answered by %q; want b", got)
		}
	}
}

// A request net/http's Transport refuses to write (a field value with a
// line break, as a bug in a rule could produce) is the request's fault:
// it never counts toward passive ejection, which would let a client eject
// a healthy address.
func TestStdClient_invalidRequestIsNotTheBackends(t *testing.T) {
	b := startBackend(t, "b", "127.0.0.3", 0)
	p, err := New(Options{Name: "app", Engine: EngineStd, Consecutive5xx: 2,
		EjectBackoffBase: time.Minute, EjectBackoffCap: time.Minute,
		Targets: []Target{{Scheme: "http", Host: "127.0.0.3", Port: uint16(b.port())}}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	requireStd(t, p)
	for range 5 {
		req, err := http.NewRequest(http.MethodGet, "http://upstream/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header["X-Evil"] = []string{"a\r\nSet-Cookie: pwned=1"}
		if _, err := p.RoundTrip(req); !errors.Is(err, errInvalidRequest) {
			t.Fatalf("err = %v; want the request refused as invalid", err)
		}
	}
	if s := stateOf(p, "127.0.0.3"); s != StateRunning {
		t.Errorf("address state %v after 5 invalid requests; want running", s)
	}
}

func TestCheckLength(t *testing.T) {
	tests := []struct {
		name    string
		cl      []string
		want    []string
		refused bool
	}{
		{"none", nil, nil, false},
		{"one", []string{"5"}, []string{"5"}, false},
		{"equal values made one", []string{"5", "5"}, []string{"5"}, false},
		{"conflicting", []string{"5", "50"}, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			closed := false
			h := http.Header{}
			if tt.cl != nil {
				h["Content-Length"] = tt.cl
			}
			body := &closeRecorder{closed: &closed}
			resp, err := checkLength(&http.Response{Header: h, Body: body}, nil)
			if tt.refused {
				if !errors.Is(err, errContentLength) || !closed {
					t.Fatalf("err %v, body closed %v; want errContentLength and the body closed", err, closed)
				}
				return
			}
			if err != nil || !slices.Equal(resp.Header["Content-Length"], tt.want) {
				t.Fatalf("Content-Length %q, %v; want %q", resp.Header["Content-Length"], err, tt.want)
			}
		})
	}
}

type closeRecorder struct{ closed *bool }

func (c *closeRecorder) Read([]byte) (int, error) { return 0, io.EOF }
func (c *closeRecorder) Close() error             { *c.closed = true; return nil }
