package errpage

import (
	"net/http/httptest"
	"strconv"
	"testing"
)

func TestPagesWrite(t *testing.T) {
	listener := map[int]Page{
		404: NewPage("/etc/webtier/404.html", []byte("<p>gone {request_id}</p>")),
		502: NewPage("/etc/webtier/502.html", []byte("listener 502")),
	}
	route := map[int]Page{
		502: NewPage("/etc/webtier/route.txt", []byte("route 502 {request_id} {request_id}")),
	}
	p := New(false, listener, route)
	tests := []struct {
		status   int
		id       string
		ok       bool
		body, ct string
	}{
		{404, "abc", true, "<p>gone abc</p>", "text/html; charset=utf-8"},
		{502, "abc", true, "route 502 abc abc", "text/plain; charset=utf-8"}, // the route's wins
		{502, "", true, "route 502  ", "text/plain; charset=utf-8"},
		{503, "abc", false, "", ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		if got := p.Write(w, tt.status, tt.id); got != tt.ok {
			t.Fatalf("Write(%d) = %v; want %v", tt.status, got, tt.ok)
		}
		if !tt.ok {
			continue
		}
		if w.Code != tt.status || w.Body.String() != tt.body || w.Header().Get("Content-Type") != tt.ct {
			t.Errorf("Write(%d) = %d %q %q; want %d %q %q", tt.status, w.Code, w.Body.String(),
				w.Header().Get("Content-Type"), tt.status, tt.body, tt.ct)
		}
		if cl := w.Header().Get("Content-Length"); cl != strconv.Itoa(len(tt.body)) {
			t.Errorf("Content-Length %s; want %d", cl, len(tt.body))
		}
	}
	if New(true) != nil || New(false, nil, map[int]Page{}) != nil {
		t.Error("no pages: want nil")
	}
	var none *Pages
	if none.Has(404) || none.Write(httptest.NewRecorder(), 404, "x") {
		t.Error("a nil Pages answered")
	}
}
