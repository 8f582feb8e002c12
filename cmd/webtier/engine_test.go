package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// validate prints every listener's and upstream's engine, with what
// WEBTIER_ENGINE changed, so that an operator can see the switch took.
func TestValidatePrintsEngines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webtier.yaml")
	const yaml = `listeners:
  - address: "127.0.0.1:8080"
routes:
  - upstream: app
  - path: /tc/
    upstream: tc
upstreams:
  app:
    targets: [http://10.0.0.5:8080]
  tc:
    targets: [ajp://10.0.0.6:8009]
    ajp: {secret: s3cret}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env  string
		want []string
	}{
		{env: "", want: []string{"  listener 127.0.0.1:8080: webtier\n", "  upstream app: webtier\n", "  upstream tc: webtier\n"}},
		{env: "std", want: []string{
			"  WEBTIER_ENGINE=std overrides every engine key of the file\n",
			"  listener 127.0.0.1:8080: std\n", "  upstream app: std\n",
			"  upstream tc: webtier (ajp:// has no standard-library client; webtier's AJP client stays)\n",
		}},
	}
	for _, tt := range tests {
		t.Run("WEBTIER_ENGINE="+tt.env, func(t *testing.T) {
			t.Setenv("WEBTIER_ENGINE", tt.env)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != 0 {
				t.Fatalf("validate exited %d: %s", code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("validate's output lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
	t.Run("bad value", func(t *testing.T) {
		t.Setenv("WEBTIER_ENGINE", "fast")
		var stdout, stderr bytes.Buffer
		if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != 1 {
			t.Fatalf("validate exited %d with WEBTIER_ENGINE=fast; want 1", code)
		}
		if want := `WEBTIER_ENGINE="fast" is not an engine`; !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q lacks %q", stderr.String(), want)
		}
	})
}
