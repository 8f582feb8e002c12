package h2

// Conformance against h2spec (github.com/summerwind/h2spec), an
// independent implementation of RFC 9113's and RFC 7541's test cases. It
// needs the h2spec binary, which the module does not depend on: the test is
// skipped unless WT_H2SPEC names it (e2e/test.sh builds it).

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// h2specTimeout bounds the whole h2spec run (about 150 cases, a few seconds
// when they pass; each failing case may wait for its -o timeout).
const h2specTimeout = 5 * time.Minute

// h2specReport is the part of h2spec's JUnit report the test reads.
type h2specReport struct {
	Suites []struct {
		Name  string `xml:"name,attr"`
		Cases []struct {
			Desc    string    `xml:"classname,attr"`
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
			Skipped *struct{} `xml:"skipped"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

func TestH2Spec(t *testing.T) {
	bin := os.Getenv("WT_H2SPEC")
	if bin == "" {
		t.Skip("WT_H2SPEC does not name an h2spec binary")
	}
	e := h2tStart(t, &Server{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// h2spec sends bodies and expects them read (flow control, 8.1).
		io.Copy(io.Discard, r.Body) //nolint:errcheck // a reset stream fails it
		// At least 5 bytes: h2spec skips its flow-control cases (6.9.1,
		// 6.9.2, 6.5.3) on a response body too short to split.
		io.WriteString(w, "h2spec response body\n")
	}))
	_, port, err := net.SplitHostPort(e.addr)
	if err != nil {
		t.Fatalf("listener address %q: %v", e.addr, err)
	}
	report := filepath.Join(t.TempDir(), "h2spec.xml")
	ctx, cancel := context.WithTimeout(context.Background(), h2specTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-t", "-k", "-h", "127.0.0.1", "-p", port, "-o", "5", "-j", report)
	out, runErr := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("h2spec did not finish within %v:\n%s", h2specTimeout, out)
	}
	// h2spec exits 1 when a case fails; the report says which.
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		t.Fatalf("running %s: %v", bin, runErr)
	}
	raw, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("reading h2spec's report (exit: %v): %v\n%s", runErr, err, out)
	}
	var rep h2specReport
	if err := xml.Unmarshal(raw, &rep); err != nil {
		t.Fatalf("parsing h2spec's report %s: %v", report, err)
	}
	var failed []string
	total := 0
	for _, s := range rep.Suites {
		for i, c := range s.Cases {
			total++
			if c.Failure != nil || c.Error != nil {
				failed = append(failed, fmt.Sprintf("%s #%d: %s", s.Name, i+1, c.Desc))
			}
		}
	}
	if summary := regexp.MustCompile(`\d+ tests, \d+ passed, \d+ skipped, \d+ failed`).Find(out); summary != nil {
		t.Logf("h2spec: %s", summary)
	}
	if total == 0 {
		t.Fatalf("h2spec's report lists no test case (exit: %v):\n%s", runErr, out)
	}
	if len(failed) > 0 {
		t.Fatalf("h2spec: %d of %d cases failed:\n%s\n\nh2spec output:\n%s", len(failed), total, strings.Join(failed, "\n"), out)
	}
	if runErr != nil {
		t.Fatalf("h2spec failed with no failing case in its report: %v\n%s", runErr, out)
	}
}
