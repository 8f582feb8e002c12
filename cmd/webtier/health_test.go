package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// webtier health exits 0 on a 2xx and 1 on anything else, with one line
// that says why: what Docker shows in `docker inspect` for the HEALTHCHECK.
func TestHealth(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/draining", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/hang", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv := httptest.NewServer(mux) // on 127.0.0.1
	defer srv.Close()
	defer close(release)
	dead := httptest.NewServer(mux)
	deadURL := dead.URL
	dead.Close()

	for _, tc := range []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "200", args: []string{"-url", srv.URL + "/ok"}, wantCode: 0, wantStdout: "200 OK"},
		{name: "204", args: []string{"-url", srv.URL + "/empty"}, wantCode: 0, wantStdout: "204 No Content"},
		{name: "503-draining", args: []string{"-url", srv.URL + "/draining"}, wantCode: 1, wantStderr: "answered 503 Service Unavailable; want 2xx"},
		{name: "redirect-not-followed", args: []string{"-url", srv.URL + "/moved"}, wantCode: 1, wantStderr: "answered 302 Found"},
		{name: "refused", args: []string{"-url", deadURL + "/ok"}, wantCode: 1, wantStderr: "connection refused"},
		{name: "timeout", args: []string{"-url", srv.URL + "/hang", "-timeout", "50ms"}, wantCode: 1, wantStderr: "deadline exceeded"},
		{name: "bad-url", args: []string{"-url", "http://127.0.0.1:bad/"}, wantCode: 1, wantStderr: "invalid port"},
		{name: "bad-timeout", args: []string{"-url", srv.URL + "/ok", "-timeout", "0s"}, wantCode: 2, wantStderr: "usage: webtier health"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"health"}, tc.args...), &stdout, &stderr)
			if code != tc.wantCode {
				t.Errorf("exit code %d; want %d (stdout %q, stderr %q)", code, tc.wantCode, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tc.wantStdout) {
				t.Errorf("stdout = %q; want it to contain %q", stdout.String(), tc.wantStdout)
			}
			if !strings.Contains(stderr.String(), tc.wantStderr) {
				t.Errorf("stderr = %q; want it to contain %q", stderr.String(), tc.wantStderr)
			}
			// One line, on the stream the exit code goes with.
			out := stdout.String()
			if code != 0 {
				out = stderr.String()
			}
			if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
				t.Errorf("output %q; want exactly one line", out)
			}
		})
	}
}
