package httplex

import (
	"net/http"
	"strings"
	"testing"
)

var testNames = []string{
	"", "ETag", "etag", "ETAG", "Etag", "content-type", "CONTENT-LENGTH",
	"x-request-id", "WWW-Authenticate", "x-forwarded-for", "dnt", "TE", "p3p",
	"keep-alive", "close", "x-custom-header", "X-CUSTOM", "a", "A-", "-a", "a--b",
	"x_under_score", "x-amzn-trace-id", "accept-encoding", "sec-ch-ua-mobile",
	"bad name", "bad:name", "ünicode", "tab\tname", "x-1-2",
	strings.Repeat("x-long-", 6) + "name", // longer than the stack buffer
}

func TestCanonical(t *testing.T) {
	all := append([]string(nil), testNames...)
	for _, n := range names {
		all = append(all, n, strings.ToLower(n), strings.ToUpper(n))
	}
	for _, n := range all {
		if got, want := Canonical(n), http.CanonicalHeaderKey(n); got != want {
			t.Errorf("Canonical(%q) = %q, want %q (http.CanonicalHeaderKey)", n, got, want)
		}
	}
}

// TestCommon guards the list against a typo: a name that is not canonical
// would never be found.
func TestCommon(t *testing.T) {
	for _, n := range names {
		if c := http.CanonicalHeaderKey(n); c != n {
			t.Errorf("names has %q; its canonical form is %q", n, c)
		}
		if l := Lower(n); l != strings.ToLower(n) {
			t.Errorf("Lower(%q) = %q", n, l)
		}
	}
	if l := Lower("X-Not-Common"); l != "x-not-common" {
		t.Errorf("Lower(X-Not-Common) = %q", l)
	}
}

func TestCanonicalAllocs(t *testing.T) {
	for _, n := range []string{"ETag", "keep-alive", "user-agent", "Content-Type"} {
		if a := testing.AllocsPerRun(100, func() { _ = Canonical(n) }); a != 0 {
			t.Errorf("Canonical(%q): %v allocations, want 0", n, a)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	for _, n := range testNames {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Canonical(s), http.CanonicalHeaderKey(s); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", s, got, want)
		}
	})
}

func TestValidToken(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"GET", true}, {"X-Custom_1.2", true}, {"!#$%&'*+-.^_`|~", true},
		{"", false}, {"a b", false}, {"a:b", false}, {"a\tb", false},
		{"(x)", false}, {"ü", false}, {"a\x7f", false}, {"{x}", false},
	} {
		if got := ValidToken(tc.s); got != tc.want {
			t.Errorf("ValidToken(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
	for c := 0; c < 256; c++ {
		want := c > ' ' && c < 0x7f && !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, rune(c))
		if got := IsTokenByte(byte(c)); got != want {
			t.Errorf("IsTokenByte(%#x) = %v, want %v", c, got, want)
		}
	}
}
