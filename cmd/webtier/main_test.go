package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every way of asking for help prints the whole usage, commands and
// reload included, on stdout, and exits 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"-help"}, {"--help"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(args, &stdout, &stderr); code != 0 {
				t.Errorf("exit code %d; want 0 (stderr %q)", code, stderr.String())
			}
			for _, want := range []string{"webtier validate -config FILE", "webtier demo", "kill -HUP PID"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("usage does not mention %q:\n%s", want, stdout.String())
				}
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"serve"}, &stdout, &stderr); code != 2 {
		t.Errorf("exit code %d; want 2", code)
	}
	if !strings.Contains(stderr.String(), `unknown command "serve"`) || !strings.Contains(stderr.String(), "usage:") {
		t.Errorf("stderr = %q; want the unknown command named and the usage", stderr.String())
	}
}

// TestValidatePositional: "webtier validate FILE" checks FILE as -config
// FILE does; two files, or a file with -config, are a usage error.
func TestValidatePositional(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	conf := "listeners: [{address: \"127.0.0.1:8080\"}]\nroutes: [{path: /, upstream: app}]\nupstreams: {app: {targets: [\"http://127.0.0.1:9\"]}}\n"
	if err := os.WriteFile(good, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(conf+"upstreams_typo: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{[]string{"validate", good}, 0, "is valid"},
		{[]string{"validate", bad}, 1, "upstreams_typo"},
		{[]string{"validate", good, bad}, 2, "-config FILE"},
		{[]string{"validate", "-config", good, bad}, 2, "-config FILE"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String()+stderr.String(), tt.want) {
			t.Errorf("webtier %s: exit %d, output %q; want exit %d and %q", strings.Join(tt.args, " "), code, stdout.String()+stderr.String(), tt.code, tt.want)
		}
	}
}
