package proxytest

import (
	"strings"
	"sync"
	"testing"
	"time"
)

// LineSink is an io.Writer that hands out what is written to it line by
// line, as it is written: the access log's output in tests.
type LineSink struct {
	mu    sync.Mutex
	buf   string
	lines chan string
}

// NewLineSink returns an empty sink that holds up to 100 unread lines.
func NewLineSink() *LineSink { return &LineSink{lines: make(chan string, 100)} }

func (s *LineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf += string(p)
	for {
		i := strings.IndexByte(s.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		s.lines <- s.buf[:i]
		s.buf = s.buf[i+1:]
	}
}

// Next returns the next line, failing t if none comes within 10 s.
func (s *LineSink) Next(t testing.TB) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line written")
		return ""
	}
}
