package main

import (
	"fmt"
	"io"

	"go.uber.org/zap"

	"github.com/webtier/webtier/config"
	"github.com/webtier/webtier/proxy"
)

// engines returns, in file order, "listener NAME: ENGINE" and "upstream
// NAME: ENGINE" for every listener and upstream, so that an operator who
// switched to the standard library (engine: std or WEBTIER_ENGINE=std)
// can see that it took.
func engines(cfg *config.Config) []string {
	kept := map[string]bool{}
	for _, n := range cfg.Engine.KeptAJP {
		kept[n] = true
	}
	var out []string
	for _, l := range cfg.Proxy.Listeners {
		out = append(out, fmt.Sprintf("listener %s: %s", l.Name, engineName(l.Engine)))
	}
	for _, u := range cfg.Proxy.Upstreams {
		line := fmt.Sprintf("upstream %s: %s", u.Name, engineName(u.Engine))
		if kept[u.Name] {
			line += " (ajp:// has no standard-library client; webtier's AJP client stays)"
		}
		out = append(out, line)
	}
	return out
}

func engineName(e proxy.Engine) string {
	if e == "" {
		return string(proxy.DefaultEngine)
	}
	return string(e)
}

// overrideNote says what WEBTIER_ENGINE did, or "" if it is not set.
func overrideNote(cfg *config.Config) string {
	if cfg.Engine.Engine == "" {
		return ""
	}
	return fmt.Sprintf("%s=%s overrides every engine key of the file", config.EngineEnv, cfg.Engine.Engine)
}

// printEngines is validate's engine section.
func printEngines(cfg *config.Config, w io.Writer) {
	fmt.Fprintln(w, "engines:")
	if note := overrideNote(cfg); note != "" {
		fmt.Fprintf(w, "  %s\n", note)
	}
	for _, line := range engines(cfg) {
		fmt.Fprintf(w, "  %s\n", line)
	}
}

// logEngines logs the engines at start.
func logEngines(cfg *config.Config, log *zap.Logger) {
	fields := []zap.Field{zap.Strings("engines", engines(cfg))}
	if note := overrideNote(cfg); note != "" {
		fields = append(fields, zap.String("override", note))
	}
	log.Info("protocol engines", fields...)
}

// redirectStdLog sends what Go's standard library writes to its default
// logger into webtier's log as warnings: net/http's Transport (engine std,
// https:// targets) reports a backend's bytes after a complete response
// there ("Unsolicited response received on idle HTTP channel").
func redirectStdLog(log *zap.Logger) func() {
	undo, err := zap.RedirectStdLogAt(log.Named("stdlib"), zap.WarnLevel)
	if err != nil {
		return func() {}
	}
	return undo
}
