package accesslog

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func sampleEntry(f Format) Entry {
	return Entry{
		Format:    f,
		Start:     time.Date(2026, 12, 7, 9, 5, 3, 120e6, time.FixedZone("", -5*3600-30*60)),
		Client:    netip.MustParseAddr("192.0.2.7"),
		Method:    "GET",
		URI:       "/app/a%20b?x=1",
		Proto:     "HTTP/1.1",
		Host:      "www.example.com",
		Status:    200,
		Bytes:     1234,
		Referer:   "https://www.example.com/",
		HasRef:    true,
		UserAgent: "curl/8.5.0",
		HasUA:     true,

		RequestID:       "0123456789abcdefghijklmnop",
		Listener:        "public",
		Route:           "*/app",
		Upstream:        "tomcat",
		UpstreamAddr:    netip.MustParseAddrPort("10.0.0.5:8009"),
		UpstreamConnect: 1500 * time.Microsecond,
		UpstreamHeader:  12 * time.Millisecond,
		UpstreamTotal:   13 * time.Millisecond,
		Duration:        14 * time.Millisecond,
		TLSVersion:      "TLSv1.3",
		ALPN:            "h2",
	}
}

func TestAppendLine(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Entry)
		want string
	}{
		{"combined", func(e *Entry) {},
			`192.0.2.7 - - [07/Dec/2026:09:05:03 -0530] "GET /app/a%20b?x=1 HTTP/1.1" 200 1234 "https://www.example.com/" "curl/8.5.0"` + "\n"},
		{"common", func(e *Entry) { e.Format = FormatCommon },
			`192.0.2.7 - - [07/Dec/2026:09:05:03 -0530] "GET /app/a%20b?x=1 HTTP/1.1" 200 1234` + "\n"},
		{"combined no referer, empty user agent, no body", func(e *Entry) {
			e.HasRef, e.Referer, e.UserAgent, e.Bytes, e.Status = false, "", "", 0, 304
		}, `192.0.2.7 - - [07/Dec/2026:09:05:03 -0530] "GET /app/a%20b?x=1 HTTP/1.1" 304 - "-" ""` + "\n"},
		{"escapes as ap_escape_logitem", func(e *Entry) {
			e.UserAgent = "a\"b\\c\nd\te\x01\xff"
			e.URI = "/x\"y"
		}, `192.0.2.7 - - [07/Dec/2026:09:05:03 -0530] "GET /x\"y HTTP/1.1" 200 1234 "https://www.example.com/" "a\"b\\c\nd\te\x01\xff"` + "\n"},
		{"IPv6 client, HTTP/2", func(e *Entry) {
			e.Client, e.Proto, e.Format = netip.MustParseAddr("2001:db8::1"), "HTTP/2.0", FormatCommon
		}, `2001:db8::1 - - [07/Dec/2026:09:05:03 -0530] "GET /app/a%20b?x=1 HTTP/2.0" 200 1234` + "\n"},
		{"common without a request line", func(e *Entry) {
			e.Format, e.Method, e.URI, e.Proto, e.Status, e.Bytes = FormatCommon, "", "", "", 414, 52
		}, `192.0.2.7 - - [07/Dec/2026:09:05:03 -0530] "-" 414 52` + "\n"},
		{"json", func(e *Entry) { e.Format = FormatJSON },
			`{"time":"2026-12-07T09:05:03.120-05:30","client":"192.0.2.7","method":"GET","uri":"/app/a%20b?x=1","proto":"HTTP/1.1","host":"www.example.com","status":200,"bytes":1234,"referer":"https://www.example.com/","user_agent":"curl/8.5.0","request_id":"0123456789abcdefghijklmnop","listener":"public","route":"*/app","upstream":"tomcat","upstream_addr":"10.0.0.5:8009","upstream_connect":0.001500,"upstream_header":0.012000,"upstream_total":0.013000,"duration":0.014000,"tls_version":"TLSv1.3","alpn":"h2"}` + "\n"},
		{"json without upstream or TLS", func(e *Entry) {
			*e = Entry{Format: FormatJSON, Start: e.Start.In(time.UTC), Client: e.Client, Method: "GET", URI: "/nope", Proto: "HTTP/1.1",
				Status: 404, Bytes: 50, Listener: "l", UpstreamConnect: -1, UpstreamHeader: -1, UpstreamTotal: -1, Duration: time.Microsecond}
		}, `{"time":"2026-12-07T14:35:03.120Z","client":"192.0.2.7","method":"GET","uri":"/nope","proto":"HTTP/1.1","host":"","status":404,"bytes":50,"listener":"l","duration":0.000001}` + "\n"},
		{"json escapes and replaces bad UTF-8", func(e *Entry) {
			*e = Entry{Format: FormatJSON, Start: e.Start.In(time.UTC), Method: "GET", URI: "/\"\\\n\x01\xffé",
				UpstreamConnect: -1, UpstreamHeader: -1, UpstreamTotal: -1}
		}, `{"time":"2026-12-07T14:35:03.120Z","client":null,"method":"GET","uri":"/\"\\\n\u0001\ufffdé","proto":"","host":"","status":0,"bytes":0,"listener":"","duration":0.000000}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEntry(FormatCombined)
			tt.edit(&e)
			got := string(AppendLine(nil, &e))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if e.Format == FormatJSON && !json.Valid([]byte(got)) {
				t.Errorf("not valid JSON: %s", got)
			}
		})
	}
}

func TestAppendLineAllocatesNothing(t *testing.T) {
	for _, f := range []Format{FormatCombined, FormatJSON} {
		e := sampleEntry(f)
		buf := make([]byte, 0, 4096)
		if n := testing.AllocsPerRun(100, func() { buf = AppendLine(buf[:0], &e) }); n != 0 {
			t.Errorf("%v: %v allocations per line; want 0", f, n)
		}
	}
}

// readFile reads path. The writer is asynchronous: callers call Reopen
// first, which returns once what was queued is written.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReopenAfterRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	e := sampleEntry(FormatCommon)
	e.URI = "/before"
	w.Log(&e)
	// logrotate: rename, then postrotate signals.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Reopen(); err != nil {
		t.Fatal(err)
	}
	e.URI = "/after"
	w.Log(&e)
	if err := w.Reopen(); err != nil { // flushes
		t.Fatal(err)
	}
	if old := readFile(t, path+".1"); !strings.Contains(old, "/before") || strings.Contains(old, "/after") {
		t.Errorf("rotated file holds %q; want only the line before the reopen", old)
	}
	if cur := readFile(t, path); !strings.Contains(cur, "/after") || strings.Contains(cur, "/before") {
		t.Errorf("new file holds %q; want only the line after the reopen", cur)
	}
}

func TestSetPathUnopenableKeepsWriting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	w, err := New(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.SetPath(filepath.Join(dir, "missing", "x.log")); err == nil {
		t.Fatal("SetPath to a missing directory succeeded")
	}
	e := sampleEntry(FormatCommon)
	w.Log(&e)
	w.Reopen()
	if cur := readFile(t, path); !strings.Contains(cur, "/app/") {
		t.Errorf("after a failed SetPath the file holds %q; want the line", cur)
	}
}

// blockingWriter blocks every Write until released, and says when the
// first Write has started.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	got     []byte
}

func (b *blockingWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.entered) })
	<-b.release
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, p...)
	return len(p), nil
}

func TestDroppedWhenWriterBlocked(t *testing.T) {
	reg := prometheus.NewRegistry()
	bw := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	const buffer = 4
	w, err := New(Options{Path: "stdout", Stdout: bw, Buffer: buffer, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEntry(FormatCommon)
	w.Log(&e)
	<-bw.entered // the writer holds one line and is stuck in Write
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range buffer + 3 {
			w.Log(&e) // must never wait
		}
	}()
	<-done
	if got := w.Dropped(); got != 3 {
		t.Errorf("dropped %d lines; want 3 (buffer %d full)", got, buffer)
	}
	if got := testutil.ToFloat64(w.droppedC); got != 3 {
		t.Errorf("webtier_access_log_dropped_total = %v; want 3", got)
	}
	close(bw.release)
	w.Close()
	if n := strings.Count(string(bw.got), "\n"); n != 1+buffer {
		t.Errorf("wrote %d lines; want %d", n, 1+buffer)
	}
}

type failingWriter struct{}

func (failingWriter) Write(p []byte) (int, error) { return 0, os.ErrClosed }

func TestDroppedOnWriteError(t *testing.T) {
	w, err := New(Options{Path: "stderr", Stderr: failingWriter{}})
	if err != nil {
		t.Fatal(err)
	}
	e := sampleEntry(FormatJSON)
	w.Log(&e)
	w.Log(&e)
	w.Close()
	if got := w.Dropped(); got != 2 {
		t.Errorf("dropped %d lines after failing writes; want 2", got)
	}
}
