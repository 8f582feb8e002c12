package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/webtier/webtier/e2e/peer"
)

// The attacker's view of a static route (issue 21): no request reaches a
// byte outside the document root, a dotfile, or a directory listing,
// whatever the path's encoding, and a link swapped while requests run
// cannot lead out either. Bodies the attacker must never see:
var leaks = []string{"outside the root", "SECRET=hunter2", "sibling of the root", "root:x:0:0"}

// startStaticWebtier serves s; listenerExtra are YAML lines under the
// listener (four spaces).
func startStaticWebtier(t *testing.T, s *staticSite, listenerExtra ...string) *peer.Webtier {
	t.Helper()
	listen := peer.FreeAddr(t, "127.0.0.1")
	return peer.StartWebtier(t, peer.Build(t), listen, fmt.Sprintf(`listeners:
  - address: %q
%sroutes:
  - path: /
    static: {root: %q}
  - path: /alias/
    static: {root: %q}
logging:
  level: info
  format: json
`, listen, strings.Join(listenerExtra, ""), s.root, filepath.Join(s.root, "docs")))
}

func TestAttackStaticTraversal(t *testing.T) {
	s := makeSite(t)
	if err := syscall.Mkfifo(filepath.Join(s.root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startStaticWebtier(t, s)
	tests := []struct {
		name   string
		target string
		want   []int // acceptable statuses (webtier's own HTTP/1 parser may refuse a target first)
	}{
		{"dotdot", "/../outside/secret.txt", []int{400}},
		{"dotdot-deep", "/sub/../../outside/secret.txt", []int{400}},
		{"dotdot-sibling", "/../www-sibling/other.txt", []int{400}},
		{"encoded-dotdot", "/%2e%2e/outside/secret.txt", []int{400}},
		{"encoded-dotdot-upper", "/sub/%2E%2E/%2E%2E/outside/secret.txt", []int{400}},
		{"encoded-slash", "/sub/..%2f..%2foutside/secret.txt", []int{400}},
		{"encoded-slash-only", "/dir-out%2fsecret.txt", []int{400}},
		{"backslash", "/sub\\..\\..\\outside\\secret.txt", []int{400}},
		{"encoded-backslash", "/..%5c..%5coutside%5csecret.txt", []int{400}},
		{"nul", "/a.txt%00.html", []int{400}},
		{"alias-escape", "/alias/../../outside/secret.txt", []int{400}},
		{"alias-encoded-escape", "/alias/%2e%2e/.env", []int{404}}, // cleaned to /.env: a dotfile
		{"dotfile", "/.env", []int{404}},
		{"encoded-dotfile", "/%2eenv", []int{404}},
		{"dotfile-parameters", "/.env;x=1", []int{404}},
		{"link-out", "/link-out.txt", []int{404}},
		{"dir-link-out", "/dir-out/secret.txt", []int{404}},
		{"double-slash-absolute", "//etc/passwd", []int{404}},
		{"absolute-form", "http://a/../outside/secret.txt", []int{400}},
		{"listing", "/sub/", []int{404}},
		{"fifo", "/fifo", []int{404}},
		{"method", "DELETE", []int{405}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, target := "GET", tt.target
			if tt.target == "DELETE" {
				method, target = "DELETE", "/a.txt"
			}
			h := attack(t, w.Addr(), method+" "+target+" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false)
			t.Logf("%s %s: %v", method, target, h)
			found := false
			for _, s := range tt.want {
				found = found || h.first() == s
			}
			if !found {
				t.Errorf("%s %s: %v; want %v", method, target, h, tt.want)
			}
			for _, b := range h.bodies {
				for _, leak := range leaks {
					if strings.Contains(b, leak) {
						t.Errorf("%s %s: the attacker read %q", method, target, b)
					}
				}
				if strings.Contains(b, "b.txt") || strings.Contains(b, s.root) {
					t.Errorf("%s %s: the answer names files or the root: %q", method, target, b)
				}
			}
		})
	}
}

// A link that an attacker with write access to a directory under the root
// (an upload directory) flips between a file inside and one outside while
// requests run: with os.Root the open resolves the link under the root
// each time, so no request is answered from outside, however the race
// falls. Likewise for a directory link in the middle of the path.
func TestAttackStaticSymlinkRace(t *testing.T) {
	s := makeSite(t)
	inner := filepath.Join(s.root, "inner")
	if err := os.Mkdir(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(inner, "secret.txt"), []byte("inner file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startStaticWebtier(t, s)

	const requests = 300 // bounded: a race window is hit often in far fewer
	stop := make(chan struct{})
	var wg sync.WaitGroup
	flip := func(link string, targets ...string) {
		defer wg.Done()
		tmp := link + ".tmp"
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			os.Remove(tmp)
			if err := os.Symlink(targets[i%len(targets)], tmp); err != nil {
				t.Error(err)
				return
			}
			if err := os.Rename(tmp, link); err != nil { // atomic replace
				t.Error(err)
				return
			}
		}
	}
	wg.Add(2)
	go flip(filepath.Join(s.root, "race.txt"), "a.txt", "../outside/secret.txt")
	go flip(filepath.Join(s.root, "racedir"), "inner", "../outside")
	defer func() { close(stop); wg.Wait() }()

	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	statuses := map[string]map[int]int{"/race.txt": {}, "/racedir/secret.txt": {}}
	for i := range requests {
		path := "/race.txt"
		if i%2 == 1 {
			path = "/racedir/secret.txt"
		}
		resp, body := sendOn(t, c, br, "GET "+path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		statuses[path][resp.StatusCode]++
		for _, leak := range leaks {
			if strings.Contains(body, leak) {
				t.Fatalf("request %d, %s: the attacker read %q through the swapped link", i, path, body)
			}
		}
	}
	t.Logf("statuses by path: %v", statuses)
	if statuses["/race.txt"][200] == 0 {
		t.Errorf("no request got the file inside the root: the race did not run as meant (%v)", statuses)
	}
}

// The own HTTP/1 server sends file bodies with sendfile(2), past its
// buffered writer: on one connection, pipelined answers for a file, a
// small one, a HEAD and a range must still follow each other byte for
// byte, with nothing of one body in the next answer.
func TestAttackStaticSendfileFraming(t *testing.T) {
	s := makeSite(t)
	w := startStaticWebtier(t, s)
	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(attackRead))
	reqs := "GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n" +
		"HEAD /big.bin HTTP/1.1\r\nHost: a\r\n\r\n" +
		"GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=524288-524295\r\n\r\n" +
		"GET /big.bin HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
	go io.WriteString(c, reqs) //nolint:errcheck // what came back is what counts
	br := bufio.NewReader(c)
	want := []struct {
		method string
		status int
		body   []byte
	}{
		{"GET", 200, s.big}, {"GET", 200, []byte("hello\n")}, {"HEAD", 200, nil},
		{"GET", 206, s.big[524288:524296]}, {"GET", 200, s.big},
	}
	for i, wt := range want {
		resp, err := http.ReadResponse(br, &http.Request{Method: wt.method})
		if err != nil {
			t.Fatalf("answer %d: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != wt.status || !bytes.Equal(body, wt.body) {
			t.Fatalf("answer %d: %d, %d bytes (%v); want %d with %d bytes", i, resp.StatusCode, len(body), err, wt.status, len(wt.body))
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the last answer: %v; want the connection closed", err)
	}
}

// A file cut short while it is being sent (a deploy rewriting it in
// place): the client must see the body end early and the connection
// close, not a hang and not another answer's bytes.
func TestAttackStaticFileShrinks(t *testing.T) {
	s := makeSite(t)
	grow := filepath.Join(s.root, "grow.bin")
	f, err := os.Create(grow)
	if err != nil {
		t.Fatal(err)
	}
	const size = 256 << 20 // sparse: no disk, more than the socket buffers hold
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	w := startStaticWebtier(t, s)
	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(attackRead))
	io.WriteString(c, "GET /grow.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /a.txt HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != size {
		t.Fatalf("Content-Length %d; want %d", resp.ContentLength, size)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(grow, 2<<20); err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n+(1<<20) >= size {
		t.Fatalf("read %d more bytes, %v; want the body cut short", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection hung after the file shrank: %v", err)
	}
	t.Logf("body ended after %d bytes: %v", n+(1<<20), err)
	if resp2, err := http.ReadResponse(br, nil); err == nil {
		t.Errorf("a second answer (%d) came on the connection after a short body", resp2.StatusCode)
	}
}

// A client that asks for a big file and never reads: the sendfile path
// keeps write_timeout as Write does, so webtier ends the connection and
// closes the file instead of waiting on the socket for ever.
func TestAttackStaticNeverReadingClient(t *testing.T) {
	s := makeSite(t)
	big := filepath.Join(s.root, "huge.bin")
	const size = 256 << 20 // sparse
	if err := os.WriteFile(big, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(big, size); err != nil {
		t.Fatal(err)
	}
	w := startStaticWebtier(t, s, "    write_timeout: 1s\n")
	c, err := net.Dial("tcp", w.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetReadBuffer(4096)
	if _, err := io.WriteString(c, "GET /huge.bin HTTP/1.1\r\nHost: a\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// webtier holds the file open while it sends it, and must let it go.
	fdDir := fmt.Sprintf("/proc/%d/fd", w.PID())
	holds := func() bool {
		ents, _ := os.ReadDir(fdDir)
		for _, e := range ents {
			if target, err := os.Readlink(filepath.Join(fdDir, e.Name())); err == nil && target == big {
				return true
			}
		}
		return false
	}
	waitFor := func(want bool) bool {
		deadline := time.Now().Add(resourceWait)
		for time.Now().Before(deadline) {
			if holds() == want {
				return true
			}
			time.Sleep(20 * time.Millisecond) // polling /proc: there is no event to wait on
		}
		return false
	}
	if !waitFor(true) {
		t.Fatal("webtier never opened the file")
	}
	if !waitFor(false) {
		t.Fatalf("webtier still holds the file %v after the client stopped reading; want it closed by write_timeout", resourceWait)
	}
	_ = c.SetReadDeadline(time.Now().Add(resourceWait))
	n, err := io.Copy(io.Discard, bufio.NewReader(c))
	if n >= size || (err != nil && !isClosed(err)) {
		t.Errorf("the never-reading client then read %d bytes (%v); want less than the file and the connection closed", n, err)
	}
}
