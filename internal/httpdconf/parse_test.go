package httpdconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// flat writes a tree as "Name arg|arg" lines, sections indented.
func flat(ds []*Directive, indent string) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(indent + d.Name)
		if len(d.Args) > 0 {
			b.WriteString(" " + strings.Join(d.Args, "|"))
		}
		b.WriteString("\n")
		b.WriteString(flat(d.Children, indent+"  "))
	}
	return b.String()
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string // httpd.conf is the main file
		opts  Options
		want  string
	}{
		{name: "continuations, quotes and comments", files: map[string]string{"httpd.conf": "# a comment\n" +
			"ProxyPass \"/a b/\" \\\n    'http://x/' retry=0\n" +
			"   # an indented comment\n" +
			"Header set X-A \"say \\\"hi\\\"\"\n" +
			"ServerName a#b\n"},
			want: "ProxyPass /a b/|http://x/|retry=0\nHeader set|X-A|say \"hi\"\nServerName a#b\n"},
		{name: "Define and ${VAR}; an undefined name stays", files: map[string]string{"httpd.conf": "Define BACK 10.0.0.5:8080\n" +
			"ProxyPass / http://${BACK}/ ${NOPE}\n"},
			want: "Define BACK|10.0.0.5:8080\nProxyPass /|http://10.0.0.5:8080/|${NOPE}\n"},
		{name: "Debian's envvars", files: map[string]string{
			"envvars":    "unset HOME\nif [ x ]; then\n  SUFFIX=-x\nelse\n  SUFFIX=\nfi\nexport APACHE_LOG_DIR=/var/log/apache2$SUFFIX\nexport APACHE_RUN_USER=www-data\n",
			"httpd.conf": "User ${APACHE_RUN_USER}\nCustomLog ${APACHE_LOG_DIR}/access.log combined\n"},
			want: "User www-data\nCustomLog /var/log/apache2/access.log|combined\n"},
		{name: "IfModule by either name, negated, not loaded, and a LoadModule it hides", files: map[string]string{"httpd.conf": "" +
			"LoadModule proxy_module modules/mod_proxy.so\n" +
			"<IfModule mod_proxy.c>\nA\n</IfModule>\n<IfModule proxy_module>\nB\n</IfModule>\n" +
			"<IfModule !proxy_module>\nC\n</IfModule>\n<IfModule mod_nonesuch.c>\nD\n  LoadModule ssl_module modules/mod_ssl.so\n</IfModule>\n" +
			"<IfModule ssl_module>\nE\n</IfModule>\n<IfModule !ssl_module>\nF\n</IfModule>\n<IfModule log_config_module>\nG\n</IfModule>\n"},
			want: "LoadModule proxy_module|modules/mod_proxy.so\nA\nB\nF\nG\n"},
		{name: "IfDefine from -D and from Define", files: map[string]string{"httpd.conf": "" +
			"<IfDefine SSL>\nA\n</IfDefine>\n<IfDefine !SSL>\nB\n</IfDefine>\n<IfDefine LATER>\nC\n</IfDefine>\nDefine LATER\n<IfDefine LATER>\nD\n</IfDefine>\n"},
			opts: Options{Defines: []string{"SSL"}},
			want: "A\nDefine LATER\nD\n"},
		{name: "IfVersion", files: map[string]string{"httpd.conf": "" +
			"<IfVersion >= 2.4>\nA\n</IfVersion>\n<IfVersion < 2.4>\nB\n</IfVersion>\n<IfVersion ~ ^2\\.4\\.>\nC\n</IfVersion>\n<IfVersion = 2.4.62>\nD\n</IfVersion>\n<IfVersion !~ ^2\\.4>\nE\n</IfVersion>\n"},
			want: "A\nC\nD\n"},
		{name: "Include: a glob relative to ServerRoot, a directory (sorted by name, recursively, as httpd), and IncludeOptional of nothing", files: map[string]string{
			"httpd.conf":     "ServerRoot ROOT\nInclude conf.d/*.conf\nInclude more\nIncludeOptional none/*.conf\nIncludeOptional missing.conf\nZ\n",
			"conf.d/b.conf":  "B\n",
			"conf.d/a.conf":  "A\n",
			"conf.d/c.txt":   "NOT\n",
			"more/x.conf":    "X\n",
			"more/sub/y.cnf": "Y\n"},
			want: "ServerRoot ROOT\nInclude conf.d/*.conf\nA\nB\nInclude more\nY\nX\nIncludeOptional none/*.conf\nIncludeOptional missing.conf\nZ\n"},
		{name: "sections keep their contents", files: map[string]string{"httpd.conf": "<VirtualHost *:80>\n  ServerName a\n  <Location /x/>\n    Require all granted\n  </Location>\n</VirtualHost>\n"},
			want: "VirtualHost *:80\n  ServerName a\n  Location /x/\n    Require all|granted\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			main := filepath.Join(dir, "httpd.conf")
			if b, _ := os.ReadFile(main); strings.Contains(string(b), "ROOT") {
				_ = os.WriteFile(main, []byte(strings.ReplaceAll(string(b), "ROOT", dir)), 0o644)
			}
			tree, err := Parse(main, c.opts)
			if err != nil {
				t.Fatal(err)
			}
			got := strings.ReplaceAll(flat(tree.Directives, ""), dir, "ROOT")
			if got != c.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, c.want)
			}
		})
	}
}

// Each error names the file and line, and says what to do.
func TestParseErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing Include", map[string]string{"httpd.conf": "A\nInclude nope.conf\n"}, `httpd.conf:2: Include "nope.conf": no such file`},
		{"Include glob matching nothing", map[string]string{"httpd.conf": "Include conf.d/*.conf\n"}, `httpd.conf:1: Include "conf.d/*.conf" matches no file`},
		{"unclosed section", map[string]string{"httpd.conf": "A\n<VirtualHost *:80>\nB\n"}, "httpd.conf:2: <VirtualHost> is never closed"},
		{"wrong closing tag", map[string]string{"httpd.conf": "<VirtualHost *:80>\n<Location />\n</VirtualHost>\n"}, "httpd.conf:3: </VirtualHost> closes <Location> (line 2)"},
		{"stray closing tag", map[string]string{"httpd.conf": "A\n</Location>\n"}, "httpd.conf:2: </Location> without a matching opening section"},
		{"in an included file", map[string]string{"httpd.conf": "Include x.conf\n", "x.conf": "\n<Proxy balancer://a>\n"}, "x.conf:2: <Proxy> is never closed"},
		{"open quote", map[string]string{"httpd.conf": "Header set X \"a\n"}, "httpd.conf:1: a \" quote is not closed"},
		{"a file that includes itself", map[string]string{"httpd.conf": "Include httpd.conf\n"}, "included more than 128 levels deep"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			_, err := Parse(filepath.Join(dir, "httpd.conf"), Options{})
			if err == nil {
				t.Fatal("no error")
			}
			if msg := strings.ReplaceAll(err.Error(), dir+"/", ""); !strings.Contains(msg, c.want) {
				t.Errorf("error %q does not say %q", msg, c.want)
			}
		})
	}
}

// A false conditional is listed in Skipped with its position, so the report
// can say what httpd skips; one inside a false one is not (httpd never
// looks at it).
func TestParseSkipped(t *testing.T) {
	dir := writeTree(t, map[string]string{"httpd.conf": "<IfModule ssl_module>\n  <IfDefine X>\n  </IfDefine>\n</IfModule>\n<IfDefine !X>\n</IfDefine>\n<IfVersion < 2.0>\n</IfVersion>\n"})
	tree, err := Parse(filepath.Join(dir, "httpd.conf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range tree.Skipped {
		got = append(got, fmt.Sprintf("%d <%s %s>", d.Line, d.Name, strings.Join(d.Args, " ")))
	}
	if want := "1 <IfModule ssl_module>, 7 <IfVersion < 2.0>"; strings.Join(got, ", ") != want {
		t.Errorf("Skipped = %q; want %q", strings.Join(got, ", "), want)
	}
}

// A main file named relative to the working folder gives an absolute
// ServerRoot, as httpd's, so the paths an import writes hold wherever the
// config is loaded from.
func TestServerRootAbsolute(t *testing.T) {
	dir := writeTree(t, map[string]string{"httpd.conf": "Listen 80\n"})
	t.Chdir(dir)
	tree, err := Parse("httpd.conf", Options{NoEnvvars: true})
	if err != nil {
		t.Fatal(err)
	}
	if tree.ServerRoot != dir {
		t.Errorf("ServerRoot %q, want %q", tree.ServerRoot, dir)
	}
}
