package config

import (
	"fmt"
	"os"

	"github.com/webtier/webtier/proxy"
)

// This file checks the engine keys of listeners and upstreams, and applies
// the WEBTIER_ENGINE environment override, which switches every listener
// and upstream without a config change: when an advisory lands for
// webtier's own HTTP code, an operator sets it and restarts.

// EngineEnv names the environment variable Load reads: "std" or "webtier"
// sets the engine of every listener and upstream, whatever the file says;
// unset or empty, the file decides.
const EngineEnv = "WEBTIER_ENGINE"

const engineChoices = `write webtier (the default: webtier's own HTTP/1 and HTTP/2 code) or std (Go's net/http)`

// engine checks an engine key; absent, it is proxy.DefaultEngine.
func (c *checker) engine(f field[string]) proxy.Engine {
	if !f.Set {
		return proxy.DefaultEngine
	}
	e, ok := parseEngine(f.V)
	if !ok {
		c.errorf(f.loc, "%q is not an engine; %s", f.V, engineChoices)
		return proxy.DefaultEngine
	}
	return e
}

func parseEngine(s string) (proxy.Engine, bool) {
	switch e := proxy.Engine(s); e {
	case proxy.EngineWebtier, proxy.EngineStd:
		return e, true
	}
	return "", false
}

// upstreamEngine checks an upstream's engine key. ajp:// targets have no
// standard-library client: engine: std written for them is an error
// rather than a switch that silently does nothing.
func (c *checker) upstreamEngine(f field[string], proto string) proxy.Engine {
	e := c.engine(f)
	if e == proxy.EngineStd && proto == protoAJP {
		c.errorf(f.loc, "ajp:// targets have no standard-library client (Go has no AJP), so engine std cannot apply; "+
			"remove engine (webtier's AJP client stays), or point the targets at Tomcat's HTTP connector (http://host:8080) to use net/http's")
		return proxy.DefaultEngine
	}
	return e
}

// EngineOverride is what WEBTIER_ENGINE did to a Config.
type EngineOverride struct {
	// Engine is the value of WEBTIER_ENGINE; "" when it is unset or empty
	// and the file decides.
	Engine proxy.Engine
	// KeptAJP names the upstreams of ajp:// targets, which keep webtier's
	// AJP client whatever the override says (there is no standard one).
	KeptAJP []string
}

// overrideEngine sets the engine of every listener and upstream to v, a
// value of WEBTIER_ENGINE; "" changes nothing. Upstreams of ajp://
// targets keep their client and are listed in the Config's
// EngineOverride.KeptAJP: the override applies to every config without
// an edit, so it cannot refuse one with AJP upstreams.
func (cfg *Config) overrideEngine(v string) error {
	if v == "" {
		return nil
	}
	e, ok := parseEngine(v)
	if !ok {
		return fmt.Errorf("%s=%q is not an engine; set it to std (Go's net/http) or webtier (webtier's own HTTP code), or unset it to use the config file's engine keys",
			EngineEnv, v)
	}
	cfg.Engine = EngineOverride{Engine: e}
	for i := range cfg.Proxy.Listeners {
		cfg.Proxy.Listeners[i].Engine = e
	}
	for i := range cfg.Proxy.Upstreams {
		u := &cfg.Proxy.Upstreams[i]
		if e == proxy.EngineStd && len(u.Targets) > 0 && u.Targets[0].Scheme == protoAJP {
			cfg.Engine.KeptAJP = append(cfg.Engine.KeptAJP, u.Name)
			continue
		}
		u.Engine = e
	}
	return nil
}

// engineFromEnv is overrideEngine with the process's WEBTIER_ENGINE.
func (cfg *Config) engineFromEnv() error {
	return cfg.overrideEngine(os.Getenv(EngineEnv))
}
