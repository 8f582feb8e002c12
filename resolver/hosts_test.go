package resolver_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/webtier/webtier/resolver"
)

func writeHosts(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostsFile: names the hosts file lists, and localhost names, are
// answered without a DNS query, as glibc's "hosts: files dns" does; other
// names, and names the file lists only for another family, go to DNS.
func TestHostsFile(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	writeHosts(t, hosts, `# a container's hosts file
127.0.0.1	localhost
::1	localhost ip6-localhost
10.1.0.5	tomcat.internal Tomcat-Alias.  # the app server
10.1.0.6	tomcat.internal
fe80::1	v6only.internal
not-an-ip	broken.internal
`)
	tests := []struct {
		name    string
		family  resolver.Family
		lookup  string
		want    []string
		queries bool // asked DNS
	}{
		{"listed", resolver.FamilyIPv4, "tomcat.internal", []string{"10.1.0.5", "10.1.0.6"}, false},
		{"alias, case and trailing dot", resolver.FamilyIPv4, "tomcat-alias.", []string{"10.1.0.5"}, false},
		{"localhost", resolver.FamilyIPv4, "localhost", []string{"127.0.0.1"}, false},
		{"localhost v6", resolver.FamilyIPv6, "localhost", []string{"::1"}, false},
		{"localhost both", resolver.FamilyBoth, "LOCALHOST.", []string{"127.0.0.1", "::1"}, false},
		{"under .localhost", resolver.FamilyIPv4, "app.localhost", []string{"127.0.0.1"}, false},
		{"other family only", resolver.FamilyIPv4, "v6only.internal", []string{"10.9.9.9"}, true},
		{"bad line skipped", resolver.FamilyIPv4, "broken.internal", []string{"10.9.9.9"}, true},
		{"not listed", resolver.FamilyIPv4, "app.test", []string{"10.9.9.9"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startServer(t)
			for _, n := range []string{"v6only.internal", "broken.internal", "app.test"} {
				srv.SetA(n, 10, addrs("10.9.9.9")...)
			}
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, resolver.Options{HostsFile: hosts, Family: tt.family}, srv)
				got, err := lookup(t, h.r, tt.lookup)
				if err != nil || !slices.Equal(got, tt.want) {
					t.Errorf("Lookup(%q) = %v, %v; want %v", tt.lookup, got, err, tt.want)
				}
				if asked := srv.Queries() > 0; asked != tt.queries {
					t.Errorf("DNS asked = %v; want %v", asked, tt.queries)
				}
			})
		})
	}
}

// TestHostsFile_followsChanges: the file is read again when it changes;
// a name added to it, moved in it or removed from it is followed within
// the hosts answers' TTL (5 s) plus the once-a-second check.
func TestHostsFile_followsChanges(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	writeHosts(t, hosts, "10.1.0.5 tomcat.internal\n")
	srv := startServer(t)
	srv.SetA("tomcat.internal", 10, addrs("10.9.9.9")...)
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, resolver.Options{HostsFile: hosts}, srv)
		var rec recorder
		defer h.r.Subscribe("tomcat.internal", rec.fn)()
		sleep(0)
		writeHosts(t, hosts, "10.1.0.7 tomcat.internal # moved\n")
		sleep(6 * time.Second)
		if got, _ := lookup(t, h.r, "tomcat.internal"); !slices.Equal(got, []string{"10.1.0.7"}) {
			t.Errorf("after the file changed: %v; want [10.1.0.7]", got)
		}
		os.Remove(hosts)
		sleep(6 * time.Second)
		if got, _ := lookup(t, h.r, "tomcat.internal"); !slices.Equal(got, []string{"10.9.9.9"}) {
			t.Errorf("after the file was removed: %v; want DNS's [10.9.9.9]", got)
		}
		if got, want := fmtSets(rec.calls()), "[10.1.0.5] [10.1.0.7] [10.9.9.9]"; got != want {
			t.Errorf("subscriber calls = %s; want %s", got, want)
		}
		if n := len(h.logs.FilterMessage("dns answer changed").FilterFieldKey("source").All()); n != 3 {
			t.Errorf("answer change log lines with a source = %d; want 3", n)
		}
	})
}

func TestLocalAnswer(t *testing.T) {
	hosts := filepath.Join(t.TempDir(), "hosts")
	writeHosts(t, hosts, "10.1.0.5 tomcat.internal\n")
	for _, tt := range []struct {
		name, src string
		want      []string
	}{
		{"localhost", resolver.SourceLocalhost, []string{"127.0.0.1"}},
		{"tomcat.internal", resolver.SourceHosts, []string{"10.1.0.5"}},
		{"elb.example.com", resolver.SourceDNS, nil},
	} {
		got, src, err := resolver.LocalAnswer(resolver.Options{HostsFile: hosts}, tt.name)
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if err != nil || src != tt.src || !slices.Equal(gs, tt.want) {
			t.Errorf("LocalAnswer(%q) = %v, %q, %v; want %v, %q", tt.name, gs, src, err, tt.want, tt.src)
		}
	}
}
