package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
	"time"

	"go.uber.org/zap"
)

// Issue: reload. A reload routes the next request, on a kept-alive client
// connection too, to the new upstream; a request already on its way
// finishes on the old one; and the old upstreams are closed only after it.
func TestServer_reload(t *testing.T) {
	slowGot, release := make(chan struct{}), make(chan struct{})
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(slowGot)
			<-release
		}
		io.WriteString(w, "a")
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "b")
	}))
	defer b.Close()

	listeners := []ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}}
	optsA, optsB := oneUpstream(t, a, nil), oneUpstream(t, b, nil)
	optsA.Listeners, optsB.Listeners = listeners, listeners
	s, err := NewServer(optsA, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen(); err != nil {
		s.Handler().Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	url := "http://" + s.Addrs()[0].String()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(c *http.Client, path string) (body string, reused bool, err error) {
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", url+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			return "", reused, err
		}
		defer resp.Body.Close()
		bb, err := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return string(bb), reused, errors.New(resp.Status)
		}
		return string(bb), reused, err
	}
	if got, _, err := get(client, "/"); err != nil || got != "a" {
		t.Fatalf("before reload: %q, %v; want a", got, err)
	}

	slow := make(chan string, 1)
	go func() {
		other := &http.Client{Transport: &http.Transport{}}
		got, _, err := get(other, "/slow")
		if err != nil {
			got = err.Error()
		}
		slow <- got
	}()
	<-slowGot
	old := s.Handler()

	restart, err := s.Reload(optsB, nil)
	if err != nil || len(restart) != 0 {
		t.Fatalf("Reload = %v, %v; want no listener to restart and no error", restart, err)
	}
	got, reused, err := get(client, "/")
	if err != nil || got != "b" {
		t.Fatalf("after reload: %q, %v; want b", got, err)
	}
	if !reused {
		t.Error("the request after reload did not reuse the kept-alive connection")
	}
	if n := len(old.Pool("app").Endpoints()); n == 0 {
		t.Fatal("the old upstream was closed while a request was still using it")
	}

	close(release)
	if got := <-slow; got != "a" {
		t.Fatalf("request in flight during the reload got %q; want a", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(old.Pool("app").Endpoints()) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the old upstream was not closed after its last request ended")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestServer_reloadListeners(t *testing.T) {
	base := []ListenerOptions{{Name: "web", Address: "127.0.0.1:0"}, {Name: "tls", Address: "127.0.0.1:0"}}
	for _, tc := range []struct {
		name        string
		listeners   []ListenerOptions
		wantErr     error
		wantRestart []string
	}{
		{"same", base, nil, nil},
		{"listener added", append(append([]ListenerOptions{}, base...), ListenerOptions{Name: "new", Address: "127.0.0.1:0"}), ErrListenersChanged, nil},
		{"listener renamed", []ListenerOptions{base[0], {Name: "other", Address: "127.0.0.1:0"}}, ErrListenersChanged, nil},
		{"address changed", []ListenerOptions{{Name: "web", Address: "127.0.0.1:1"}, base[1]}, nil, []string{"web"}},
		{"idle timeout changed", []ListenerOptions{base[0], {Name: "tls", Address: "127.0.0.1:0", IdleTimeout: time.Minute}}, nil, []string{"tls"}},
		{"TLS added", []ListenerOptions{base[0], {Name: "tls", Address: "127.0.0.1:0", TLS: &TLSOptions{CertFile: "c", KeyFile: "k"}}}, nil, []string{"tls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			backend := httptest.NewServer(http.NotFoundHandler())
			defer backend.Close()
			opts := oneUpstream(t, backend, nil)
			opts.Listeners = base
			s, err := NewServer(opts, nil, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Handler().Close() }()
			before := s.Handler()
			opts.Listeners = tc.listeners
			restart, err := s.Reload(opts, nil)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Reload error = %v; want %v", err, tc.wantErr)
			}
			if len(restart) != len(tc.wantRestart) || (len(restart) > 0 && restart[0] != tc.wantRestart[0]) {
				t.Errorf("Reload restart list = %v; want %v", restart, tc.wantRestart)
			}
			if swapped := s.Handler() != before; swapped != (tc.wantErr == nil) {
				t.Errorf("handler swapped = %v; want %v", swapped, tc.wantErr == nil)
			}
		})
	}
}
