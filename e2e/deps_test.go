package e2e

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules keeps the package graph the shape the design says:
// config is the only package that knows YAML and no runtime package imports
// it; miekg/dns stays behind resolver (and the test servers); the AJP codec
// needs only the standard library (and this module's packages that need
// only it, such as proxy/fieldname); nothing imports cmd or e2e; every
// package has a doc comment.
func TestDependencyRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-json", "github.com/webtier/webtier/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type pkg struct {
		ImportPath string
		Doc        string
		Imports    []string
		Standard   bool
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
	const mod = "github.com/webtier/webtier/"
	rel := func(path string) string { return strings.TrimPrefix(path, mod) }
	thirdParty := func(imp string) bool { return strings.Contains(strings.Split(imp, "/")[0], ".") }
	// stdOnly: this module's packages that import the standard library only.
	stdOnly := map[string]bool{}
	for _, p := range pkgs {
		only := true
		for _, imp := range p.Imports {
			only = only && !thirdParty(imp)
		}
		stdOnly[p.ImportPath] = only
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
			case strings.HasPrefix(imp, "go.yaml.in/") && name != "config":
				t.Errorf("%s imports %s; only config knows YAML", name, imp)
			case strings.HasPrefix(imp, "github.com/miekg/dns") &&
				!strings.HasPrefix(name, "resolver") && !strings.HasPrefix(name, "e2e"):
				t.Errorf("%s imports miekg/dns; only resolver may (miekg/dns v1 gets fixes only)", name)
			case name == "proxy/upstream/ajp" && thirdParty(imp) && !stdOnly[imp]:
				t.Errorf("proxy/upstream/ajp imports %s; the AJP codec uses only the standard library", imp)
			}
		}
	}
}
