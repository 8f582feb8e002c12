package rewrite

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// FuzzRules: whatever the path and the backend's header values, a remapped
// path stays under the target path, the response rewriting does not panic,
// and a redirect's Location carries no byte a URL may not.
func FuzzRules(f *testing.F) {
	f.Add("/shop/x", "http://10.0.0.5:8080/shop-app/a", "a=1; Path=/shop-app; Domain=x")
	f.Add("/shop%2Fx", "0;url='/shop-app", "a; path=")
	f.Add("/shopping", "/shop-app", ";;=;Path=/shop-app/")
	rs := New(Options{Prefix: "/shop", TargetPath: "/shop-app",
		Reverse: ReverseOptions{Enabled: true, Backends: []string{"10.0.0.5:8080"}, CookieDomain: []Pair{{"x", "y"}}},
		Rewrites: []Rule{{Match: regexp.MustCompile(`^/shop/r/(.*)$`), To: "/t/$1?%1", Flags: Flags{Redirect: 302},
			When: []Condition{{On: OnHeader, Header: "X-V", Match: regexp.MustCompile(`(.*)`)}}}}})
	f.Fuzz(func(t *testing.T, path, value, cookie string) {
		if p, ok := rs.Remap(path); ok && !strings.HasPrefix(p, "/shop-app") {
			t.Fatalf("Remap(%q) = %q: outside the target path", path, p)
		} else if ok && len(p) > len("/shop-app") && p[len("/shop-app")] != '/' && p[len("/shop-app")] != ';' {
			t.Fatalf("Remap(%q) = %q: the target path's last segment was extended", path, p)
		}
		r := httptest.NewRequest("GET", "http://www.example.com/", nil)
		h := http.Header{"Location": {value}, "Refresh": {value}, "Set-Cookie": {cookie}}
		rs.Response(h, "10.0.0.5:8080", Client{R: r})
		r.Header.Set("X-V", value)
		w := httptest.NewRecorder()
		if res := rs.Request(w, Client{R: r}, "/shop/r/"+strings.TrimPrefix(path, "/")); res.Answered {
			for _, c := range []byte(w.Header().Get("Location")) {
				if unsafeURLByte(c) {
					t.Fatalf("Location %q has byte %q", w.Header().Get("Location"), c)
				}
			}
		}
	})
}
