package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/webtier/webtier/config"
	httpdimport "github.com/webtier/webtier/config/httpd"
)

// import-httpd's exit status and where its outputs go, as a script sees
// them: 0 with the config on stdout and the report on stderr; 3 under
// -strict when something was approximated; 1 with file:line for a tree
// httpd would refuse; 0 and the usage for -h.
func TestImportHTTPD(t *testing.T) {
	td, err := filepath.Abs("../../config/httpd/testdata")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.yaml")
	rep := filepath.Join(t.TempDir(), "report.txt")
	for _, c := range []struct {
		name       string
		args       []string
		code       int
		stdout     string // a part of stdout
		stderr     string // a part of stderr
		file, want string // a file written, and a part of it
	}{
		{name: "help", args: []string{"-h"}, code: 0, stdout: "webtier import-httpd [-o out.yaml] [-report FILE] [-strict]"},
		{name: "no path", args: nil, code: 2, stderr: "name the main httpd config file"},
		{name: "stdout and stderr", args: []string{td + "/jk/httpd.conf"}, code: 0,
			stdout: "url: ajp://10.0.2.11:8009", stderr: "webtier import-httpd report:"},
		{name: "files", args: []string{"-o", out, "-report", rep, td + "/jk/httpd.conf"}, code: 0,
			file: out, want: "balance: sticky"},
		{name: "flags after the path", args: []string{td + "/jk/httpd.conf", "-o", out, "-report", rep}, code: 0,
			file: out, want: "balance: sticky"},
		{name: "two paths", args: []string{td + "/jk/httpd.conf", td + "/elb/httpd.conf"}, code: 2,
			stderr: "one httpd config file"},
		{name: "strict", args: []string{"-strict", "-o", out, "-report", rep, td + "/jk/httpd.conf"}, code: exitApproximated,
			stderr: "approximated", file: rep, want: "approximate httpd.conf:17: JkMount"},
		{name: "broken tree", args: []string{td + "/broken-include/httpd.conf"}, code: 1,
			stderr: `broken-include/httpd.conf:3: Include "missing.conf": no such file`},
	} {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"import-httpd"}, c.args...), &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, c.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), c.stdout) {
				t.Errorf("stdout lacks %q:\n%s", c.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, stderr.String())
			}
			if c.file != "" {
				b, err := os.ReadFile(c.file)
				if err != nil || !strings.Contains(string(b), c.want) {
					t.Errorf("%s lacks %q (%v):\n%s", c.file, c.want, err, b)
				}
			}
		})
	}
}

// Debian's stock tree (a copy of /etc/apache2) serves only files: with the
// static key it imports to a config that loads (exit 0); without it the
// command says the output does not load yet and exits 1.
func TestImportHTTPDDebian(t *testing.T) {
	main, err := filepath.Abs("../../config/httpd/testdata/debian/apache2.conf")
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"import-httpd", "-report", filepath.Join(t.TempDir(), "r.txt"), main}, &stdout, &stderr)
	parse := func(file string, data []byte) error { _, err := config.Parse(file, data); return err }
	if httpdimport.Probe(parse)(httpdimport.Static) {
		if code != 0 {
			t.Errorf("exit %d, want 0; stderr:\n%s", code, stderr.String())
		}
		return
	}
	if code != 1 || !strings.Contains(stderr.String(), "does not load yet") {
		t.Errorf("exit %d, want 1 with \"does not load yet\"; stderr:\n%s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "#     static:") {
		t.Errorf("the static routes are not in the output as comments:\n%s", stdout.String())
	}
}
