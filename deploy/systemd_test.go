package deploy

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const unitFile = "systemd/webtier.service"

// unit reads a systemd unit file: section -> key -> values, in order (a
// key may be given more than once).
func unit(t *testing.T, file string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: %q is not Key=Value in a section", file, n, line)
			}
			out[section][strings.TrimSpace(k)] = append(out[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The unit runs webtier as Type=notify with the config at
// /etc/webtier/webtier.yaml, reloads with SIGHUP, gives the drain the time
// it takes before SIGKILL, and locks the service down.
func TestSystemdUnit(t *testing.T) {
	u := unit(t, unitFile)
	svc := u["Service"]
	if svc == nil {
		t.Fatalf("%s: no [Service]", unitFile)
	}
	// The drain the unit must wait for is the one of the config it runs;
	// the image's example is what a fresh install starts with.
	want := drainSettings(t, "webtier.yaml")
	one := func(key string) string {
		if v := svc[key]; len(v) > 0 {
			return v[len(v)-1] // the last assignment wins
		}
		return ""
	}
	for _, tc := range []struct{ key, want string }{
		{"Type", "notify"},
		{"ExecStart", "/usr/local/bin/webtier -config /etc/webtier/webtier.yaml"},
		{"KillSignal", "SIGTERM"},
		{"Restart", "on-failure"},
		{"NoNewPrivileges", "yes"},
		{"ProtectSystem", "strict"},
		{"ProtectHome", "yes"},
		{"PrivateTmp", "yes"},
		{"CapabilityBoundingSet", "CAP_NET_BIND_SERVICE"},
		{"AmbientCapabilities", "CAP_NET_BIND_SERVICE"},
		{"RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"},
	} {
		if got := one(tc.key); got != tc.want {
			t.Errorf("%s: %s=%s; want %s", unitFile, tc.key, got, tc.want)
		}
	}
	if !slices.Contains(svc["ExecReload"], "/bin/kill -HUP $MAINPID") {
		t.Errorf("%s: ExecReload %q; want /bin/kill -HUP $MAINPID", unitFile, svc["ExecReload"])
	}
	if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
		t.Errorf("%s: SystemCallFilter %q; want @system-service", unitFile, svc["SystemCallFilter"])
	}
	if one("DynamicUser") != "yes" && one("User") == "" {
		t.Errorf("%s: runs as root; want DynamicUser=yes or User=", unitFile)
	}
	if one("LimitNOFILE") == "" {
		t.Errorf("%s: no LimitNOFILE: a busy proxy needs more than the default 1024 descriptors", unitFile)
	}
	stop, err := time.ParseDuration(one("TimeoutStopSec"))
	if err != nil {
		t.Fatalf("%s: TimeoutStopSec=%s: write it as Go and systemd both read it, e.g. 60s", unitFile, one("TimeoutStopSec"))
	}
	if need := want.DrainWait + want.DrainTimeout; stop < need {
		t.Errorf("%s: TimeoutStopSec=%v; want at least drain.wait %v + drain.timeout %v = %v, or SIGKILL cuts the drain short",
			unitFile, stop, want.DrainWait, want.DrainTimeout, need)
	}
}

// systemd-analyze accepts the unit: no unknown key, no value it would
// ignore, no missing command. It needs no running systemd, so it runs in
// CI's container; where it cannot run at all (it fails on a unit that
// is certainly right), the test says so and skips.
func TestSystemdAnalyzeVerify(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("WEBTIER_E2E_REQUIRE") != "" {
			t.Fatal("systemd-analyze is missing; e2e/test.sh installs the systemd package")
		}
		t.Skip("systemd-analyze is missing (apt-get install systemd)")
	}
	dir := t.TempDir()
	verify := func(name, text string) (string, error) {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(bin, "verify", "--man=no", file).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := verify("control.service", "[Service]\nExecStart=/bin/true\n"); err != nil || out != "" {
		t.Skipf("systemd-analyze verify cannot run here: it rejects a trivial unit too (%v): %s", err, out)
	}
	src, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart's binary to exist; it is not installed here,
	// so point it at an executable that is: this test's own binary.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(src), "/usr/local/bin/webtier", self)
	out, err := verify("webtier.service", text)
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	if err != nil || out != "" {
		t.Errorf("systemd-analyze verify %s (%v):\n%s", unitFile, err, out)
	}
}
