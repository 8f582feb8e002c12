#!/bin/sh
# Builds the webtier binary that ships: static (CGO_ENABLED=0, so it runs on
# a distroless or scratch image and on any Linux), with no local paths in it
# (-trimpath), stripped, and with its version stamped in (webtier version).
# The Dockerfile builds with this script and CI (e2e/test.sh) runs it too,
# so a green CI means the image's build command works.
#
# usage: deploy/build.sh OUTPUT
#   VERSION=v1.2.3 deploy/build.sh OUTPUT   stamp this version
# Without VERSION, `git describe` names the version when there is a git
# checkout; else webtier reports its module version or "devel".
set -eu
out=${1:?usage: deploy/build.sh OUTPUT}
cd "$(dirname "$0")/.."
version=${VERSION:-}
if [ -z "$version" ] && command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
	version=$(git describe --tags --always --dirty 2>/dev/null || true)
fi
case $out in
/*) ;;
*) out=$OLDPWD/$out ;;
esac
CGO_ENABLED=0 exec go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/webtier
