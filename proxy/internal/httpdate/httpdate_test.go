package httpdate

import (
	"net/http"
	"testing"
	"time"
)

func TestNow(t *testing.T) {
	before := time.Now().Truncate(time.Second)
	s, b := String(), Bytes()
	after := time.Now()
	got, err := http.ParseTime(s)
	if err != nil {
		t.Fatalf("String() = %q: %v", s, err)
	}
	if got.Before(before) || got.After(after) {
		t.Errorf("String() = %q; want a time between %v and %v", s, before, after)
	}
	if len(s) != len(http.TimeFormat) || s[len(s)-3:] != "GMT" {
		t.Errorf("String() = %q; want the form of %q", s, http.TimeFormat)
	}
	if string(b) != s && time.Since(before) < time.Second {
		t.Errorf("Bytes() = %q, String() = %q within one second", b, s)
	}
}

func BenchmarkString(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		String()
	}
}
