package h2

import (
	"net/url"
	"reflect"
	"testing"
)

// FuzzParsePlainPath checks that the fast path gives the handler the very
// URL url.ParseRequestURI would, for every path it accepts.
func FuzzParsePlainPath(f *testing.F) {
	for _, p := range []string{
		"/", "/a/b", "/a/b?x=1&y=2", "/a?", "/a?b?c", "/%41", "/a b", "/a!",
		"//host/p", "/a;b=c,d", "/a?x=%zz", "/a#f", "/a?b#c", "/\x7f", "/é",
		"/a?\x01", "/$&+,:;=@-_.~", "/a?q=é",
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		var got url.URL
		if !parsePlainPath(p, &got) {
			return
		}
		want, err := url.ParseRequestURI(p)
		if err != nil {
			t.Fatalf("parsePlainPath(%q) accepted what ParseRequestURI refuses: %v", p, err)
		}
		if !reflect.DeepEqual(&got, want) {
			t.Fatalf("parsePlainPath(%q) = %#v; ParseRequestURI: %#v", p, got, *want)
		}
	})
}

func TestParsePlainPathFallsBack(t *testing.T) {
	for _, p := range []string{"", "*", "a/b", "/%41", "/a?", "/a b", "/a#f", "/a!", "/a?b c", "/é"} {
		var u url.URL
		if parsePlainPath(p, &u) {
			t.Errorf("parsePlainPath(%q) = true (%#v); want it left to url.ParseRequestURI", p, u)
		}
	}
	var u url.URL
	if !parsePlainPath("/a/b?x=1", &u) || u.Path != "/a/b" || u.RawQuery != "x=1" {
		t.Errorf("parsePlainPath(/a/b?x=1) = %#v", u)
	}
}
