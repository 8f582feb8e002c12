package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// webtier reads /etc/hosts before DNS, as glibc's "hosts: files dns" does,
// and answers localhost names with the loopback address (RFC 6761): the
// most common httpd line, `ProxyPass / http://localhost:8080/`, works, and
// so do the neighbour names a container's hosts file holds. webtier runs
// in a mount namespace of its own with a private file bind-mounted over
// /etc/hosts, so the test reads the default path and leaves the machine's
// file alone. BIND is the nameserver and has neither name: a request that
// succeeds was answered from the hosts file, and BIND's query log shows it
// was never asked.
func TestHostsFileAndLocalhost(t *testing.T) {
	t.Parallel()
	peer.RequireTools(t, "unshare", "mount")
	ips := []string{"127.0.0.1", "127.0.0.28", "127.0.0.29"}
	bs := peer.StartBackends(t, ips...)
	port := bs[0].Port()
	bind := peer.StartBIND(t, peer.BINDOptions{})
	hosts := filepath.Join(t.TempDir(), "hosts")
	writeFile(t, hosts, "# a private hosts file\n127.0.0.1 localhost\n127.0.0.28 app.internal\n")

	listen := peer.FreeAddr(t, "127.0.0.1")
	cfg := fmt.Sprintf(`
listeners:
  - address: %q
routes:
  - host: lo.test
    upstream: lo
  - upstream: app
upstreams:
  lo:
    targets: [http://localhost:%d]
  app:
    targets: [http://app.internal:%d]
resolver:
  nameservers: [%q]
  query_timeout: 500ms
logging:
  level: info
  format: json
`, listen, port, port, bind.Addr())

	// validate, in the same kind of namespace, says where each name comes from.
	cfgPath := filepath.Join(t.TempDir(), "webtier.yaml")
	writeFile(t, cfgPath, cfg)
	argv := append(peer.WithHostsFile(hosts), peer.Build(t), "validate", "-config", cfgPath)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("webtier validate: %v\n%s", err, out)
	}
	for _, want := range []string{
		"localhost: 127.0.0.1 from the localhost rule (RFC 6761)",
		"app.internal: 127.0.0.28 from the hosts file /etc/hosts",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("validate output lacks %q:\n%s", want, out)
		}
	}

	w := peer.StartWebtierWithHosts(t, peer.Build(t), listen, cfg, hosts)
	results := stream(t, w.URL(), false)
	consume(t, results, "app.internal from the hosts file", false, func(r result) bool { return r.backend == "127.0.0.28" })
	if got := getBackend(t, w.URL(), "lo.test"); got != "127.0.0.1" {
		t.Errorf("localhost target answered by %q; want 127.0.0.1", got)
	}

	// The file changes in place (a container's neighbour moved): followed
	// within the hosts answers' TTL.
	writeFile(t, hosts, "127.0.0.1 localhost\n127.0.0.29 app.internal\n")
	expectFollowWithin(t, results, time.Now(), "127.0.0.29", 5*time.Second+followBound)

	for _, line := range strings.Split(bind.Log(), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "query: localhost") || strings.Contains(l, "query: app.internal") {
			t.Errorf("BIND was asked: %s; want no query for names the hosts file answers", line)
		}
	}
}

// getBackend sends one GET with the given Host and returns the answering
// backend's name (X-Backend).
func getBackend(t *testing.T, url, host string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("GET Host %s: %v", host, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET Host %s: %s", host, resp.Status)
	}
	return resp.Header.Get("X-Backend")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
