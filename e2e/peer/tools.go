package peer

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// RequireEnv is the environment variable that turns missing peers into test
// failures instead of skips. e2e/test.sh (and so CI) sets it to 1.
const RequireEnv = "WEBTIER_E2E_REQUIRE"

// toolPackages maps the programs the e2e tests run to the Debian package
// that installs them.
var toolPackages = map[string]string{
	"named":               "bind9",
	"named-checkconf":     "bind9 (bind9-utils)",
	"named-checkzone":     "bind9 (bind9-utils)",
	"nsupdate":            "bind9-dnsutils",
	"dig":                 "bind9-dnsutils",
	"nft":                 "nftables",
	"ip":                  "iproute2",
	"unshare":             "util-linux",
	"mount":               "mount",
	"haproxy":             "haproxy",
	"pebble":              "pebble",
	"pebble-challtestsrv": "pebble",
	"go":                  "golang (or a Go toolchain on PATH)",
}

// Required reports whether missing peers must fail tests
// (WEBTIER_E2E_REQUIRE=1) rather than skip them.
func Required() bool { return os.Getenv(RequireEnv) == "1" }

// RequireTools skips the test when one of the named programs is not on PATH
// (or fails it when WEBTIER_E2E_REQUIRE=1), naming the Debian package that
// installs each missing program.
func RequireTools(t testing.TB, names ...string) {
	t.Helper()
	var missing []string
	for _, name := range names {
		if _, err := exec.LookPath(name); err == nil {
			continue
		}
		pkg, ok := toolPackages[name]
		if !ok {
			pkg = "the Debian package that provides it"
		}
		missing = append(missing, fmt.Sprintf("%s (apt package %s)", name, pkg))
	}
	if len(missing) == 0 {
		return
	}
	unavailable(t, "missing tools: %s; e2e/test.sh installs them (run it as root)", strings.Join(missing, ", "))
}

// unavailable fails the test under WEBTIER_E2E_REQUIRE=1 and skips it
// otherwise.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (%s=1: required)", msg, RequireEnv)
	}
	t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
}
