package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// aptPackages are the peers the benchmark runs (h2load is in nghttp2-client;
// tomcat10 brings OpenJDK). run installs only those the selected scenarios
// and columns need.
var aptPackages = []string{"nginx", "haproxy", "apache2", "caddy", "wrk", "nghttp2-client", "tomcat10"}

func installed(pkg string) bool {
	return exec.Command("dpkg", "-s", pkg).Run() == nil
}

// installPeers installs the missing packages with apt-get, bounded in time.
// A package the archive does not have (e.g. caddy on some releases) is
// skipped and reported; its column becomes n/a.
func installPeers(ctx context.Context, pkgs []string) error {
	var missing []string
	for _, p := range pkgs {
		if !installed(p) {
			missing = append(missing, p)
		}
	}
	if len(missing) == 0 {
		logf("peers: all installed (%s)", strings.Join(pkgs, " "))
		return nil
	}
	logf("peers: missing %s", strings.Join(missing, " "))
	if os.Geteuid() != 0 {
		return fmt.Errorf("installing %s needs root (or install them yourself, or pass -no-install)", strings.Join(missing, " "))
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	run := func(argv ...string) error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		return cmd.Run()
	}
	if err := run("apt-get", "update"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	var avail []string
	for _, p := range missing {
		if exec.CommandContext(ctx, "apt-cache", "show", "--no-all-versions", p).Run() != nil {
			logf("peers: %s is not in this system's package archive; its column will be n/a", p)
			continue
		}
		avail = append(avail, p)
	}
	if len(avail) == 0 {
		return nil
	}
	return run(append([]string{"apt-get", "install", "-y", "--no-install-recommends"}, avail...)...)
}

// raiseNofile raises RLIMIT_NOFILE for the benchmark and, by inheritance,
// for the peers it starts (calling Setrlimit also stops Go from restoring the
// old soft limit in children). Returns the soft limit now in force.
func raiseNofile(want uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if rl.Max < want && os.Geteuid() == 0 {
		raised := syscall.Rlimit{Cur: want, Max: want}
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			return want
		}
	}
	rl.Cur = rl.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

// buildWebtier builds ./cmd/webtier of the module containing the working
// directory into dir.
func buildWebtier(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("cannot find the webtier module (go env GOMOD: %q, %v); run from the repository", gomod, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "bin", "webtier") // dir/webtier is webtier's config dir
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/webtier")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/webtier: %v\n%s", err, out)
	}
	return bin, nil
}

// writeCert writes a self-signed ECDSA P-256 certificate for 127.0.0.1 and
// localhost (cert, key, and both in one file for HAProxy).
func writeCert(e *env, dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(48 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	e.certFile = filepath.Join(dir, "cert.pem")
	e.keyFile = filepath.Join(dir, "key.pem")
	e.comboFile = filepath.Join(dir, "combined.pem")
	if err := os.WriteFile(e.certFile, certPEM, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(e.keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	return os.WriteFile(e.comboFile, append(certPEM, keyPEM...), 0o600)
}

// freePorts returns n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// checkHTTP GETs every body of bodies (path -> size) through url base and
// checks size and status; with h2 it also requires HTTP/2.
func checkHTTP(base string, h2 bool, bodies map[string]int) error {
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, // our own self-signed cert
		ForceAttemptHTTP2: true,
		DisableKeepAlives: !h2,
	}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for path, n := range bodies {
		resp, err := cl.Get(base + path)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != 200 || len(body) != n {
			return fmt.Errorf("GET %s%s: status %d, %d bytes (want 200, %d bytes)", base, path, resp.StatusCode, len(body), n)
		}
		if h2 && resp.ProtoMajor != 2 {
			return fmt.Errorf("GET %s%s: got %s, want HTTP/2", base, path, resp.Proto)
		}
	}
	return nil
}

// waitReady polls the bodies through base until they answer 200 and then
// the extra check ready (when not nil) passes, the daemon exits, or
// timeout passes.
func waitReady(ctx context.Context, d *daemon, base string, bodies map[string]int, timeout time.Duration, ready func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	httpOK := false
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d.exited() {
			return fmt.Errorf("%s exited during start-up; log:\n%s", d.name, d.logTail())
		}
		if !httpOK {
			if last = checkHTTP(base, false, bodies); last == nil {
				httpOK = true
			}
		}
		if httpOK {
			if ready == nil {
				return nil
			}
			if last = ready(); last == nil {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %s (%v); log:\n%s", d.name, timeout, last, d.logTail())
}

// machine describes the host for the report header.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	mem := readKiB("/proc/meminfo", "MemTotal")
	deb, _ := os.ReadFile("/etc/debian_version")
	return fmt.Sprintf("nproc %d, %s, %.1f GiB RAM, Linux %s, Debian %s, %s",
		runtime.NumCPU(), model, float64(mem)/(1<<20), strings.TrimSpace(string(kernel)),
		strings.TrimSpace(string(deb)), runtime.Version())
}

// versionOf runs argv and returns the first line of its output.
func versionOf(argv []string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil && line == "" {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(line)
}

var errInterrupted = errors.New("interrupted")

var stubAccepts = regexp.MustCompile(`(?m)^\s*(\d+)\s+(\d+)\s+(\d+)\s*$`)

// parseStubStatus returns the "accepts" counter of nginx's stub_status page.
func parseStubStatus(body string) (int64, error) {
	m := stubAccepts.FindStringSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("stub_status: no counters in %q", body)
	}
	return strconv.ParseInt(m[1], 10, 64)
}

// backendAccepts reads how many connections the backend nginx has accepted.
func backendAccepts(port int) (int64, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/status", port))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	return parseStubStatus(string(b))
}
