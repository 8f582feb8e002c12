package deploy

import (
	"encoding/json"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

func dockerfile(t *testing.T) []instruction {
	t.Helper()
	src, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(src), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if more, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// The image builds its binary with deploy/build.sh, which e2e/test.sh
// (CI) runs too; it runs as a user without privileges, on a base with no
// shell, ships a config that loads, and its HEALTHCHECK asks that config's
// health endpoint without a shell. An image that stops with SIGTERM
// drains.
func TestDockerfile(t *testing.T) {
	inst := dockerfile(t)
	const image = "webtier.yaml"
	_, port := loadConfig(t, image, image)
	health := drainSettings(t, image)

	ci, err := os.ReadFile("../e2e/test.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^[^#]*deploy/build\.sh`).Match(ci) {
		t.Errorf("e2e/test.sh does not run deploy/build.sh: CI would not prove the image's build command")
	}

	// The last stage is the image.
	last := 0
	for i, in := range inst {
		if in.cmd == "FROM" {
			last = i
		}
	}
	final := inst[last:]
	built := slices.ContainsFunc(inst[:last], func(in instruction) bool {
		return in.cmd == "RUN" && strings.Contains(in.args, "deploy/build.sh")
	})
	if !built {
		t.Errorf("Dockerfile: no RUN of deploy/build.sh before the last FROM")
	}
	if base := final[0].args; !strings.Contains(base, "distroless/static") && base != "scratch" {
		t.Errorf("Dockerfile:%d: image based on %q; want distroless/static (or scratch)", final[0].line, base)
	}
	find := func(cmd string) (instruction, bool) {
		i := slices.IndexFunc(final, func(in instruction) bool { return in.cmd == cmd })
		if i < 0 {
			t.Errorf("Dockerfile: no %s in the final stage", cmd)
			return instruction{}, false
		}
		return final[i], true
	}
	if in, ok := find("USER"); ok {
		uid, _, _ := strings.Cut(in.args, ":")
		if n, err := strconv.Atoi(uid); err != nil || n == 0 {
			t.Errorf("Dockerfile:%d: USER %s; want a numeric user other than 0 (runAsNonRoot checks a number)", in.line, in.args)
		}
	}
	if in, ok := find("EXPOSE"); ok && !slices.Contains(strings.Fields(in.args), strconv.Itoa(port)) {
		t.Errorf("Dockerfile:%d: EXPOSE %s; the image's config listens on %d", in.line, in.args, port)
	}
	if in, ok := find("STOPSIGNAL"); ok && in.args != "SIGTERM" {
		t.Errorf("Dockerfile:%d: STOPSIGNAL %s; want SIGTERM, which drains", in.line, in.args)
	}
	if in, ok := find("COPY"); ok && in.args != "--from=build /out/webtier /usr/local/bin/webtier" {
		t.Errorf("Dockerfile:%d: COPY %s; want the binary deploy/build.sh made", in.line, in.args)
	}
	if !slices.ContainsFunc(final, func(in instruction) bool {
		return in.cmd == "COPY" && in.args == "deploy/webtier.yaml /etc/webtier/webtier.yaml"
	}) {
		t.Errorf("Dockerfile: deploy/webtier.yaml is not copied to /etc/webtier/webtier.yaml")
	}
	if in, ok := find("CMD"); ok && in.args != `["-config", "/etc/webtier/webtier.yaml"]` {
		t.Errorf("Dockerfile:%d: CMD %s; want the image's config", in.line, in.args)
	}

	// HEALTHCHECK [options] CMD ["/usr/local/bin/webtier", "health", "-url", URL, ...]
	in, ok := find("HEALTHCHECK")
	if !ok {
		return
	}
	_, exec, found := strings.Cut(in.args, "CMD ")
	var argv []string
	if !found || json.Unmarshal([]byte(exec), &argv) != nil {
		t.Fatalf("Dockerfile:%d: HEALTHCHECK %s; want CMD in exec form, a JSON array (the image has no shell)", in.line, in.args)
	}
	i := slices.Index(argv, "-url")
	if len(argv) < 2 || argv[0] != "/usr/local/bin/webtier" || argv[1] != "health" || i < 0 || i+1 >= len(argv) {
		t.Fatalf("Dockerfile:%d: HEALTHCHECK runs %q; want /usr/local/bin/webtier health -url URL", in.line, argv)
	}
	u, err := url.Parse(argv[i+1])
	if err != nil {
		t.Fatalf("Dockerfile:%d: -url: %v", in.line, err)
	}
	if host := u.Hostname(); net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("Dockerfile:%d: HEALTHCHECK asks %s; want a loopback address (the check runs in the container)", in.line, u)
	}
	if u.Port() != strconv.Itoa(port) || u.Path != health.HealthPath {
		t.Errorf("Dockerfile:%d: HEALTHCHECK asks %s; the image's config answers %s on port %d", in.line, u, health.HealthPath, port)
	}
}
