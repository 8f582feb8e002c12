package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/webtier/webtier/e2e/peer"
)

// chromium returns the path of the Chromium binary, or skips the test
// (fails it when WEBTIER_E2E_REQUIRE=1, as CI sets).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "headless Chromium not found (apt-get install -y chromium); the status page is not tested in a browser"
	if os.Getenv("WEBTIER_E2E_REQUIRE") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artifactDir is where tests leave files for a person to look at:
// $WT_ARTIFACTS, or a new temporary directory that outlives the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("WT_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d, err := os.MkdirTemp("", "webtier-artifacts-")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// adminStatus is the part of GET /api/status this test reads.
type adminStatus struct {
	Upstreams []struct {
		Name    string `json:"name"`
		Targets []struct {
			Host      string `json:"host"`
			Addresses []struct {
				Address string `json:"address"`
				State   string `json:"state"`
			} `json:"addresses"`
		} `json:"targets"`
	} `json:"upstreams"`
	Names []struct {
		Name    string  `json:"name"`
		TTLLeft float64 `json:"ttl_left_seconds"`
	} `json:"names"`
}

func (s adminStatus) state(addr string) string {
	for _, u := range s.Upstreams {
		for _, t := range u.Targets {
			for _, a := range t.Addresses {
				if a.Address == addr {
					return a.State
				}
			}
		}
	}
	return ""
}

func getAdminStatus(t *testing.T, base string) adminStatus {
	t.Helper()
	resp, err := http.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s adminStatus
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatalf("GET /api/status: %d: %v", resp.StatusCode, err)
	}
	return s
}

// Issue 19, the status page as an operator uses it, in a real headless
// Chromium against the real binary: one name with two addresses (from a
// hosts file), the page shows each address's state as the JSON does; a
// click on "Standby" for one address puts it in standby, the JSON says so,
// and every request then goes to the other address. The screenshot is
// left as an artifact.
func TestAdminStatusPageInChromium(t *testing.T) {
	chrome := chromium(t)
	// In a network namespace of its own where it can be (root, ip, nft):
	// the browser then reaches nothing but the namespace's loopback,
	// whatever its background features try.
	_, errIP := exec.LookPath("ip")
	_, errNft := exec.LookPath("nft")
	if errIP == nil && errNft == nil && os.Geteuid() == 0 {
		if !peer.InNetns(t) {
			return // ran in its namespace, and passed
		}
	} else {
		t.Log("not root, or no ip(8) or nft(8): Chromium runs on the host's loopback")
	}
	bs := peer.StartBackends(t, "127.0.0.2", "127.0.0.3")
	keep, leave := bs[0].Addr(), bs[1].Addr()
	dir := t.TempDir()
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.2 app.test\n127.0.0.3 app.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, base := startAdminWebtier(t, []string{fmt.Sprintf("http://app.test:%d", bs[0].Port())}, "    balance: round_robin\n", "",
		fmt.Sprintf("resolver:\n  hosts_file: %q\n", hosts))

	// Both addresses running (the first answer comes from the hosts file
	// on the resolver's goroutine).
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := getAdminStatus(t, base)
		if s.state(keep) == "running" && s.state(leave) == "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed %s and %s running: %+v", keep, leave, s)
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true), chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 800))
	actx, cancelA := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()

	row := func(addr string) string { return `tr[data-address="` + addr + `"]` }
	if err := chromedp.Do(bctx, chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(row(leave)+" .state"))); err != nil {
		t.Fatalf("loading the status page: %v\n%s", err, w.Logs())
	}
	st := getAdminStatus(t, base)
	for _, addr := range []string{keep, leave} {
		shown, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(row(addr)+" .state")))
		if err != nil {
			t.Fatal(err)
		}
		if shown != st.state(addr) {
			t.Errorf("page shows %s %q; the JSON says %q", addr, shown, st.state(addr))
		}
	}
	ttl, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(`#names tr[data-name="app.test"] .ttl-left`)))
	if err != nil || !strings.HasSuffix(ttl, " s") {
		t.Errorf("TTL left of app.test on the page: %q %v", ttl, err)
	}

	// Before: round robin sends requests to both addresses.
	send := func(n int) {
		t.Helper()
		for i := range n {
			resp, err := http.Get(w.URL() + fmt.Sprintf("/r%d", i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("request %d: %d", i, resp.StatusCode)
			}
		}
	}
	send(10)
	if bs[0].Count() == 0 || bs[1].Count() == 0 {
		t.Fatalf("before standby: %d and %d requests; want both addresses used", bs[0].Count(), bs[1].Count())
	}

	// Standby from the page.
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(row(leave)+" button.standby")),
		chromedp.WaitVisible(chromedp.CSS(row(leave)+" .state-standby"))); err != nil {
		t.Fatalf("standby from the page: %v", err)
	}
	if s := getAdminStatus(t, base).state(leave); s != "standby" {
		t.Errorf("after the click, the JSON says %s is %q; want standby", leave, s)
	}
	msg, _ := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#message")))
	if !strings.Contains(msg, "standby") {
		t.Errorf("page message after the click: %q", msg)
	}
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(artifactDir(t), "admin-status-page.png")
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("status page screenshot: %s", shot)

	// The traffic follows: round robin would send half of these to the
	// address in standby.
	before := bs[1].Count()
	kept := bs[0].Count()
	send(20)
	if n := bs[0].Count() - kept; n != 20 {
		t.Errorf("%s got %d of 20 requests; want all", keep, n)
	}
	if n := bs[1].Count() - before; n != 0 {
		t.Errorf("%s got %d requests while in standby", leave, n)
	}
	if !strings.Contains(w.Logs(), "admin action") {
		t.Error("the click was not logged as an admin action")
	}
}

func getCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// adminPost sends an action as a tool would: the page token from
// /api/csrf-token in X-Webtier-Token.
func adminPost(t *testing.T, base, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Get(base + "/api/csrf-token")
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
	req.Header.Set("X-Webtier-Token", strings.TrimSpace(string(tok)))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Issue 19: a reload asked through the admin API is SIGHUP's reload: a
// file that does not load answers 422 with the file and line and the old
// config keeps serving; a good one answers 200 and the status shows its
// hash and routes.
func TestAdminAPIReload(t *testing.T) {
	a := peer.StartBackend(t, "127.0.0.1", "a")
	listen := peer.FreeAddr(t, "127.0.0.1")
	adminAddr := peer.FreeAddr(t, "127.0.0.1")
	conf := func(path string) string {
		return fmt.Sprintf(`listeners:
  - address: %q
routes:
  - path: %s
    upstream: app
upstreams:
  app:
    targets: ["http://%s"]
admin:
  address: %q
`, listen, path, a.Addr(), adminAddr)
	}
	w := peer.StartWebtier(t, peer.Build(t), listen, conf("/"))
	base := "http://" + adminAddr
	var before struct {
		Config struct {
			Hash   string `json:"hash"`
			Routes []struct {
				Path string `json:"path"`
			} `json:"routes"`
		} `json:"config"`
	}
	status := func() {
		t.Helper()
		resp, err := http.Get(base + "/api/status")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&before); err != nil {
			t.Fatal(err)
		}
	}
	status()
	oldHash := before.Config.Hash

	w.WriteConfig(t, conf("/")+"upstreams_typo: {}\n")
	if code, body := adminPost(t, base, "/api/reload", ""); code != 422 || !strings.Contains(body, "upstreams_typo") {
		t.Errorf("reload of a bad file: %d %s; want 422 naming the key", code, body)
	}
	if code := getCode(t, w.URL()+"/x"); code != 200 {
		t.Fatalf("after a failed reload: %d; want 200 from the old config", code)
	}

	w.WriteConfig(t, conf("/app/"))
	if code, body := adminPost(t, base, "/api/reload", ""); code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	status()
	if before.Config.Hash == oldHash || len(before.Config.Routes) != 1 || before.Config.Routes[0].Path != "/app/" {
		t.Errorf("status after reload: %+v; want a new hash and the route /app/", before.Config)
	}
	if code := getCode(t, w.URL()+"/x"); code != 404 {
		t.Errorf("/x after the reload: %d; want 404 (no route)", code)
	}
	if !strings.Contains(w.Logs(), "config reloaded") {
		t.Error("the reload was not logged as SIGHUP's is")
	}
}
