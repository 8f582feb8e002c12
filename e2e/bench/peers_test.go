package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteTomcat: the ajp suite's Tomcat is e2e/peer's CATALINA_BASE with
// the benchmark's connector settings, JVM flags and static file.
func TestWriteTomcat(t *testing.T) {
	dir := t.TempDir()
	argv, _, err := writeTomcat(&env{ajpPort: 8009}, dir, 8080, 0)
	if err != nil {
		t.Fatal(err)
	}
	for file, subs := range map[string][]string{
		"conf/server.xml": {
			`port="8080" protocol="HTTP/1.1"`, `keepAliveTimeout="120000" maxKeepAliveRequests="-1" acceptCount="4096"/>`,
			`port="8009" protocol="AJP/1.3"`, `secret="` + ajpSecret + `"`, "tomcatAuthentication=\"false\"\n               acceptCount=\"4096\"/>",
		},
		"bin/setenv.sh":        {`JAVA_OPTS="` + tomcatJavaOpts + `"`},
		"webapps/ROOT/100.txt": {strings.Repeat("x", 99) + "\n"},
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, sub := range subs {
			if !strings.Contains(string(b), sub) {
				t.Errorf("%s lacks %q:\n%s", file, sub, b)
			}
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "webapps/ROOT/100.txt")); err != nil || fi.Size() != 100 {
		t.Errorf("100.txt: %v, %v", fi, err)
	}
	if got := strings.Join(argv, " "); !strings.Contains(got, "CATALINA_BASE="+dir) || !strings.HasSuffix(got, "catalina.sh run") {
		t.Errorf("argv = %q", got)
	}
}
