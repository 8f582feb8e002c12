package headers

import (
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

func TestApply(t *testing.T) {
	vars := &Vars{ClientIP: "192.0.2.7", RequestID: "abc123", Scheme: "https", Host: "www.example.com"}
	tests := []struct {
		name   string
		dir    Direction
		opts   Options
		layers []*Rules
		in     http.Header
		want   http.Header
	}{
		{
			name:   "set replaces every field of the name",
			layers: []*Rules{{Set: []Field{{"x-app", "one"}}}},
			in:     http.Header{"X-App": {"a", "b"}},
			want:   http.Header{"X-App": {"one"}},
		},
		{
			name:   "add appends",
			layers: []*Rules{{Add: []Field{{"X-App", "two"}}}},
			in:     http.Header{"X-App": {"one"}},
			want:   http.Header{"X-App": {"one", "two"}},
		},
		{
			name:   "unset removes",
			layers: []*Rules{{Unset: []string{"x-powered-by"}}},
			dir:    Response,
			in:     http.Header{"X-Powered-By": {"PHP"}, "A": {"b"}},
			want:   http.Header{"A": {"b"}},
		},
		{
			name:   "edit replaces with captures in every value",
			dir:    Response,
			layers: []*Rules{{Edit: []Edit{{"Location", regexp.MustCompile(`^http://([^/]+)/`), "https://$1/"}}}},
			in:     http.Header{"Location": {"http://a.test/x"}},
			want:   http.Header{"Location": {"https://a.test/x"}},
		},
		{
			name:   "variables",
			layers: []*Rules{{Set: []Field{{"X-Client", "{client_ip} {request_id} {scheme}://{host}/"}}}},
			in:     http.Header{},
			want:   http.Header{"X-Client": {"192.0.2.7 abc123 https://www.example.com/"}},
		},
		{
			name: "the route's set wins over the listener's, order unset set add edit",
			layers: []*Rules{
				{Set: []Field{{"X-A", "listener"}}, Add: []Field{{"X-B", "l"}}},
				{Set: []Field{{"X-A", "route"}}, Unset: []string{"X-B"}, Add: []Field{{"X-B", "r"}}},
			},
			in:   http.Header{},
			want: http.Header{"X-A": {"route"}, "X-B": {"r"}},
		},
		{
			name: "server header replaced",
			dir:  Response,
			opts: Options{Server: ptr("webtier")},
			in:   http.Header{"Server": {"Apache-Coyote/1.1"}},
			want: http.Header{"Server": {"webtier"}},
		},
		{
			name: "server header removed",
			dir:  Response,
			opts: Options{Server: ptr("")},
			in:   http.Header{"Server": {"Apache-Coyote/1.1"}},
			want: http.Header{},
		},
		{
			name: "security headers added, backend's kept",
			dir:  Response,
			opts: Options{Security: true},
			in:   http.Header{"X-Frame-Options": {"DENY"}},
			want: http.Header{"X-Frame-Options": {"DENY"}, "Strict-Transport-Security": {HSTS},
				"X-Content-Type-Options": {"nosniff"}, "Referrer-Policy": {ReferrerPolicy}},
		},
		{
			name:   "security headers overridden by set",
			dir:    Response,
			opts:   Options{Security: true},
			layers: []*Rules{{Set: []Field{{"X-Frame-Options", "DENY"}}}},
			in:     http.Header{"X-Frame-Options": {"ALLOW-FROM x"}},
			want: http.Header{"X-Frame-Options": {"DENY"}, "Strict-Transport-Security": {HSTS},
				"X-Content-Type-Options": {"nosniff"}, "Referrer-Policy": {ReferrerPolicy}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(tt.dir, tt.opts, tt.layers...)
			if err != nil {
				t.Fatal(err)
			}
			h := tt.in.Clone()
			p.Apply(h, vars)
			if !reflect.DeepEqual(h, tt.want) {
				t.Errorf("got %v; want %v", h, tt.want)
			}
		})
	}
}

func TestApply_noHSTSOverHTTP(t *testing.T) {
	p, _ := Compile(Response, Options{Security: true})
	h := http.Header{}
	p.Apply(h, &Vars{Scheme: "http"})
	if _, ok := h["Strict-Transport-Security"]; ok {
		t.Errorf("HSTS sent over plain HTTP: %v", h)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q; want nosniff", h.Get("X-Content-Type-Options"))
	}
}

// A variable's value comes from the request: CR, LF and NUL in it must
// never split a field.
func TestApply_variableInjection(t *testing.T) {
	p, _ := Compile(Response, Options{}, &Rules{Set: []Field{{"X-Host", "{host}"}}})
	h := http.Header{}
	p.Apply(h, &Vars{Host: "evil.test\r\nSet-Cookie: a=b\x00"})
	if got := h.Get("X-Host"); got != "evil.testSet-Cookie: a=b" {
		t.Errorf("X-Host = %q; want the control characters removed", got)
	}
	if strings.ContainsAny(h.Get("X-Host"), "\r\n\x00") {
		t.Error("control character kept")
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		dir  Direction
		name string
		ok   bool
	}{
		{Request, "X-App", true},
		{Request, "Host", false},
		{Request, "content-length", false},
		{Request, "Transfer-Encoding", false},
		{Request, "Connection", false},
		{Request, "Upgrade", false},
		{Request, "TE", false},
		{Request, "X-Forwarded-For", false},
		{Request, "x-forwarded-proto", false},
		{Request, "Forwarded", false},
		{Request, "Bad Name", false},
		{Response, "Host", true},
		{Response, "Content-Length", false},
		{Response, "Connection", false},
		{Response, "Strict-Transport-Security", true},
	}
	for _, tt := range tests {
		err := Check(tt.dir, tt.name)
		if (err == nil) != tt.ok {
			t.Errorf("Check(%d, %q) = %v; want ok=%v", tt.dir, tt.name, err, tt.ok)
		}
	}
}

func TestCheckValue(t *testing.T) {
	for v, ok := range map[string]bool{
		"plain":             true,
		"{client_ip}":       true,
		"a{request_id}b":    true,
		"{clientip}":        false,
		"{host":             false,
		"line\r\nbreak":     false,
		"tab\tis allowed":   true,
		"{scheme}://{host}": true,
	} {
		if err := CheckValue(v); (err == nil) != ok {
			t.Errorf("CheckValue(%q) = %v; want ok=%v", v, err, ok)
		}
	}
}

func TestCompile_refusesSmuggling(t *testing.T) {
	for _, r := range []*Rules{
		{Set: []Field{{"X-Forwarded-For", "1.2.3.4"}}},
		{Add: []Field{{"Transfer-Encoding", "chunked"}}},
		{Unset: []string{"Connection"}},
		{Edit: []Edit{{"Host", regexp.MustCompile("a"), "b"}}},
	} {
		if _, err := Compile(Request, Options{}, r); err == nil {
			t.Errorf("Compile(%+v) = nil error; want refused", r)
		}
	}
}

func TestCompile_nothing(t *testing.T) {
	p, err := Compile(Response, Options{}, nil, &Rules{})
	if p != nil || err != nil {
		t.Errorf("Compile of no rules = %v, %v; want nil, nil", p, err)
	}
}
