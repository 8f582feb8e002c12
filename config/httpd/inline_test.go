package httpd_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	httpdimport "github.com/webtier/webtier/config/httpd"
	"github.com/webtier/webtier/internal/httpdconf"
)

// The main server's JkMount lines reach a virtual host only with
// JkMountCopy (On in the host, All at the server level), as in mod_jk;
// otherwise they are unneeded and make no route.
func TestJkMountCopy(t *testing.T) {
	for _, c := range []struct {
		name, main, vhost string
		route             bool
	}{
		{"not copied", "", "", false},
		{"JkMountCopy On in the host", "", "JkMountCopy On\n", true},
		{"JkMountCopy All at the server", "JkMountCopy All\n", "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write := func(name, text string) {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write("workers.properties", "worker.list=app\nworker.app.type=ajp13\nworker.app.host=10.0.0.5\nworker.app.port=8009\n")
			write("httpd.conf", "LoadModule jk_module modules/mod_jk.so\nListen 80\nJkWorkersFile workers.properties\n"+c.main+
				"JkMount /app/* app\n<VirtualHost *:80>\n    ServerName a.test\n"+c.vhost+"</VirtualHost>\n")
			res := importInline(t, dir)
			var rep strings.Builder
			if _, err := res.Report.WriteTo(&rep); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(string(res.YAML), "path: /app/"); got != c.route {
				t.Errorf("route /app/ written: %v, want %v\n%s", got, c.route, res.YAML)
			}
			unneeded := strings.Contains(rep.String(), "unneeded    httpd.conf:"+map[bool]string{true: "5", false: "4"}[c.main != ""]+": JkMount")
			if unneeded == c.route {
				t.Errorf("JkMount reported unneeded: %v, want %v\n%s", unneeded, !c.route, rep.String())
			}
		})
	}
}

// A <Location> under a DocumentRoot becomes a static route of its own
// whose root is the folder httpd serves that path from, not the
// DocumentRoot itself (webtier looks the rest of the path up under root).
func TestLocationUnderStaticRoot(t *testing.T) {
	dir := t.TempDir()
	conf := "Listen 80\nDocumentRoot " + dir + "/www\n<Location /private>\n    Require ip 127.0.0.1\n</Location>\n"
	if err := os.WriteFile(filepath.Join(dir, "httpd.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	res := importInline(t, dir)
	want := "  - path: /private\n    static:\n      root: " + dir + "/www/private\n"
	if !strings.Contains(string(res.YAML), want) {
		t.Errorf("the import lacks\n%s\nin:\n%s", want, res.YAML)
	}
}

// importInline translates dir/httpd.conf with every key.
func importInline(t *testing.T, dir string) *httpdimport.Result {
	t.Helper()
	tree, err := httpdconf.Parse(filepath.Join(dir, "httpd.conf"), httpdconf.Options{NoEnvvars: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := httpdimport.Translate(tree, httpdimport.Options{Has: featureSets["rules"]})
	if err != nil {
		t.Fatal(err)
	}
	return res
}
