package config

import (
	"strings"
	"testing"
)

// Issue 15, defaults review: a target URL with userinfo was answered with
// an unrelated message ("write an IPv6 address in brackets") that echoed
// the password. The error names file, line and key, says userinfo is not
// supported, and never shows the password.
func TestTargetUserinfoNotShown(t *testing.T) {
	for _, url := range []string{
		"http://user:S3cretPW@app.internal:8080",
		"http://user:S3cretPW@app.internal",
		"https://user:S3c/ret?PW@app.internal:8443",
		"http://user:S3cretPW@[2001:db8::1]:8080",
		"ajp://user:S3cretPW@tomcat.internal:8009",
	} {
		// The ajp key is read for ajp:// targets only, and needs a secret.
		cfg := "listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams:\n  app:\n    targets:\n      - " + url + "\n"
		if strings.HasPrefix(url, "ajp") {
			cfg += "    ajp: {secret: x}\n"
		}
		_, err := Parse("webtier.yaml", []byte(cfg))
		if err == nil {
			t.Errorf("%s: no error; want one", url)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, "webtier.yaml:6: upstreams.app.targets[0]: has a user:password@ part (not shown), and userinfo is not supported") {
			t.Errorf("%s: error %q; want it to name webtier.yaml:6, the key and that userinfo is not supported", url, msg)
		}
		if strings.Contains(msg, "S3c") || strings.Contains(msg, "ret?PW") {
			t.Errorf("%s: error %q shows the password", url, msg)
		}
	}
}
