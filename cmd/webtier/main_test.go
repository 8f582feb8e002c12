package main

import (
	"bytes"
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
