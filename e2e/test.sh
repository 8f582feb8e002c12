#!/usr/bin/env bash
# Runs every test of webtier: the README's "run all tests" command, and what
# CI runs (.ci/run execs it). Installs the real peers the end-to-end tests
# need when they are missing, then runs go vet and go test -race. Extra
# arguments are passed to go test, e.g. e2e/test.sh -run TestBIND -v
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

section() { printf '\n==== %s ====\n' "$*"; }

# Debian packages of the peers the e2e tests run (tomcat10 pulls in its JRE,
# default-jre-headless, as a dependency). systemd: systemd-analyze verify
# checks deploy/systemd/webtier.service; haproxy: the L4 in front of the
# drain test; chromium: the admin status page's browser test; pebble: the
# ACME server (with pebble-challtestsrv) of the certificate tests; apache2:
# the httpd that import-httpd's differential test compares webtier with;
# libapache2-mod-jk: its mod_jk (JkWorkersFile, JkMount) in the same test.
PEER_PACKAGES=(bind9 bind9-dnsutils nftables iproute2 tomcat10 systemd haproxy chromium pebble apache2 libapache2-mod-jk)

section "peers: ${PEER_PACKAGES[*]}"
missing=()
for pkg in "${PEER_PACKAGES[@]}"; do
	if ! dpkg -s "$pkg" >/dev/null 2>&1; then
		missing+=("$pkg")
	fi
done
if ((${#missing[@]} == 0)); then
	echo "all installed"
else
	echo "missing: ${missing[*]}"
	if ((EUID != 0)); then
		echo "error: installing them needs root; run as root or install them yourself:" >&2
		echo "  sudo apt-get install --no-install-recommends ${missing[*]}" >&2
		exit 1
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Missing peers now fail tests instead of skipping them.
export WEBTIER_E2E_REQUIRE=1
# ... and TestSoak runs, for 3 minutes unless WT_SOAK says otherwise; its
# CSV and PNG of the curves go to WT_ARTIFACTS.
export WT_ARTIFACTS=${WT_ARTIFACTS:-$PWD/.cache/artifacts}

section "go version"
go version

section "go vet ./..."
go vet ./...

# CI has no container engine: it runs the Dockerfile's build command itself,
# and checks that the result is static and loads the image's config.
section "build the image's binary: deploy/build.sh (the Dockerfile's RUN)"
sh deploy/build.sh .cache/bin/webtier-image
go version -m .cache/bin/webtier-image | grep -q 'CGO_ENABLED=0' ||
	{ echo "error: .cache/bin/webtier-image is not static (CGO_ENABLED=0)" >&2; exit 1; }
.cache/bin/webtier-image version
.cache/bin/webtier-image validate -config deploy/webtier.yaml

# h2spec checks proxy/frontend/h2 against RFC 9113 and RFC 7541 (TestH2Spec, skipped
# without WT_H2SPEC). The module does not depend on it: it is built once into
# .cache/bin, through the Go module proxy, at the versions pinned in
# e2e/tools/h2spec/go.mod.
section "h2spec"
if [[ ! -x .cache/bin/h2spec ]]; then
	(cd e2e/tools/h2spec && go build -o "$OLDPWD/.cache/bin/h2spec" github.com/summerwind/h2spec/cmd/h2spec)
fi
export WT_H2SPEC=$PWD/.cache/bin/h2spec
echo "WT_H2SPEC=$WT_H2SPEC"

section "go test -race -timeout 25m ./... $*"
go test -race -timeout 25m ./... "$@"

# The end-to-end and attack suites again, with every listener and upstream
# on the standard library's engine (WEBTIER_ENGINE=std: net/http's HTTP/1
# and HTTP/2 servers and Transport instead of webtier's own code), so that
# the switch an operator flips on an advisory is known to work. The soak
# (3 minutes) is left to the default engine's run.
section "WEBTIER_ENGINE=std go test -race ./e2e/"
WEBTIER_ENGINE=std WT_SOAK=off go test -race -count=1 -timeout 25m ./e2e/ "$@"

section "fuzz the AJP codec briefly (corpus in proxy/upstream/ajp/testdata/fuzz)"
# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" when a -fuzztime duration expires while a worker
# is mid-call (go.dev/issue/75804, fixed in Go 1.27). A count has no deadline.
# -fuzzminimizetime bounds the minimisation of each new input (60 s by
# default), so that a run that finds much new coverage stays short.
go test -run '^$' -fuzz '^FuzzReadResponse$' -fuzztime 100000x -fuzzminimizetime 200x ./proxy/upstream/ajp/
go test -run '^$' -fuzz '^FuzzForwardRequest$' -fuzztime 100000x -fuzzminimizetime 200x ./proxy/upstream/ajp/

section "fuzz the HTTP/1 head parsers, the head classifier, the response writer's fields and field names briefly"
go test -run '^$' -fuzz '^FuzzParseHead$' -fuzztime 100000x -fuzzminimizetime 200x ./proxy/upstream/h1/
go test -run '^$' -fuzz '^FuzzParseRequest$' -fuzztime 50000x -fuzzminimizetime 200x ./proxy/frontend/
go test -run '^$' -fuzz '^FuzzClassifyHead$' -fuzztime 50000x -fuzzminimizetime 200x ./proxy/frontend/
go test -run '^$' -fuzz '^FuzzWriterFields$' -fuzztime 50000x -fuzzminimizetime 200x ./proxy/frontend/
go test -run '^$' -fuzz '^FuzzFrameProxy$' -fuzztime 20000x -fuzzminimizetime 200x ./proxy/frontend/
go test -run '^$' -fuzz '^FuzzCanonical$' -fuzztime 100000x -fuzzminimizetime 200x ./proxy/internal/httplex/

section "fuzz the config loader briefly (seeds: config/testdata/*.txt)"
go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 20000x -fuzzminimizetime 200x ./config/

section "fuzz the route rewrite rules briefly (remapping, ProxyPassReverse, redirect Locations)"
go test -run '^$' -fuzz '^FuzzRules$' -fuzztime 50000x -fuzzminimizetime 200x ./proxy/rules/rewrite/

section "fuzz the HTTP/2 server's frame handling briefly (corpus in proxy/frontend/h2/testdata/fuzz)"
# Frame sequences against a live server over net.Pipe: no panic, an answer
# or the end of the connection, header lists within the limits, no stream
# or handler left once the connection ends.
go test -run '^$' -fuzz '^FuzzServerFrames$' -fuzztime 20000x -fuzzminimizetime 200x ./proxy/frontend/h2/

section "benchmarks compile and run once"
go test -run '^$' -bench . -benchtime 1x ./resolver/ ./proxy/...

section "all tests passed"
