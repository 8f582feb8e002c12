package config

import (
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of valid testdata/*.txt cases")

// separator splits a testdata case into its YAML input and what is expected.
const separator = "\n----------\n"

// goldenFile is the name every case is parsed under, so expected errors read
// like the ones users see.
const goldenFile = "webtier.yaml"

// TestGolden runs testdata/*.txt, in the manner of Caddy's caddyfile_adapt
// tests. Each file holds a YAML config, a "----------" line, then either
//
//   - the expected dump of the parsed Config (see dump), or
//   - lines "error: SUBSTRING". Each must occur in some reported error, and
//     each reported error must contain one of them, so a case pins every
//     error the input produces and no spurious one slips in.
//
// Run with -update to rewrite the dumps of valid cases.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt cases")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, ok := strings.Cut("\n"+string(data), separator)
			input = strings.TrimPrefix(input, "\n") // the "\n" lets an empty input precede the separator
			if !ok {
				t.Fatalf("%s: no %q separator line", file, strings.TrimSpace(separator))
			}
			if input != "" {
				input += "\n" // the separator's leading newline ended the input's last line
			}
			cfg, err := Parse(goldenFile, []byte(input))

			if wantErrs := errorLines(want); wantErrs != nil {
				checkErrors(t, err, wantErrs)
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := dump(cfg)
			if *update {
				if err := os.WriteFile(file, []byte(input+strings.TrimPrefix(separator, "\n")+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("Parse dump differs (run go test -update to accept):\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

// errorLines returns the substrings of an error case, or nil for a valid case.
func errorLines(want string) []string {
	var subs []string
	for line := range strings.Lines(want) {
		line = strings.TrimRight(line, "\n")
		if line == "" {
			continue
		}
		s, ok := strings.CutPrefix(line, "error: ")
		if !ok {
			return nil
		}
		subs = append(subs, s)
	}
	return subs
}

func checkErrors(t *testing.T, err error, want []string) {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error = %v; want Errors containing %q", err, want)
	}
	for _, w := range want {
		found := false
		for _, e := range errs {
			found = found || strings.Contains(e.Error(), w)
		}
		if !found {
			t.Errorf("no error contains %q; got:\n%v", w, err)
		}
	}
	for _, e := range errs {
		expected := false
		for _, w := range want {
			expected = expected || strings.Contains(e.Error(), w)
		}
		if !expected {
			t.Errorf("unexpected error: %v", e)
		}
	}
}

// dump prints c one value per line as "Path.To.Field: value", using the Go
// field names, so a diff shows exactly which option changed.
func dump(c *Config) string {
	var b strings.Builder
	dumpValue(&b, "", reflect.ValueOf(*c))
	return b.String()
}

func dumpValue(b *strings.Builder, path string, v reflect.Value) {
	if v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			fmt.Fprintf(b, "%s: nil\n", path)
			return
		}
		if v.Kind() == reflect.Pointer && v.Elem().Kind() == reflect.Struct {
			dumpValue(b, path, v.Elem()) // upstream.Options.HealthCheck
			return
		}
	}
	// Stringers print as such (time.Duration, netip.Prefix, resolver.Family),
	// except option structs with a String method (upstream.AJPOptions hides
	// its secret there): their fields are dumped one by one.
	if s, ok := v.Interface().(fmt.Stringer); ok && !(v.Kind() == reflect.Struct && strings.HasPrefix(v.Type().PkgPath(), "github.com/webtier/")) {
		fmt.Fprintf(b, "%s: %s\n", path, s)
		return
	}
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			switch {
			case !f.IsExported():
			case path == "" && f.Name == "Hash":
				// The input's hash would change with every edit of a
				// case (TestConfigHash checks it).
			case (f.Name == "Secret" || f.Name == "Token") && f.Type.Kind() == reflect.String:
				// A secret never reaches the testdata files: print only
				// whether it is set (upstream.AJPOptions.Secret).
				state := "<empty>"
				if v.Field(i).String() != "" {
					state = "<set>"
				}
				fmt.Fprintf(b, "%s.%s: %s\n", path, f.Name, state)
			default:
				dumpValue(b, strings.TrimPrefix(path+"."+f.Name, "."), v.Field(i))
			}
		}
	case reflect.Slice:
		if v.Len() == 0 {
			fmt.Fprintf(b, "%s: []\n", path)
		}
		for i := range v.Len() {
			dumpValue(b, fmt.Sprintf("%s[%d]", path, i), v.Index(i))
		}
	case reflect.String:
		fmt.Fprintf(b, "%s: %q\n", path, v.String())
	default:
		fmt.Fprintf(b, "%s: %v\n", path, v.Interface())
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{
			name: "full",
			err:  &Error{File: "webtier.yaml", Line: 12, Column: 5, Key: "upstreams.app.connect_timeout", Msg: `"2x" is not a duration`},
			want: `webtier.yaml:12: upstreams.app.connect_timeout: "2x" is not a duration`,
		},
		{
			name: "no-key",
			err:  &Error{File: "webtier.yaml", Line: 3, Msg: "invalid YAML (at or just after this line): did not find expected key"},
			want: "webtier.yaml:3: invalid YAML (at or just after this line): did not find expected key",
		},
		{
			name: "no-line",
			err:  &Error{File: "webtier.yaml", Msg: "the file is empty"},
			want: "webtier.yaml: the file is empty",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q; want %q", got, tt.want)
			}
		})
	}
}

func TestErrorsAreSortedAndUnwrap(t *testing.T) {
	_, err := Parse(goldenFile, []byte(`
upstreams:
  app:
    targets: [ftp://x]
routes:
  - upstream: app
listeners:
  - address: nope
`))
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse error %T is not Errors", err)
	}
	if len(errs) != 2 || errs[0].Line != 4 || errs[1].Line != 8 {
		t.Fatalf("Parse errors = %v; want two, at lines 4 then 8", err)
	}
	var one *Error
	if !errors.As(err, &one) || one != errs[0] {
		t.Errorf("errors.As(*Error) = %v; want the first error %v", one, errs[0])
	}
	if got, want := err.Error(), errs[0].Error()+"\n"+errs[1].Error(); got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "webtier.yaml")
	const yaml = "listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [http://10.0.0.5]}}\n"
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if cfg.File != path {
		t.Errorf("File = %q; want %q", cfg.File, path)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v; want an error wrapping fs.ErrNotExist", err)
	}

	if err := os.WriteFile(path, []byte("listeners: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	if want := path + ":1: listeners: expected a list of listeners, got a number"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load(bad) = %v; want it to contain %q", err, want)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"targets", "connect_timeout", "response_header_timeout", "idle_timeout", "max_idle_per_address", "host_header"}
	tests := []struct {
		key  string
		want string
	}{
		{key: "conect_timeout", want: "connect_timeout"},
		{key: "connect-timeout", want: "connect_timeout"},
		{key: "Connect_Timeout", want: "connect_timeout"},
		{key: "target", want: "targets"},
		{key: "max_idle_per_addr", want: "max_idle_per_address"},
		{key: "timeout", want: ""},
		{key: "tls", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := suggest(tt.key, keys); got != tt.want {
				t.Errorf("suggest(%q) = %q; want %q", tt.key, got, tt.want)
			}
		})
	}
}

// Aliases let a small file name a large value many times. Decoding must stop
// with an error instead of walking every copy.
func TestAliasExpansionIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("proxies: &p [")
	for i := range 2000 {
		fmt.Fprintf(&b, "10.0.%d.%d, ", i/256, i%256)
	}
	b.WriteString("]\nlisteners:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {address: \":%d\", trusted_proxies: *p}\n", 1000+i)
	}
	_, err := Parse(goldenFile, []byte(b.String()))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 2 {
		t.Fatalf("Parse = %.300v; want two errors", err)
	}
	if want := `unknown key "proxies"`; !strings.Contains(errs[0].Msg, want) {
		t.Errorf("first error = %v; want it to contain %q", errs[0], want)
	}
	if want := "the file expands to more than"; !strings.Contains(errs[1].Msg, want) {
		t.Errorf("second error = %v; want it to contain %q", errs[1], want)
	}
}

// An explicit empty search list turns resolv.conf's off; no key keeps it.
func TestSearchEmptyListReplacesResolvConf(t *testing.T) {
	base := "listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [http://app]}}\nresolver:\n  resolv_conf: testdata/resolv.conf\n"
	for _, tc := range []struct {
		name    string
		extra   string
		wantNil bool
	}{
		{"absent: resolv.conf's list", "", true},
		{"empty list: none", "  search: []\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(goldenFile, []byte(base+tc.extra))
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Resolver.Search; (got == nil) != tc.wantNil || len(got) != 0 {
				t.Errorf("Resolver.Search = %#v; want nil %v and empty", got, tc.wantNil)
			}
		})
	}
}

// hosts_file defaults to /etc/hosts, takes a path relative to the config
// file, and refuses an empty value with the file, line and key.
func TestHostsFile(t *testing.T) {
	base := "listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [http://app]}}\nresolver:\n  nameservers: [10.0.0.2]\n"
	cfg, err := Parse(goldenFile, []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Resolver.HostsFile; got != "/etc/hosts" {
		t.Errorf("default HostsFile = %q; want /etc/hosts", got)
	}
	cfg, err = Parse(goldenFile, []byte(base+"  hosts_file: hosts.local\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(filepath.Dir(goldenFile), "hosts.local"); cfg.Resolver.HostsFile != want {
		t.Errorf("relative HostsFile = %q; want %q", cfg.Resolver.HostsFile, want)
	}
	_, err = Parse(goldenFile, []byte(base+"  hosts_file: \"\"\n"))
	if err == nil || !strings.Contains(err.Error(), ":6:") || !strings.Contains(err.Error(), "hosts_file") || !strings.Contains(err.Error(), "is empty") {
		t.Errorf("empty hosts_file: err = %v; want line 6, hosts_file, is empty", err)
	}
}

// Config.Hash names the file's content: the first 16 hex digits of its
// SHA-256, for webtier_config_info.
func TestConfigHash(t *testing.T) {
	data := []byte("listeners: [{address: \":8080\"}]\nroutes: [{upstream: app}]\nupstreams: {app: {targets: [http://10.0.0.5:8080]}}\n")
	cfg, err := Parse("webtier.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(data))[:16]; cfg.Hash != want {
		t.Errorf("Hash = %q; want %q", cfg.Hash, want)
	}
}
