package deploy

import (
	"os"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// What the deploy files rely on when a config leaves them out: a
// listener's health path and the drain's wait and timeout. They are the
// defaults of the health endpoint and drain (proxy.DefaultHealthPath,
// proxy.DefaultDrainWait, proxy.DefaultDrainTimeout), which are built on
// another branch; once merged, drainSettings should read them from
// config.Load's result (cfg.Proxy.Listeners[0].HealthPath,
// cfg.Proxy.Drain.Wait, cfg.Proxy.Drain.Timeout) and these go.
const (
	defaultHealthPath   = "/health_check.html"
	defaultDrainWait    = 20 * time.Second
	defaultDrainTimeout = 30 * time.Second
)

// settings is what probes, health checks and stop timeouts must agree on.
type settings struct {
	HealthPath   string        // first listener's
	DrainWait    time.Duration // SIGTERM to listeners closed
	DrainTimeout time.Duration // listeners closed to exit, at most
}

// drainSettings reads the health path and drain times from a config file,
// with the defaults for what it leaves out.
func drainSettings(t *testing.T, file string) settings {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Listeners []struct {
			HealthPath *string `yaml:"health_path"`
		} `yaml:"listeners"`
		Drain struct {
			Wait    *time.Duration `yaml:"wait"`
			Timeout *time.Duration `yaml:"timeout"`
		} `yaml:"drain"`
	}
	if err := yaml.Unmarshal(src, &raw); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	s := settings{HealthPath: defaultHealthPath, DrainWait: defaultDrainWait, DrainTimeout: defaultDrainTimeout}
	if len(raw.Listeners) > 0 && raw.Listeners[0].HealthPath != nil {
		s.HealthPath = *raw.Listeners[0].HealthPath
	}
	if raw.Drain.Wait != nil {
		s.DrainWait = *raw.Drain.Wait
	}
	if raw.Drain.Timeout != nil {
		s.DrainTimeout = *raw.Drain.Timeout
	}
	return s
}
