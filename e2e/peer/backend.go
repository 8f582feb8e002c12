package peer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Request is what a Backend saw of one request.
type Request struct {
	Method     string
	Host       string // the Host header as received
	RequestURI string // as received on the request line
	Proto      string
	RemoteAddr string // the proxy's side of the connection, "ip:port"
	Header     http.Header
	BodyLen    int64
}

// Backend is a real HTTP/1.1 server in this process on one loopback
// address. Every request is answered 200 with header "X-Backend: <name>"
// and body "<name>\n".
type Backend struct {
	name string
	ln   net.Listener
	srv  *http.Server
	done chan struct{} // closed when the Serve goroutine has returned

	count     atomic.Int64
	closeOnce sync.Once

	mu   sync.Mutex // guards last
	last Request
}

// StartBackend starts a Backend on ip and a free port (for example
// StartBackend(t, "127.0.0.21", "a")). It is closed in t.Cleanup.
func StartBackend(t testing.TB, ip, name string) *Backend {
	t.Helper()
	return StartBackendAt(t, net.JoinHostPort(ip, "0"), name)
}

// StartBackendAt starts a Backend listening on addr ("ip:port"; port 0
// picks a free one). It is closed in t.Cleanup.
func StartBackendAt(t testing.TB, addr, name string) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("StartBackendAt(%q, %q): %v", addr, name, err)
	}
	return serveBackend(t, ln, name)
}

// StartBackends starts one Backend per ip, all on the same free port, as the
// addresses behind one DNS name must be: DNS gives the IPs, the URL the port.
// Each backend is named after its IP (so X-Backend is "127.0.0.31").
func StartBackends(t testing.TB, ips ...string) []*Backend {
	t.Helper()
	if len(ips) == 0 {
		t.Fatalf("StartBackends: no addresses")
	}
	const attempts = 20
	for range attempts {
		lns, err := listenSamePort(ips)
		if err != nil {
			continue // the port free on ips[0] was taken on another IP; pick again
		}
		bs := make([]*Backend, len(ips))
		for i, ln := range lns {
			bs[i] = serveBackend(t, ln, ips[i])
		}
		return bs
	}
	t.Fatalf("StartBackends(%v): no port free on all addresses after %d tries", ips, attempts)
	return nil
}

func listenSamePort(ips []string) ([]net.Listener, error) {
	first, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
	if err != nil {
		return nil, err
	}
	lns := []net.Listener{first}
	port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
	for _, ip := range ips[1:] {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func serveBackend(t testing.TB, ln net.Listener, name string) *Backend {
	t.Helper()
	b := &Backend{name: name, ln: ln, done: make(chan struct{})}
	b.srv = &http.Server{
		Handler:           http.HandlerFunc(b.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		defer close(b.done)
		if err := b.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("backend %s on %s: %v", name, ln.Addr(), err)
		}
	}()
	t.Cleanup(b.Close)
	return b
}

func (b *Backend) serveHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	b.mu.Lock()
	b.last = Request{
		Method:     r.Method,
		Host:       r.Host,
		RequestURI: r.RequestURI,
		Proto:      r.Proto,
		RemoteAddr: r.RemoteAddr,
		Header:     r.Header.Clone(),
		BodyLen:    n,
	}
	b.mu.Unlock()
	b.count.Add(1)
	body := b.name + "\n"
	w.Header().Set("X-Backend", b.name)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

// Name returns the backend's name (X-Backend and body).
func (b *Backend) Name() string { return b.name }

// Addr returns "ip:port".
func (b *Backend) Addr() string { return b.ln.Addr().String() }

// IP returns the address the backend listens on.
func (b *Backend) IP() string { return b.ln.Addr().(*net.TCPAddr).IP.String() }

// Port returns the port the backend listens on.
func (b *Backend) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// URL returns "http://ip:port".
func (b *Backend) URL() string { return "http://" + b.Addr() }

// Count returns how many requests the backend has answered.
func (b *Backend) Count() int64 { return b.count.Load() }

// Last returns the most recent request the backend answered (zero Request
// if none). Its Header is a copy the caller may keep.
func (b *Backend) Last() Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	r := b.last
	r.Header = r.Header.Clone()
	return r
}

// Close stops the backend: the listener and every connection are closed,
// so later connects to its address are refused. It waits for the server
// goroutine to end and is safe to call more than once.
func (b *Backend) Close() {
	b.closeOnce.Do(func() {
		_ = b.srv.Close()
		<-b.done
	})
}

// String is for test messages.
func (b *Backend) String() string { return fmt.Sprintf("backend %s at %s", b.name, b.Addr()) }
