package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyRules keeps the package graph the shape the design says:
// config (with config/httpd, which writes config files) is the only package
// that knows YAML and no runtime package imports
// it; miekg/dns stays behind resolver (and the test servers); the AJP codec
// needs only the standard library (and this module's packages that need
// only it, such as proxy/internal/httplex); nothing imports cmd or e2e; every
// package has a doc comment.
func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t)
	const mod = "github.com/webtier/webtier/"
	rel := func(path string) string { return strings.TrimPrefix(path, mod) }
	thirdParty := func(imp string) bool { return strings.Contains(strings.Split(imp, "/")[0], ".") }
	// stdOnly: this module's packages that import the standard library
	// only, directly or through other such packages of this module.
	stdOnly := map[string]bool{}
	for changed := true; changed; {
		changed = false
		for _, p := range pkgs {
			if stdOnly[p.ImportPath] {
				continue
			}
			only := true
			for _, imp := range p.Imports {
				only = only && (!thirdParty(imp) || strings.HasPrefix(imp, mod) && stdOnly[imp])
			}
			if only {
				stdOnly[p.ImportPath], changed = true, true
			}
		}
	}
	for _, p := range pkgs {
		name := rel(p.ImportPath)
		if p.Doc == "" {
			t.Errorf("%s has no package doc comment", name)
		}
		for _, imp := range p.Imports {
			switch {
			case strings.HasPrefix(imp, mod+"cmd"), strings.HasPrefix(imp, mod+"e2e") && !strings.HasPrefix(name, "e2e"):
				t.Errorf("%s imports %s; nothing may import cmd or e2e", name, rel(imp))
			case imp == mod+"config" && (strings.HasPrefix(name, "proxy") || strings.HasPrefix(name, "resolver")):
				t.Errorf("%s imports config; runtime packages take option structs instead", name)
			case strings.HasPrefix(imp, "go.yaml.in/") && name != "config" && !strings.HasPrefix(name, "config/"):
				// config/httpd (import-httpd) writes config files.
				t.Errorf("%s imports %s; only config and its sub-packages know YAML", name, imp)
			case strings.HasPrefix(imp, "github.com/miekg/dns") &&
				!strings.HasPrefix(name, "resolver") && !strings.HasPrefix(name, "e2e"):
				t.Errorf("%s imports miekg/dns; only resolver may (miekg/dns v1 gets fixes only)", name)
			case name == "proxy/upstream/ajp" && thirdParty(imp) && !stdOnly[imp]:
				t.Errorf("proxy/upstream/ajp imports %s; the AJP codec uses only the standard library", imp)
			}
		}
	}
}

// pkg is one package of this module as go list describes it.
type pkg struct {
	ImportPath string
	Doc        string
	Imports    []string
	Standard   bool
}

// listPackages lists this module's packages with their (non-test) imports.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "github.com/webtier/webtier/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// layers is the request's way through the tree, top to bottom: a package
// imports only packages of its own layer or below. Packages not listed
// (e2e, test helpers) are outside the rule.
var layers = []struct {
	prefix string // the package, or a folder with the trailing "/"
	layer  int
}{
	{"cmd/", 0},
	{"config", 1},
	{"proxy/frontend", 2}, {"proxy/frontend/", 2},
	{"proxy", 3},
	{"proxy/upstream", 4}, {"proxy/upstream/", 4},
	{"proxy/rules/", 4}, // route rules, applied by proxy
	{"proxy/internal/", 5}, {"resolver", 5}, {"resolver/", 5},
}

// layerOf returns the layer of the package name (module-relative), or -1.
// The longest matching prefix wins.
func layerOf(name string) int {
	best, layer := -1, -1
	for _, l := range layers {
		match := name == l.prefix || strings.HasSuffix(l.prefix, "/") && strings.HasPrefix(name, l.prefix)
		if match && len(l.prefix) > best {
			best, layer = len(l.prefix), l.layer
		}
	}
	return layer
}

// upwardAllowed are the imports against the layers that are known and
// waiting for their fix, each with the reason. None is left: keep it so.
var upwardAllowed = map[[2]string]string{}

// configAllowed are the packages config may import from this module: the
// ones that define the option types it fills in and the defaults and
// limits it checks against.
var configAllowed = map[string]bool{
	"proxy":              true, // Options, ListenerOptions, RouteOptions, Default*
	"proxy/upstream":     true, // upstream.Options, Target, AJPOptions, Default*
	"proxy/upstream/ajp": true, // DefaultPacketSize, MaxPacketSize, DefaultCPingIdle
	"resolver":           true, // resolver.Options, Default*
	"proxy/accesslog":    true, // accesslog.Format, ParseFormat
	"admin":              true, // admin.Options, DefaultAddress
	// issue 21's header rules, error pages, limits and access control
	"proxy/rules/headers": true, // headers.Rules, Check, CheckValue
	"proxy/rules/errpage": true, // errpage.Page, Statuses
	"proxy/rules/access":  true, // access.Options, ParseHtpasswd, Default*
	"proxy/rules/rewrite": true, // rewrite.Options, New, DefaultRedirectStatus (issue 21 points 1-3)
	"proxy/static":        true, // static.Options, Default* (issue 21 point 5)
	"proxy/compress":      true, // compress.Options, Default* (issue 21 point 6)
}

// TestLayoutRules keeps the tree the map README's Layout section draws:
// imports go down the request's way (cmd, config, frontend, proxy,
// upstream, internal); nothing client-facing imports a backend client;
// config imports only the packages of the option types; the binary links
// no test package; proxy/internal is proxy's.
func TestLayoutRules(t *testing.T) {
	const mod = "github.com/webtier/webtier/"
	for _, p := range listPackages(t) {
		name := strings.TrimPrefix(p.ImportPath, mod)
		for _, full := range p.Imports {
			ours := strings.HasPrefix(full, mod)
			imp := strings.TrimPrefix(full, mod)
			if ours && layerOf(name) >= 0 && layerOf(imp) >= 0 && layerOf(imp) < layerOf(name) &&
				upwardAllowed[[2]string{name, imp}] == "" {
				t.Errorf("%s imports %s, a layer above it; imports go cmd → config → proxy/frontend → proxy → proxy/upstream → proxy/internal", name, imp)
			}
			if ours && strings.HasPrefix(name, "proxy/frontend") &&
				(imp == "proxy/upstream/h1" || imp == "proxy/upstream/ajp") {
				t.Errorf("%s imports the backend client %s; what client-facing code needs from it belongs in proxy/internal", name, imp)
			}
			if ours && name == "config" && !configAllowed[imp] {
				t.Errorf("config imports %s; config imports only the packages of the option types (%v)", imp, slices.Sorted(maps.Keys(configAllowed)))
			}
			if strings.HasPrefix(name, "cmd/") {
				last := full[strings.LastIndex(full, "/")+1:]
				if full == "testing" || strings.HasSuffix(last, "test") || strings.HasPrefix(imp, "e2e") {
					t.Errorf("%s imports %s; the binary links no test package", name, full)
				}
			}
			if ours && strings.HasPrefix(imp, "proxy/internal/") && name != "proxy" && !strings.HasPrefix(name, "proxy/") {
				t.Errorf("%s imports %s; proxy/internal is for proxy/... only", name, imp)
			}
		}
	}
}
