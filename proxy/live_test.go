package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// liveOptions is one listener and one upstream: the backend at u.
func liveOptions(t *testing.T, u string) Options {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(pu.Port())
	return Options{
		Listeners: []ListenerOptions{{Name: "web"}},
		Routes:    []RouteOptions{{PathPrefix: "/", Upstream: "app"}},
		Upstreams: []UpstreamOptions{{Name: "app", Targets: []TargetOptions{{Scheme: "http", Host: pu.Hostname(), Port: uint16(port)}}}},
	}
}

// A request that started before a Replace finishes on the Handler it
// started with; that Handler closes when the request ends, not before;
// after Close, Replace changes nothing.
func TestLive_replaceClosesTheOldHandlerAfterItsLastRequest(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		w.Write([]byte("ok " + r.URL.Path))
	}))
	defer backend.Close()
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce() // before backend.Close, which waits for /slow
	opts := liveOptions(t, backend.URL)
	l, err := NewLive(opts, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	old := l.Handler()

	slow := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Front(0).ServeHTTP(slow, httptest.NewRequest(http.MethodGet, "http://a/slow", nil))
	}()
	<-started

	if missing, err := l.Replace(context.Background(), opts, nil); err != nil || len(missing) > 0 {
		t.Fatalf("Replace = %v, %v; want no error and nothing missing", missing, err)
	}
	if l.Handler() == old {
		t.Fatal("Replace did not swap the handler")
	}
	fresh := httptest.NewRecorder()
	l.Front(0).ServeHTTP(fresh, httptest.NewRequest(http.MethodGet, "http://a/new", nil))
	if fresh.Code != http.StatusOK || fresh.Body.String() != "ok /new" {
		t.Errorf("a request after Replace got %d %q; want 200 \"ok /new\"", fresh.Code, fresh.Body)
	}
	if old.IsClosed() {
		t.Fatal("the old handler closed under a running request")
	}

	releaseOnce()
	<-done
	if slow.Code != http.StatusOK || slow.Body.String() != "ok /slow" {
		t.Errorf("the request running across Replace got %d %q; want 200 \"ok /slow\"", slow.Code, slow.Body)
	}
	select {
	case <-old.Done():
	case <-time.After(10 * time.Second): // a safety net: Done is the signal
		t.Fatal("the old handler was not closed after its last request")
	}

	l.Close()
	if !l.Handler().IsClosed() {
		t.Error("Close left the current handler open")
	}
	cur := l.Handler()
	if _, err := l.Replace(context.Background(), opts, nil); !errors.Is(err, ErrClosed) || l.Handler() != cur {
		t.Errorf("Replace after Close = %v and swapped: %v; want ErrClosed and no swap", err, l.Handler() != cur)
	}
}
