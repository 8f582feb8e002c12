package peer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// BinEnv names an environment variable holding the path of an already built
// webtier binary; when set, Build returns it instead of building.
const BinEnv = "WEBTIER_E2E_BIN"

// MainPackage is the package Build builds, relative to the module root.
const MainPackage = "./cmd/webtier"

// buildTimeout bounds one `go build` of webtier.
const buildTimeout = 5 * time.Minute

// build holds the result of the one build per test process.
var build struct {
	once sync.Once
	dir  string // temporary directory holding the binary; removed by Main
	path string
	err  error
	skip string // non-empty: no main package yet; the reason
}

// Build builds ./cmd/webtier once per test process (with -race when the test
// binary has it) and returns the binary's path. The binary lives in a
// directory from os.MkdirTemp that outlives single tests; Main removes it,
// otherwise it is left in $TMPDIR (named webtier-e2e-bin-*). With
// WEBTIER_E2E_BIN set, that binary is used instead. If cmd/webtier has no
// main package yet, the test is skipped (failed under WEBTIER_E2E_REQUIRE=1).
func Build(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(BinEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", BinEnv, p, err)
		}
		return p
	}
	build.once.Do(doBuild)
	switch {
	case build.skip != "":
		unavailable(t, "%s", build.skip)
	case build.err != nil:
		t.Fatalf("Build: %v", build.err)
	}
	return build.path
}

// RaceBuilt reports whether Build builds webtier with the race detector,
// whose shadow memory a test bounding webtier's RSS must allow for.
func RaceBuilt() bool { return raceEnabled && os.Getenv(BinEnv) == "" }

// HasMain reports whether the module has a main package at MainPackage
// whose imports all resolve (other packages may still be being written).
// When not, it returns what is missing.
func HasMain() (bool, string) {
	root, err := ModuleRoot()
	if err != nil {
		return false, err.Error()
	}
	cmd := exec.Command(goTool(), "list", "-e", "-f",
		`{{.Name}}{{"\n"}}{{with .Error}}{{.}}{{"\n"}}{{end}}{{range .DepsErrors}}{{.}}{{"\n"}}{{end}}`, MainPackage)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	name, problems, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	switch {
	case err != nil:
		return false, fmt.Sprintf("go list %s: %v: %s", MainPackage, err, out)
	case name != "main":
		return false, fmt.Sprintf("%s is not a main package yet (go list: %s)", MainPackage, strings.TrimSpace(string(out)))
	case problems != "":
		return false, fmt.Sprintf("%s does not resolve all its imports yet: %s", MainPackage, problems)
	}
	return true, ""
}

func doBuild() {
	if ok, why := HasMain(); !ok {
		build.skip = why
		return
	}
	root, err := ModuleRoot()
	if err != nil {
		build.err = err
		return
	}
	dir, err := os.MkdirTemp("", "webtier-e2e-bin-")
	if err != nil {
		build.err = err
		return
	}
	build.dir = dir
	path := filepath.Join(dir, "webtier")
	args := []string{"build", "-o", path}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, MainPackage)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		build.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		return
	}
	build.path = path
}

// ModuleRoot returns the directory of the main module's go.mod, found from
// the working directory (go test runs in the package's directory).
func ModuleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Main runs the tests of an e2e package: call it from TestMain. After the
// tests it removes the binary Build made and, when they passed, fails the run
// if goroutines started during the tests are still running 5 s later
// (leaked backends, process waiters, HTTP connections).
func Main(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	if code == 0 {
		if err := checkGoroutines(before, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func checkGoroutines(before int, wait time.Duration) error {
	http.DefaultClient.CloseIdleConnections()
	if poll(wait, func() bool { return runtime.NumGoroutine() <= before }) {
		return nil
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return fmt.Errorf("peer.Main: %d goroutines still running after the tests, %d before:\n%s",
		runtime.NumGoroutine(), before, buf)
}

// FreeAddr returns "ip:port" with a TCP port that was free on ip at the
// time of the call, for listeners of the binary under test.
func FreeAddr(t testing.TB, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("FreeAddr(%q): %v", ip, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Webtier is a running webtier process.
type Webtier struct {
	p          *proc
	listenAddr string
	configPath string
}

// StartWebtier writes configYAML to a file under t.TempDir(), starts
// `bin -config FILE` with stdout and stderr going to one log file, and
// returns once listenAddr (the config's first listener, e.g. from FreeAddr)
// accepts TCP connections. In t.Cleanup it sends SIGINT (SIGKILL after
// 10 s) and waits; if the test failed, it logs the last 50 log lines.
// SIGINT stops webtier without the drain wait SIGTERM has (drain.wait,
// 20 s by default); a test of the drain sends SIGTERM itself (Signal).
func StartWebtier(t testing.TB, bin, listenAddr, configYAML string) *Webtier {
	t.Helper()
	return startWebtier(t, nil, bin, listenAddr, configYAML)
}

// StartWebtierWithHosts is StartWebtier with webtier in a mount namespace
// of its own where hostsPath is bind-mounted over /etc/hosts, so that it
// reads a private hosts file at the default path. The file can be
// rewritten in place (os.WriteFile) while webtier runs. It needs root and
// unshare(1) from util-linux.
func StartWebtierWithHosts(t testing.TB, bin, listenAddr, configYAML, hostsPath string) *Webtier {
	t.Helper()
	return startWebtier(t, WithHostsFile(hostsPath), bin, listenAddr, configYAML)
}

// WithHostsFile returns the argv prefix that runs a command in a mount
// namespace of its own with hostsPath bind-mounted over /etc/hosts. The
// command keeps the PID of the prefix (each step execs the next).
func WithHostsFile(hostsPath string) []string {
	return []string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount --bind "$0" /etc/hosts && exec "$@"`, hostsPath}
}

func startWebtier(t testing.TB, prefix []string, bin, listenAddr, configYAML string) *Webtier {
	t.Helper()
	dir := t.TempDir()
	w := &Webtier{listenAddr: listenAddr, configPath: filepath.Join(dir, "webtier.yaml")}
	if err := os.WriteFile(w.configPath, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("StartWebtier: %v", err)
	}
	argv := append(append(slices.Clone(prefix), bin), "-config", w.configPath)
	p, err := startProc(filepath.Join(dir, "webtier.log"), argv...)
	if err != nil {
		t.Fatalf("StartWebtier: %v", err)
	}
	p.stopSig = os.Interrupt
	w.p = p
	// Cleanups run last-registered first: stop, then dump the logs,
	// which then include the shutdown.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("webtier log (%s), last 50 lines:\n%s", p.logPath, tailLines(w.Logs(), 50))
		}
	})
	t.Cleanup(func() {
		if err, killed := p.stop(stopGrace); killed {
			t.Errorf("webtier (pid %d) ignored SIGINT for %v and was killed", p.pid(), stopGrace)
		} else if err != nil {
			t.Logf("webtier (pid %d) exited: %s", p.pid(), exitDescription(err))
		}
	})

	// Every listener of the config, not only listenAddr: webtier binds
	// its listeners one after another, loading each one's certificates
	// first, so the first can accept while a TLS one is not bound yet.
	addrs := append([]string{listenAddr}, configAddrs(configYAML)...)
	ready := poll(readyTimeout, func() bool {
		if p.exited() {
			return true
		}
		for _, a := range addrs {
			if !accepts(a) {
				return false
			}
		}
		return true
	})
	if p.exited() {
		t.Fatalf("webtier exited (%s) before listening on %s; log:\n%s",
			exitDescription(p.waitErr), listenAddr, tailLines(w.Logs(), 50))
	}
	if !ready {
		t.Fatalf("webtier (pid %d) did not accept connections on %s within %v; log:\n%s",
			p.pid(), listenAddr, readyTimeout, tailLines(w.Logs(), 50))
	}
	return w
}

// addressKey finds the `address:` keys of a webtier config (listeners and
// admin), not keys that end in "address" (max_idle_per_address).
var addressKey = regexp.MustCompile(`(?m)(?:^|[\s{,-])address:\s*"?([^"\s,}]+)"?`)

// configAddrs returns the addresses a webtier config listens on, with a
// wildcard or empty host as 127.0.0.1.
func configAddrs(configYAML string) []string {
	var out []string
	for _, m := range addressKey.FindAllStringSubmatch(configYAML, -1) {
		host, port, err := net.SplitHostPort(m[1])
		if err != nil || port == "0" {
			continue
		}
		if host == "" || host == "0.0.0.0" || host == "::" || host == "*" {
			host = "127.0.0.1"
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out
}

// PID returns webtier's process ID.
func (w *Webtier) PID() int { return w.p.pid() }

// Addr returns the listen address given to StartWebtier.
func (w *Webtier) Addr() string { return w.listenAddr }

// URL returns "http://" + the listen address (127.0.0.1 if it has no host).
func (w *Webtier) URL() string {
	host, port, err := net.SplitHostPort(w.listenAddr)
	if err != nil {
		return "http://" + w.listenAddr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// ConfigPath returns the config file webtier was started with.
func (w *Webtier) ConfigPath() string { return w.configPath }

// WriteConfig replaces the config file atomically (write, then rename), for
// reload tests: follow it with Signal(syscall.SIGHUP).
func (w *Webtier) WriteConfig(t testing.TB, configYAML string) {
	t.Helper()
	tmp := w.configPath + ".new"
	if err := os.WriteFile(tmp, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("WriteConfig: %v", err)
	}
	if err := os.Rename(tmp, w.configPath); err != nil {
		t.Fatalf("WriteConfig: %v", err)
	}
}

// Logs returns webtier's stdout and stderr so far, interleaved as written.
func (w *Webtier) Logs() string { return w.p.logs() }

// Signal sends sig to webtier (e.g. syscall.SIGHUP to reload).
func (w *Webtier) Signal(sig os.Signal) error { return w.p.cmd.Process.Signal(sig) }

// Stop sends SIGINT (a stop without the drain wait), waits for webtier to
// exit (SIGKILL after 10 s, which fails the test) and returns its exit
// error: nil for exit status 0.
func (w *Webtier) Stop(t testing.TB) error {
	t.Helper()
	err, killed := w.p.stop(stopGrace)
	if killed {
		t.Errorf("webtier (pid %d) ignored SIGINT for %v and was killed", w.p.pid(), stopGrace)
	}
	return err
}

// Exited is closed when the webtier process has exited.
func (w *Webtier) Exited() <-chan struct{} { return w.p.done }

// WaitLog waits until webtier's log contains substr, failing the test after
// 30 s with the log tail.
func (w *Webtier) WaitLog(t testing.TB, substr string) {
	t.Helper()
	if !poll(readyTimeout, func() bool { return strings.Contains(w.Logs(), substr) }) {
		t.Fatalf("webtier log does not contain %q after %v; last lines:\n%s", substr, readyTimeout, tailLines(w.Logs(), 50))
	}
}
