package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/webtier/webtier/proxy/compress"
	"github.com/webtier/webtier/proxy/static"
)

// static and compress: defaults from the runtime packages, values as
// written, and errors at the key's own line telling what to write.
func TestStaticAndCompress(t *testing.T) {
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.Mkdir(www, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const head = "listeners: [{address: \":8080\"}]\n"
	const ups = "upstreams: {app: {targets: [http://10.0.0.5]}}\n"
	tests := []struct {
		name    string
		yaml    string
		static  *static.Options // routes[0]
		comp    *compress.Options
		errKey  string // want an error at this key on errLine
		errLine int
		errMsg  string
	}{
		{name: "static-defaults-no-upstreams", yaml: head + "routes:\n  - static: {root: www}\n",
			static: &static.Options{Root: www, Index: static.DefaultIndex, Precompressed: static.DefaultPrecompressed}},
		{name: "static-all-keys", yaml: head + "routes:\n  - path: /s/\n    static: {root: " + www + ", index: [a.html, b.htm], dotfiles: true, follow_symlinks: true, precompressed: false}\n",
			static: &static.Options{Root: www, Index: []string{"a.html", "b.htm"}, Dotfiles: true, FollowSymlinks: true}},
		{name: "static-empty-index", yaml: head + "routes:\n  - static: {root: www, index: []}\n",
			static: &static.Options{Root: www, Index: []string{}, Precompressed: true}},
		{name: "both", yaml: head + "routes:\n  - static: {root: www}\n    upstream: app\n" + ups,
			errKey: "routes[0].upstream", errLine: 4, errMsg: "either upstream or static"},
		{name: "neither", yaml: head + "routes:\n  - path: /\n" + ups,
			errKey: "routes[0].upstream", errLine: 3, errMsg: "static: {root"},
		{name: "no-root", yaml: head + "routes:\n  - static: {index: [x]}\n",
			errKey: "routes[0].static.root", errLine: 3, errMsg: "DocumentRoot"},
		{name: "root-missing-dir", yaml: head + "routes:\n  - static: {root: nope}\n",
			errKey: "routes[0].static.root", errLine: 3, errMsg: "create the directory"},
		{name: "root-is-file", yaml: head + "routes:\n  - static: {root: file}\n",
			errKey: "routes[0].static.root", errLine: 3, errMsg: "not a directory"},
		{name: "index-with-slash", yaml: head + "routes:\n  - static:\n      root: www\n      index: [../x]\n",
			errKey: "routes[0].static.index[0]", errLine: 5, errMsg: "plain name"},
		{name: "listing", yaml: head + "routes:\n  - static: {root: www, listing: true}\n",
			errKey: "routes[0].static.listing", errLine: 3, errMsg: "index file"},
		{name: "compress-defaults", yaml: head + "routes:\n  - upstream: app\n    compress: {}\n" + ups,
			comp: &compress.Options{Types: compress.DefaultTypes, MinSize: compress.DefaultMinSize, Encodings: compress.DefaultEncodings}},
		{name: "compress-all-keys", yaml: head + "routes:\n  - upstream: app\n    compress: {types: [text/html], min_size: 0, encodings: [GZIP]}\n" + ups,
			comp: &compress.Options{Types: []string{"text/html"}, MinSize: 0, Encodings: []string{"gzip"}}},
		{name: "compress-off", yaml: head + "routes:\n  - upstream: app\n    compress: {encodings: []}\n" + ups,
			comp: &compress.Options{Types: compress.DefaultTypes, MinSize: compress.DefaultMinSize, Encodings: []string{}}},
		{name: "compress-bad-encoding", yaml: head + "routes:\n  - upstream: app\n    compress:\n      encodings: [br]\n" + ups,
			errKey: "routes[0].compress.encodings[0]", errLine: 5, errMsg: "zstd or gzip"},
		{name: "compress-bad-type", yaml: head + "routes:\n  - upstream: app\n    compress:\n      types: [\"text/html; charset=utf-8\"]\n" + ups,
			errKey: "routes[0].compress.types[0]", errLine: 5, errMsg: "without parameters"},
		{name: "compress-negative-size", yaml: head + "routes:\n  - upstream: app\n    compress:\n      min_size: -1\n" + ups,
			errKey: "routes[0].compress.min_size", errLine: 5, errMsg: "from 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, "webtier.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if tt.errKey != "" {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("Load error = %v; want Errors", err)
				}
				for _, e := range errs {
					if e.Key == tt.errKey && e.Line == tt.errLine && strings.Contains(e.Msg, tt.errMsg) {
						return
					}
				}
				t.Fatalf("Load error = %v; want one at line %d, key %s, saying %q", err, tt.errLine, tt.errKey, tt.errMsg)
			}
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			ro := cfg.Proxy.Routes[0]
			if !reflect.DeepEqual(ro.Static, tt.static) {
				t.Errorf("Static = %+v; want %+v", ro.Static, tt.static)
			}
			if !reflect.DeepEqual(ro.Compress, tt.comp) {
				t.Errorf("Compress = %+v; want %+v", ro.Compress, tt.comp)
			}
		})
	}
}

// A listener's compress is parsed as a route's is.
func TestListenerCompress(t *testing.T) {
	cfg, err := Parse("webtier.yaml", []byte("listeners: [{address: \":8080\", compress: {min_size: 10}}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [http://10.0.0.5]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := cfg.Proxy.Listeners[0].Compress
	if got == nil || got.MinSize != 10 || !reflect.DeepEqual(got.Encodings, compress.DefaultEncodings) {
		t.Errorf("listener Compress = %+v; want min_size 10 and the default encodings", got)
	}
}
