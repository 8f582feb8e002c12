package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ajpConfig is a config with one upstream; upstream is its YAML, indented
// under "upstreams: app:".
func ajpConfig(upstream string) string {
	return "listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams:\n  app:\n" + upstream
}

// The secret must reach the options but never an error message or a dump.
func TestAJPSecretNeverShown(t *testing.T) {
	const secret = "hunter2-do-not-print"
	dir := t.TempDir()
	twoLines := filepath.Join(dir, "two-lines.secret")
	if err := os.WriteFile(twoLines, []byte(secret+"\n"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.secret")
	if err := os.WriteFile(good, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := map[string]string{
		"inline": "    ajp: {secret: " + secret + "}\n    targets: [ajp://10.0.0.1]\n",
		"file":   "    ajp: {secret_file: " + good + "}\n    targets: [ajp://10.0.0.1]\n",
	}
	for name, up := range valid {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse(goldenFile, []byte(ajpConfig(up)))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if got := cfg.Proxy.Upstreams[0].AJP.Secret; got != secret {
				t.Errorf("AJP.Secret = %q; want %q", got, secret)
			}
			if d := dump(cfg); strings.Contains(d, secret) || !strings.Contains(d, "AJP.Secret: <set>") {
				t.Errorf("dump shows the secret or not <set>:\n%s", d)
			}
		})
	}
	invalid := map[string]string{
		"http targets":      "    ajp: {secret: " + secret + "}\n    targets: [http://10.0.0.1]\n",
		"both":              "    ajp: {secret: " + secret + ", secret_file: " + good + "}\n    targets: [ajp://10.0.0.1]\n",
		"line break":        "    ajp:\n      secret: |\n        " + secret + "\n    targets: [ajp://10.0.0.1]\n",
		"tab":               "    ajp: {secret: \"" + secret + "\\t\"}\n    targets: [ajp://10.0.0.1]\n",
		"file two lines":    "    ajp: {secret_file: " + twoLines + "}\n    targets: [ajp://10.0.0.1]\n",
		"mixed targets":     "    ajp: {secret: " + secret + "}\n    targets: [ajp://10.0.0.1, http://10.0.0.2]\n",
		"other errors":      "    ajp: {secret: " + secret + ", packet_size: 1, cping_idle: -1s}\n    targets: [ajp://10.0.0.1]\n",
		"secret as mapping": "    ajp: {secret: {" + secret + ": " + secret + "}}\n    targets: [ajp://10.0.0.1]\n",
		"secret as list":    "    ajp: {secret: [" + secret + "]}\n    targets: [ajp://10.0.0.1]\n",
		"ajp as string":     "    ajp: " + secret + "\n    targets: [ajp://10.0.0.1]\n",
		"health check keys": "    ajp: {secret: " + secret + "}\n    health_check: {path: /}\n    targets: [ajp://10.0.0.1]\n",
	}
	for name, up := range invalid {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(goldenFile, []byte(ajpConfig(up)))
			if err == nil {
				t.Fatal("Parse succeeded; want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error shows the secret:\n%v", err)
			}
		})
	}
}

// secret_file is read relative to the config file's directory, without one
// trailing line break (LF or CRLF).
func TestAJPSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct{ data, want string }{
		{"s3cret\n", "s3cret"},
		{"s3cret\r\n", "s3cret"},
		{"s3cret", "s3cret"},
		{"with space \n", "with space "},
	}
	for _, tt := range tests {
		write("ajp.secret", tt.data)
		write("webtier.yaml", ajpConfig("    ajp: {secret_file: ajp.secret}\n    targets: [ajp://10.0.0.1]\n"))
		cfg, err := Load(filepath.Join(dir, "webtier.yaml")) // the working directory is config/
		if err != nil {
			t.Fatalf("Load(%q): %v", tt.data, err)
		}
		if got := cfg.Proxy.Upstreams[0].AJP.Secret; got != tt.want {
			t.Errorf("secret file %q: AJP.Secret = %q; want %q", tt.data, got, tt.want)
		}
	}
	for _, data := range []string{"", "\n", "\r\n", "s3cret\n\n", strings.Repeat("x", maxSecretFile+1)} {
		write("ajp.secret", data)
		_, err := Load(filepath.Join(dir, "webtier.yaml"))
		if want := filepath.Join(dir, "ajp.secret"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("secret file %.20q: Load error = %v; want one naming %s", data, err, want)
		}
	}

	// The golden case ajp_secret_file reads testdata/ajp.secret.
	data, err := os.ReadFile("testdata/ajp_secret_file.txt")
	if err != nil {
		t.Fatal(err)
	}
	input, _, _ := strings.Cut(string(data), separator)
	cfg, err := Parse(goldenFile, []byte(input+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	const known = "tomcat-ajp-known-secret"
	if got := cfg.Proxy.Upstreams[0].AJP.Secret; got != known {
		t.Errorf("AJP.Secret = %q; want %q from testdata/ajp.secret", got, known)
	}
	if strings.Contains(string(data), known) {
		t.Errorf("testdata/ajp_secret_file.txt shows the secret")
	}
}
