package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/webtier/webtier/proxy"
)

// engineYAML has a listener and an HTTP upstream on the default engine, and
// an AJP upstream.
const engineYAML = `listeners:
  - address: ":8080"
routes:
  - upstream: app
  - path: /tc/
    upstream: tomcat
upstreams:
  app:
    targets: [http://10.0.0.5:8080]
    engine: webtier
  tomcat:
    targets: [ajp://10.0.0.6:8009]
    ajp: {secret: s3cret}
`

// TestEngineEnvOverride: WEBTIER_ENGINE, read by Load, sets the engine of
// every listener and HTTP upstream whatever the file says; AJP upstreams
// keep their client and are listed; a bad value is an error naming the
// variable; unset, the file decides.
func TestEngineEnvOverride(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webtier.yaml")
	if err := os.WriteFile(path, []byte(engineYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		env              string
		wantListener     proxy.Engine
		wantApp, wantAJP proxy.Engine
		wantKept         []string
		wantErr          string
	}{
		{env: "", wantListener: proxy.EngineWebtier, wantApp: proxy.EngineWebtier, wantAJP: proxy.EngineWebtier},
		{env: "std", wantListener: proxy.EngineStd, wantApp: proxy.EngineStd, wantAJP: proxy.EngineWebtier, wantKept: []string{"tomcat"}},
		{env: "webtier", wantListener: proxy.EngineWebtier, wantApp: proxy.EngineWebtier, wantAJP: proxy.EngineWebtier},
		{env: "Std", wantErr: `WEBTIER_ENGINE="Std" is not an engine; set it to std`},
	}
	for _, tt := range tests {
		t.Run("WEBTIER_ENGINE="+tt.env, func(t *testing.T) {
			t.Setenv(EngineEnv, tt.env)
			cfg, err := Load(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load = %v; want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := cfg.Proxy.Listeners[0].Engine; got != tt.wantListener {
				t.Errorf("listener engine = %q; want %q", got, tt.wantListener)
			}
			if got := cfg.Proxy.Upstreams[0].Engine; got != tt.wantApp {
				t.Errorf("upstream app engine = %q; want %q", got, tt.wantApp)
			}
			if got := cfg.Proxy.Upstreams[1].Engine; got != tt.wantAJP {
				t.Errorf("upstream tomcat (ajp) engine = %q; want %q", got, tt.wantAJP)
			}
			if got := cfg.Engine.KeptAJP; !slices.Equal(got, tt.wantKept) {
				t.Errorf("KeptAJP = %q; want %q", got, tt.wantKept)
			}
			if got := cfg.Engine.Engine; got != proxy.Engine(tt.env) {
				t.Errorf("Engine.Engine = %q; want %q", got, tt.env)
			}
		})
	}
}

// TestEngineEnvOverridesFile: the override wins over an engine written in
// the file, both ways.
func TestEngineEnvOverridesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webtier.yaml")
	yaml := strings.Replace(engineYAML, `address: ":8080"`, "address: \":8080\"\n    engine: std", 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EngineEnv, "webtier")
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := cfg.Proxy.Listeners[0].Engine; got != proxy.EngineWebtier {
		t.Errorf("listener engine = %q with engine: std in the file and WEBTIER_ENGINE=webtier; want webtier", got)
	}
}
