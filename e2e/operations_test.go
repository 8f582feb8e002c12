package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"github.com/webtier/webtier/e2e/peer"
)

// Issue 19, access log and metrics, as a sysadmin meets them: every
// request has a common-format line in the access log file, with the
// request id the backend got; logrotate's rename and SIGUSR1 move new
// lines to a new file; the admin listener serves metrics that pass the
// Prometheus linter and count the requests.
func TestAccessLogReopenAndMetrics(t *testing.T) {
	a := peer.StartBackend(t, "127.0.0.1", "a")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	w, adminURL := startAdminWebtier(t, []string{"http://" + a.Addr()}, "", "",
		fmt.Sprintf("access_log:\n  format: json\n  path: %q\n", logPath))
	listen := w.Addr()

	get := func(url string) string {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
		}
		return string(b)
	}
	get(w.URL() + "/one")
	firstID := a.Last().Header.Get("X-Request-Id")
	if firstID == "" {
		t.Fatal("the backend got no X-Request-Id")
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := w.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	w.WaitLog(t, "access log reopened")
	get(w.URL() + "/two")

	metrics := get(adminURL + "/metrics")
	problems, err := promlint.New(strings.NewReader(metrics)).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	for _, want := range []string{
		`webtier_http_requests_total{code="2xx",listener="` + listen + `",route="*/",upstream="app"} 2`,
		`webtier_access_log_dropped_total 0`,
		`webtier_upstream_addresses{state="running",upstream="app"} 1`,
		`webtier_config_reloads_total{result="ok"} 0`,
		`webtier_config_info{hash="`,
		`webtier_build_info{`,
		`go_goroutines `,
		`process_resident_memory_bytes `,
		`webtier_http_request_duration_seconds_count{listener="` + listen + `",route="*/",upstream="app"} 2`,
		`webtier_upstream_response_header_seconds_count{upstream="app"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := w.Stop(t); err != nil { // writes what is queued
		t.Fatalf("webtier exit: %v", err)
	}
	old, _ := os.ReadFile(logPath + ".1")
	cur, _ := os.ReadFile(logPath)
	if !strings.Contains(string(old), `"uri":"/one"`) || strings.Contains(string(old), `"uri":"/two"`) {
		t.Errorf("rotated file:\n%s\nwant only the line of /one", old)
	}
	if !strings.Contains(string(old), `"request_id":"`+firstID+`"`) {
		t.Errorf("rotated file:\n%s\nwant the request id the backend got, %s", old, firstID)
	}
	if !regexp.MustCompile(`"uri":"/two".*"status":200`).Match(cur) || strings.Contains(string(cur), `"uri":"/one"`) {
		t.Errorf("new file after SIGUSR1:\n%s\nwant only the line of /two", cur)
	}
}

// The attacker's side of the access log and the request id (issue 19): a
// client that sends quotes and non-ASCII bytes in its headers to forge a
// second access log line or break the fields gets one line with them
// escaped as httpd escapes them, and a client's own X-Request-Id (two of
// them here) never reaches the backend: it gets the id webtier made.
func TestAttackAccessLogInjection(t *testing.T) {
	a := peer.StartBackend(t, "127.0.0.1", "a")
	listen := peer.FreeAddr(t, "127.0.0.1")
	logPath := filepath.Join(t.TempDir(), "access.log")
	w := peer.StartWebtier(t, peer.Build(t), listen, attackConfig(listen, "", []string{"http://" + a.Addr()}, "",
		fmt.Sprintf("access_log:\n  format: combined\n  path: %q\n", logPath)))
	raw := "GET /x HTTP/1.1\r\nHost: a\r\n" +
		"User-Agent: evil\" 200 1 \"-\" \"forged\xff\\\r\n" +
		"Referer: \"\r\n" +
		"X-Request-Id: forged-1\r\nX-Request-Id: forged-2\r\n\r\n"
	if h := attack(t, w.Addr(), raw, false); h.first() != 200 {
		t.Fatalf("attack answered %v; want 200", h)
	}
	// An over-long request line, answered by webtier itself, is logged
	// too, without the line it refused.
	if h := attack(t, w.Addr(), "GET /"+strings.Repeat("a", 9000)+" HTTP/1.1\r\nHost: a\r\n\r\n", true); h.first() != 414 {
		t.Fatalf("long request line answered %v; want 414", h)
	}
	got := a.Last().Header["X-Request-Id"]
	if len(got) != 1 || !regexp.MustCompile(`^[0-9a-v]{26}$`).MatchString(got[0]) {
		t.Errorf("backend got X-Request-Id %q; want one id made by webtier", got)
	}
	if err := w.Stop(t); err != nil {
		t.Fatalf("webtier exit: %v", err)
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	want := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "GET /x HTTP/1\.1" 200 2 "\\"" "evil\\" 200 1 \\"-\\" \\"forged\\xff\\\\"$`)
	want414 := regexp.MustCompile(`^127\.0\.0\.1 - - \[[^]]+\] "-" 414 \d+ "-" "-"$`)
	if len(lines) != 2 || !want.MatchString(lines[0]) || !want414.MatchString(lines[1]) {
		t.Errorf("access log:\n%s\nwant two lines matching %s and %s", b, want, want414)
	}
}

// The request id reaches Tomcat over AJP twice: as the X-Request-Id
// header, and, with request_id.ajp_attribute, as a request attribute the
// servlet reads with getAttribute (the connector's
// allowedRequestAttributesPattern allows X_.*); both carry the id in the
// access log line.
func TestAJPRequestIDAttribute(t *testing.T) {
	tc := startTomcat(t, peer.TomcatOptions{})
	logPath := filepath.Join(t.TempDir(), "access.log")
	w := startAJPWebtier(t, tc.Secret(), []string{"ajp://" + tc.AJPAddr()},
		fmt.Sprintf("request_id:\n  ajp_attribute: X_REQUEST_ID\naccess_log:\n  format: json\n  path: %q\n", logPath), "")
	req := newRequest(t, "GET", w.URL()+peer.EchoPath, nil)
	req.Header.Set("X-Echo-Attrs", "X_REQUEST_ID")
	e := echo(t, ajpClient(t), req)
	attr := e.Attributes["X_REQUEST_ID"]
	if !regexp.MustCompile(`^[0-9a-v]{26}$`).MatchString(attr) {
		t.Fatalf("Tomcat's request attribute X_REQUEST_ID = %q; want an id made by webtier (attributes %v)", attr, e.Attributes)
	}
	var header string
	for _, h := range e.Headers {
		if strings.EqualFold(h[0], "X-Request-Id") {
			header = h[1]
		}
	}
	if header != attr {
		t.Errorf("X-Request-Id header %q, attribute %q; want the same id", header, attr)
	}
	if err := w.Stop(t); err != nil {
		t.Fatalf("webtier exit: %v", err)
	}
	b, _ := os.ReadFile(logPath)
	if !strings.Contains(string(b), `"request_id":"`+attr+`"`) || !strings.Contains(string(b), `"upstream":"tomcat"`) {
		t.Errorf("access log:\n%s\nwant the line with request_id %s", b, attr)
	}
}
