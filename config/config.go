// Package config reads webtier's YAML configuration file into the validated
// option structs of the runtime packages: proxy.Options and resolver.Options.
//
// It is the only package that knows YAML or file positions. It parses the
// file, validates every value, fills every default explicitly from the
// runtime packages' Default* constants (so a printed Config shows the values
// in effect), and only then hands back option structs. The runtime packages
// never import config and can assume what they get is valid.
//
// Parse does not stop at the first problem. It returns every problem it finds
// as Errors, each naming the file, line and dotted key path, and saying what
// to write instead:
//
//	webtier.yaml:12: upstreams.app.connect_timeout: "2x" is not a duration; write it like 500ms, 2s or 1m
//
// What it refuses to do: it accepts no unknown or duplicate keys, YAML merge
// keys ("<<") or more than one YAML document per file; it does not expand
// environment variables (Load reads one, WEBTIER_ENGINE, which overrides
// every engine key: engine.go) or include other files; it does not watch the file
// (cmd reloads on SIGHUP by calling Load again); it reads no other file
// except an AJP upstream's secret_file and a TLS listener's certificate
// and key files (which it loads together once, to check them, and hands on
// as paths), client_ca_file and acme.ca_root; and it never builds runtime objects, opens sockets or resolves
// names. It never puts an AJP secret or key material in an error.
package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/webtier/webtier/admin"
	"github.com/webtier/webtier/proxy"
	"github.com/webtier/webtier/resolver"
)

// Config is a validated configuration file.
type Config struct {
	// File is the path the config was read from.
	File string
	// Hash is the first 16 hex digits of the file's SHA-256: which config
	// runs, for metrics and status pages.
	Hash string
	// Proxy has every default filled in. Routes and upstreams are in file
	// order. Where the file writes 0 to turn something off, the option holds
	// -1, because zero selects the default: MaxIdlePerAddress (keep-alive
	// off), RescueGrace and RaceDelay (0s: rescue and racing off), Drain.Wait
	// (0s: the listeners close at once on SIGTERM),
	// Consecutive5xx (passive ejection off) and MaxEjectedPercent (passive
	// health ejects nothing). SlowStart is 0 when off; a listener's
	// HealthPath is "" when health_path: "" turns its endpoint off. HealthCheck is nil
	// unless the file has a health_check key; StickyCookie is filled in
	// whatever the balance. An upstream's targets are all ajp:// or all
	// http(s)://. AJP is zero unless they are ajp://; then PacketSize and
	// CPingIdle are filled in (CPingIdle -1 for cping_idle: 0s), Secret is
	// the secret or secret_file's contents (never print it), and the HTTP
	// fields of HealthCheck (Method, Path, Host, ExpectMin/Max) are zero, as
	// the check is an AJP CPING.
	Proxy proxy.Options
	// Resolver has every default filled in, except where resolv.conf
	// decides: when Nameservers is empty, Ndots and Search stay zero unless
	// the file sets them. When Nameservers is set, ResolvConf is "" as it is
	// not read. Nameservers are IP:port, with port 53 filled in. Logger and
	// Registerer are nil; cmd fills them.
	Resolver resolver.Options
	Logging  Logging
	// AccessLog has its defaults filled in. Proxy.RequestID is the
	// request_id section; Proxy.AccessLog is nil (cmd opens the log).
	AccessLog AccessLog
	// Admin is nil when the file has no admin key: no admin listener.
	Admin *admin.Options
	// Engine says what WEBTIER_ENGINE changed (Load only; Parse reads no
	// environment). Its zero value: nothing, the file's engine keys hold.
	Engine EngineOverride
}

// Logging configures webtier's own logs.
type Logging struct {
	// Level is "debug", "info", "warn" or "error". Default "info".
	Level string
	// Format is "json", "console", or "auto" for console when stderr is a
	// terminal and JSON otherwise. Default "auto".
	Format string
}

// Load reads and parses the config file at path, then applies
// WEBTIER_ENGINE (EngineEnv). A file that cannot be read gives the os
// error, wrapped; a file with problems gives Errors; a bad WEBTIER_ENGINE
// an error naming it.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("loading config: %w", err)
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	if err := cfg.engineFromEnv(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Parse parses data, the contents of a config file. file names it in error
// messages and becomes Config.File; a relative secret_file, cert_file or
// key_file is read relative to file's directory. Any problem is returned as
// Errors.
func Parse(file string, data []byte) (*Config, error) {
	r := &report{file: file}
	root := readYAML(r, data)
	if root == nil {
		return nil, r.err()
	}
	var raw rawFile
	d := &decoder{report: r}
	d.decode(root, reflect.ValueOf(&raw).Elem(), loc{Line: 1, Column: 1})
	if d.steps > maxSteps {
		return nil, r.err() // checking a half-decoded tree would only add noise
	}
	c := &checker{report: r}
	cfg := &Config{
		File:      file,
		Hash:      fmt.Sprintf("%x", sha256.Sum256(data))[:16],
		Proxy:     c.proxy(&raw),
		Resolver:  c.resolver(&raw.Resolver),
		Logging:   c.logging(&raw.Logging),
		AccessLog: c.accessLog(&raw.AccessLog),
		Admin:     c.admin(raw.Admin),
	}
	cfg.Proxy.RequestID = c.requestID(&raw.RequestID)
	if err := r.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// minimalConfig is quoted by the empty-file error.
const minimalConfig = `a minimal config is:
  listeners:
    - address: ":8080"
  routes:
    - upstream: app
  upstreams:
    app:
      targets: [http://10.0.0.5:8080]`

// readYAML parses data into a node tree and returns the top-level value, or
// reports why it cannot and returns nil.
func readYAML(r *report, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if errors.Is(err, io.EOF) || err == nil && (len(doc.Content) == 0 || isNull(doc.Content[0])) {
		r.errorf(loc{}, "the file is empty; %s", minimalConfig)
		return nil
	}
	if err != nil {
		l, msg := syntaxError(err, data)
		r.errorf(l, "invalid YAML (at or just after this line): %s", msg)
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l, msg := syntaxError(err, data)
		r.errorf(l, "invalid YAML (at or just after this line): %s", msg)
		return nil
	default:
		r.errorf(loc{Line: next.Line, Column: next.Column},
			"a second YAML document starts here; webtier reads one document per file, so remove the \"---\" line and merge or delete what follows")
		return nil
	}
	return doc.Content[0]
}

// yamlLine matches the only form in which go.yaml.in/yaml/v3 reports a syntax
// error's position: a plain error whose text is "yaml: line N: problem".
// There is no error type to inspect, so this is the one place config reads
// an error's text.
var yamlLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml parse error in data into a position and a
// message. The line yaml reports is often that of the enclosing block, one
// or more lines above the mistake (go-yaml/yaml#205); the message says so.
// yaml leaves the line out when it is the first (its marks count from 0,
// and 0 reads as "unknown"), and for an encoding error, which it places by
// byte offset only: then the line is that of the first character YAML
// does not allow, or else 1 (found by FuzzParse: a file holding only `"`).
func syntaxError(err error, data []byte) (loc, string) {
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return loc{Line: line}, m[2]
	}
	return loc{Line: badCharLine(data)}, strings.TrimPrefix(err.Error(), "yaml: ")
}

// badCharLine returns the line of the first byte in data that is not
// UTF-8 or is a character YAML 1.2 excludes (5.1: C0 controls other than
// tab, LF and CR, DEL, C1 controls other than NEL, surrogates, U+FFFE and
// U+FFFF), or 1 if there is none.
func badCharLine(data []byte) int {
	line := 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1,
			r < 0x20 && r != '\t' && r != '\n' && r != '\r',
			r >= 0x7f && r <= 0x9f && r != 0x85,
			r == 0xfffe || r == 0xffff:
			return line
		case r == '\n':
			line++
		}
		i += size
	}
	return 1
}
