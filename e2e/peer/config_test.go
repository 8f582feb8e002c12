package peer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTomcatBase checks the files TomcatBase writes for the e2e tests'
// Tomcat and for e2e/bench's (no JVM is started).
func TestTomcatBase(t *testing.T) {
	for _, c := range []struct {
		name    string
		base    TomcatBase
		want    map[string][]string // file -> substrings
		notWant map[string][]string
	}{
		{
			name: "tests",
			base: (&Tomcat{opts: TomcatOptions{Secret: "s", AllowedAttributes: "^X_.*", PacketSize: 16384, JvmRoute: "a&b"},
				ip: "127.0.0.7", httpPort: 8080, ajpPort: 8009}).baseConfig(),
			want: map[string][]string{
				"conf/server.xml": {
					`<Connector address="127.0.0.7" port="8080" protocol="HTTP/1.1" connectionTimeout="20000"/>`,
					`<Connector address="127.0.0.7" port="8009" protocol="AJP/1.3"`,
					`secretRequired="true" secret="s"`,
					`allowedRequestAttributesPattern="^X_.*"`, `maxPostSize="-1"`, `packetSize="16384"/>`,
					`<Engine name="Catalina" defaultHost="localhost" jvmRoute="a&amp;b">`,
					`<Server port="-1" shutdown="SHUTDOWN">`,
				},
				"conf/web.xml":          {"org.apache.jasper.servlet.JspServlet", "<url-pattern>*.jsp</url-pattern>"},
				"bin/setenv.sh":         {`JAVA_OPTS="` + TomcatFastStartJavaOpts + `"`},
				"conf/context.xml":      {`scanClassPath="false"`},
				"webapps/ROOT/echo.jsp": {"requestURI"},
			},
		},
		{
			name: "bench",
			base: TomcatBase{IP: "127.0.0.1", HTTPPort: 1, AJPPort: 2, Secret: "x",
				HTTPAttrs: `keepAliveTimeout="120000" maxKeepAliveRequests="-1"`, AJPAttrs: `acceptCount="4096"`,
				JavaOpts: "-Xmx256m", Files: map[string]string{"/100.txt": "x\n"}},
			want: map[string][]string{
				"conf/server.xml": {
					"connectionTimeout=\"20000\"\n               keepAliveTimeout=\"120000\" maxKeepAliveRequests=\"-1\"/>",
					"tomcatAuthentication=\"false\"\n               acceptCount=\"4096\"/>",
					`<Engine name="Catalina" defaultHost="localhost">`,
				},
				"conf/web.xml":         {"org.apache.catalina.servlets.DefaultServlet"},
				"bin/setenv.sh":        {`JAVA_OPTS="-Xmx256m"`},
				"webapps/ROOT/100.txt": {"x\n"},
			},
			notWant: map[string][]string{
				"conf/server.xml": {"allowedRequestAttributesPattern", "maxPostSize", "jvmRoute"},
				"conf/web.xml":    {"jsp"},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.base.Dir = t.TempDir()
			if err := c.base.Write(); err != nil {
				t.Fatal(err)
			}
			check := func(m map[string][]string, want bool) {
				for file, subs := range m {
					b, err := os.ReadFile(filepath.Join(c.base.Dir, file))
					if err != nil {
						t.Fatal(err)
					}
					for _, sub := range subs {
						if strings.Contains(string(b), sub) != want {
							t.Errorf("%s: contains %q = %v, want %v:\n%s", file, sub, !want, want, b)
						}
					}
				}
			}
			check(c.want, true)
			check(c.notWant, false)
			if got := c.base.Command(); got[len(got)-2] != TomcatCatalinaSh || !strings.Contains(strings.Join(got, " "), "CATALINA_BASE="+c.base.Dir) {
				t.Errorf("Command() = %q", got)
			}
		})
	}
}

// TestBINDConfig checks named.conf and the zone file BINDConfig writes
// (named is not started).
func TestBINDConfig(t *testing.T) {
	for _, c := range []struct {
		name     string
		cfg      BINDConfig
		wantConf []string
		wantZone []string
		wantErr  bool
	}{
		{
			name: "bench failover",
			cfg: BINDConfig{Port: 53, Zone: "bench.test.",
				Records: []Record{{Name: "app", TTL: 1, Type: "A", Value: "127.0.0.2"}}},
			wantConf: []string{"listen-on port 53 { 127.0.0.1; };", `zone "bench.test" {`, "allow-update { 127.0.0.0/8; };", "querylog yes;"},
			wantZone: []string{"$ORIGIN bench.test.\n$TTL 1\n", "@ IN SOA ns1.bench.test. hostmaster.bench.test. 1 3600 600 86400 0\n",
				"ns1 IN A 127.0.0.1\n", "app.bench.test. 1 IN A 127.0.0.2\n"},
		},
		{
			name: "absolute names and zone lines",
			cfg: BINDConfig{Port: 5353, Zone: "proxy.test.",
				Records:   []Record{{Name: "_ready.proxy.test.", Type: "txt", Value: `"n"`}, {Name: "@", TTL: 5, Type: "A", Value: "127.0.0.9"}},
				ZoneLines: []string{"x 3 IN CNAME app"}},
			wantZone: []string{"_ready.proxy.test. 0 IN TXT \"n\"\n", "proxy.test. 5 IN A 127.0.0.9\n", "x 3 IN CNAME app\n"},
		},
		{name: "record without a value", cfg: BINDConfig{Zone: "z.", Records: []Record{{Name: "a", Type: "A"}}}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Dir = t.TempDir()
			err := c.cfg.Write()
			if (err != nil) != c.wantErr {
				t.Fatalf("Write() = %v, want error %v", err, c.wantErr)
			}
			if err != nil {
				return
			}
			for file, subs := range map[string][]string{"named.conf": c.wantConf, "zone.db": c.wantZone} {
				b, err := os.ReadFile(filepath.Join(c.cfg.Dir, file))
				if err != nil {
					t.Fatal(err)
				}
				for _, sub := range subs {
					if !strings.Contains(string(b), sub) {
						t.Errorf("%s lacks %q:\n%s", file, sub, b)
					}
				}
			}
			if got := strings.Join(c.cfg.Command(), " "); got != "named -g -4 -n 1 -c "+c.cfg.ConfPath() {
				t.Errorf("Command() = %q", got)
			}
		})
	}
}
