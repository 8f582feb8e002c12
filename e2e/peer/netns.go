package peer

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NetnsEnv is set, to the namespace's name, in a test binary that InNetns
// re-executed inside a network namespace it created. Blackhole and Reject
// refuse to run without it.
const NetnsEnv = "WEBTIER_E2E_NETNS"

// hostNetnsEnv carries the network namespace of the process that ran
// InNetns (the link /proc/self/ns/net), so the child can check it left it.
const hostNetnsEnv = "WEBTIER_E2E_HOST_NETNS"

// netnsPrefix starts the name of every namespace InNetns creates; the rest
// is random, so concurrent runs on one machine never share one.
const netnsPrefix = "wt-"

// netnsCmdTimeout bounds one `ip netns ...` or `nft ...` command.
const netnsCmdTimeout = 10 * time.Second

// InNetns runs the calling test inside a network namespace of its own, so
// that it may break the network (Blackhole, Reject) without touching the
// host. Call it first in the test, as
//
//	if !peer.InNetns(t) {
//		return // the test ran in its namespace, and passed
//	}
//
// Outside a namespace (NetnsEnv unset) it creates one (`ip netns add
// wt-<random>`, lo up), builds webtier once here (Build) and hands the
// binary to the child, re-executes this test binary in the namespace for
// exactly this test (`-test.run` anchored on every element of t.Name(), so
// a subtest runs alone), logs the child's output line by line with t.Log,
// fails the test if the child fails, skips it if the child skipped, and
// returns false. In t.Cleanup it kills what is left in the namespace (`ip
// netns pids`, which lists only processes inside it) and deletes it.
//
// Inside the namespace (the child) it checks that the process really is in
// the namespace NetnsEnv names and returns true: the test body runs there.
// Inside, 127.0.0.1/8 is on lo, so every 127.x.y.z is local; StartBIND,
// StartBackends and StartWebtier work unchanged.
//
// Without root, `ip` or `nft`, or when namespaces cannot be created, the
// test is skipped (failed under WEBTIER_E2E_REQUIRE=1).
func InNetns(t *testing.T) bool {
	t.Helper()
	if ns := os.Getenv(NetnsEnv); ns != "" {
		if err := checkInNetns(ns); err != nil {
			t.Fatalf("InNetns: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		unavailable(t, "network namespaces need root (euid %d)", os.Geteuid())
	}
	RequireTools(t, "ip", "nft")
	bin := Build(t)
	host, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		unavailable(t, "network namespaces: %v", err)
	}

	ns := netnsPrefix + randomHex(4)
	if out, err := runTool("ip", "netns", "add", ns); err != nil {
		unavailable(t, "ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() { deleteNetns(t, ns) })
	if out, err := runTool("ip", "-n", ns, "link", "set", "lo", "up"); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", ns, err, out)
	}

	ctx := context.Background()
	if dl, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		// Leave time for the child's cleanups and ours.
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-5*time.Second))
		defer cancel()
	}
	args := []string{"netns", "exec", ns, os.Args[0],
		"-test.run", runPattern(t.Name()), "-test.v=true", "-test.count=1"}
	if dl, ok := ctx.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(dl).Round(time.Second).String())
	}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	if f := flag.Lookup("test.failfast"); f != nil && f.Value.String() == "true" {
		args = append(args, "-test.failfast")
	}
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = append(os.Environ(), NetnsEnv+"="+ns, hostNetnsEnv+"="+host, BinEnv+"="+bin)
	out := &lineLog{t: t, prefix: ns + "| "}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = 5 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	t.Logf("InNetns: running %s in network namespace %s", t.Name(), ns)
	err = cmd.Run()
	out.flush()
	all := out.String()
	name := regexp.QuoteMeta(t.Name())
	switch {
	case err != nil:
		t.Fatalf("InNetns: %s in namespace %s: %v", t.Name(), ns, err)
	case regexp.MustCompile(`(?m)^\s*--- SKIP: ` + name + ` `).MatchString(all):
		t.Skipf("InNetns: %s skipped in namespace %s", t.Name(), ns)
	case !regexp.MustCompile(`(?m)^\s*--- PASS: ` + name + ` `).MatchString(all):
		t.Fatalf("InNetns: the child in namespace %s did not run %s (pattern %q)", ns, t.Name(), runPattern(t.Name()))
	}
	return false
}

// runPattern is a -test.run value that selects exactly the test name (a
// top-level test or a subtest path).
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// checkInNetns verifies that this process runs in the namespace named ns,
// created by InNetns, and not in the host's.
func checkInNetns(ns string) error {
	if !strings.HasPrefix(ns, netnsPrefix) {
		return fmt.Errorf("%s=%q is not a namespace InNetns created", NetnsEnv, ns)
	}
	out, err := runTool("ip", "netns", "identify", strconv.Itoa(os.Getpid()))
	if err != nil {
		return fmt.Errorf("ip netns identify: %v: %s", err, out)
	}
	if got := strings.TrimSpace(out); got != ns {
		return fmt.Errorf("%s=%s, but this process is in network namespace %q", NetnsEnv, ns, got)
	}
	self, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return err
	}
	if host := os.Getenv(hostNetnsEnv); host == "" || self == host {
		return fmt.Errorf("this process is in the network namespace of the test that started it (%s=%q, here %s)", hostNetnsEnv, host, self)
	}
	return nil
}

// deleteNetns kills what is left in ns (only processes inside it), waits
// for them to go, and deletes it.
func deleteNetns(t testing.TB, ns string) {
	t.Helper()
	pids := func() []int {
		out, _ := runTool("ip", "netns", "pids", ns)
		var ps []int
		for _, f := range strings.Fields(out) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				ps = append(ps, pid)
			}
		}
		return ps
	}
	if left := pids(); len(left) > 0 {
		t.Logf("InNetns: killing processes left in %s: %v", ns, left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if !poll(5*time.Second, func() bool { return len(pids()) == 0 }) {
			t.Errorf("InNetns: processes %v still in %s after SIGKILL", pids(), ns)
		}
	}
	if out, err := runTool("ip", "netns", "del", ns); err != nil {
		t.Errorf("ip netns del %s: %v: %s", ns, err, out)
	}
}

// runTool runs a short administrative command with a bound.
func runTool(name string, args ...string) (string, error) {
	return runToolInput("", name, args...)
}

func runToolInput(stdin, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), netnsCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// lineLog passes a child's output to t.Log a line at a time and keeps all
// of it.
type lineLog struct {
	t      testing.TB
	prefix string

	mu      sync.Mutex
	all     bytes.Buffer
	pending []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.pending = append(l.pending, p...)
	for {
		i := bytes.IndexByte(l.pending, '\n')
		if i < 0 {
			break
		}
		l.t.Log(l.prefix + string(l.pending[:i]))
		l.pending = l.pending[i+1:]
	}
	return len(p), nil
}

func (l *lineLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) > 0 {
		l.t.Log(l.prefix + string(l.pending))
		l.pending = nil
	}
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}
