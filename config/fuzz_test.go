package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse loads arbitrary bytes as a config file, seeded with the inputs
// of testdata/*.txt. Invariants: no panic; a file either parses or gives
// Errors, each naming the file and, but for the problems that have no line
// (an empty file, the default resolv.conf that the file does not name),
// the line. The file sits in an empty directory, so relative secret_file,
// cert_file and resolv_conf paths name nothing.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/*.txt: %v", err)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		input, _, _ := strings.Cut("\n"+string(data), separator)
		f.Add([]byte(strings.TrimPrefix(input, "\n")))
	}
	name := filepath.Join(f.TempDir(), "webtier.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(name, data)
		if err == nil {
			if cfg == nil || cfg.File != name {
				t.Fatalf("Parse returned no error and config %+v", cfg)
			}
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("Parse error %T %v; want Errors", err, err)
		}
		for _, e := range es {
			if e.File != name || e.Msg == "" {
				t.Errorf("error %q: want it to name %s and say what is wrong", e, name)
			}
			noLine := e.Key == "" && strings.HasPrefix(e.Msg, "the file is empty") ||
				e.Key == "resolver.resolv_conf"
			if e.Line <= 0 && !noLine {
				t.Errorf("error %q carries no line", e)
			}
		}
	})
}
