package proxy

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/webtier/webtier/proxy/upstream"
)

// Live is the Handler a server's listeners serve with, and its life: it
// builds the Handler, swaps in a new one on a reload, counts the requests
// each one serves, and closes a swapped-out Handler when its last request
// ends, however long that takes (a WebSocket may hold it for hours), so
// that no request fails because of a reload. A listener serves Front(i);
// the server that owns the listeners needs nothing else of the Handler.
type Live struct {
	log *zap.Logger
	cur atomic.Pointer[Handler]

	mu       sync.Mutex // guards closed and retiring, and serializes swaps (not loads)
	closed   bool
	retiring map[*Handler]struct{} // swapped out, still serving requests
}

// ErrClosed is returned by Replace once Close has run.
var ErrClosed = errors.New("proxy: handler closed")

// NewLive builds the Handler for opts (see NewHandler).
func NewLive(opts Options, res upstream.Resolver, log *zap.Logger) (*Live, error) {
	if log == nil {
		log = zap.NewNop()
	}
	h, err := NewHandler(opts, res, log)
	if err != nil {
		return nil, err
	}
	l := &Live{log: log, retiring: map[*Handler]struct{}{}}
	h.hold() // Live's reference, dropped when h is swapped out
	l.cur.Store(h)
	return l, nil
}

// Handler returns the current Handler, without a reference: for tests and
// for reading its pools, not for serving a request (Front does that).
func (l *Live) Handler() *Handler { return l.cur.Load() }

// acquire returns the current handler with a reference taken for one
// request; the caller releases it when the request is done. The reference
// is taken before the pointer is checked again, so a Replace that swapped
// the handler meanwhile is retried here, and one that swaps it later drops
// Live's reference only after this one was counted: the old handler is
// never closed under a request.
func (l *Live) acquire() *Handler {
	for {
		h := l.cur.Load()
		h.hold()
		if l.cur.Load() == h {
			return h
		}
		h.release()
	}
}

// Front returns what listener i of Options.Listeners serves: each request
// goes to the Handler current when it starts, and holds it until it ends.
func (l *Live) Front(i int) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := l.acquire()
		defer h.release()
		h.Front(i).ServeHTTP(w, r)
	})
}

// Rejected logs and counts, for listener i, a request the front server
// answered itself (see Handler.Rejected), with the Handler current now.
func (l *Live) Rejected(i int, r *http.Request, status, bytes int) {
	h := l.acquire()
	defer h.release()
	h.Rejected(i, r, status, bytes)
}

// Replace builds a Handler for opts and swaps it in: requests that start
// afterwards use it, with the same resolver cache; requests already started
// finish on the old one, which closes after the last of them.
//
// Before the swap Replace waits, until ctx is done, for the new upstreams'
// named targets to get their first DNS answer: until then a new pool has no
// address and would answer 502. It returns the targets still unanswered
// ("upstream: host"), and swaps the new Handler in anyway, as it would be
// served at start. After Close it returns ErrClosed and changes nothing.
func (l *Live) Replace(ctx context.Context, opts Options, res upstream.Resolver) (missing []string, err error) {
	h, err := NewHandler(opts, res, l.log)
	if err != nil {
		return nil, err
	}
	missing = h.waitAnswers(ctx)
	h.hold()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		h.Close()
		return nil, ErrClosed
	}
	prev := l.cur.Swap(h)
	for r := range l.retiring {
		if r.IsClosed() {
			delete(l.retiring, r)
		}
	}
	l.retiring[prev] = struct{}{}
	l.mu.Unlock()
	// Live's reference; prev's last request closes it, or this does if
	// none is running.
	prev.release()
	return missing, nil
}

// Close closes the current Handler and every swapped-out one still
// serving: their pools stop under any request still running (the server
// calls it once its listeners have shut down). Replace fails afterwards.
func (l *Live) Close() {
	l.mu.Lock()
	l.closed = true
	hs := []*Handler{l.cur.Load()}
	for h := range l.retiring {
		hs = append(hs, h)
	}
	l.mu.Unlock()
	for _, h := range hs {
		h.Close()
	}
}
