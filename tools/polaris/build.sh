#!/usr/bin/env bash
# Builds Polaris (github.com/polarismesh/polaris), whose Nacos-protocol API server is the
# Nacos server of the tests (tests/framework/nacos): no Nacos server can be installed on
# these machines (no Java/Maven), and Polaris is a Go module served by the Go module proxy.
#
# Polaris builds as its own main module from its own go.mod/go.sum (GOWORK=off), so none of
# its dependencies reach dubbo-istiod's go.mod. `go install module@version` is refused here
# (its deprecation look-up fails), so the module is downloaded, copied out of the read-only
# module cache, patched (patches/*.patch, each says why) and built.
#
# The binary is cached outside the work tree, keyed by the version, the patches, the config
# template, this script and the Go version:
#   ${DUBBO_POLARIS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dubbo-istiod/polaris}/<key>/polaris-server
# and linked, with its config template polaris-server.yaml, into out/polaris/bin. Prints the
# path of the binary's link.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
cache=${DUBBO_POLARIS_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dubbo-istiod/polaris}
version=v1.18.1
module=github.com/polarismesh/polaris
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

key=$( (echo "$module@$version"; for f in $(ls patches/*.patch | sort) polaris-server.yaml build.sh; do echo "$f"; cat "$f"; done; go version) | sha256sum | cut -c1-16)
dir=$cache/$key
if [ ! -x "$dir/polaris-server" ] || [ ! -f "$dir/polaris-server.yaml" ]; then
  start=$(date +%s)
  echo "tools/polaris/build.sh: building Polaris $version with $(ls patches/*.patch | wc -l) patches (cold: ~2.5 min on 2 cores)" >&2
  src=$(cd "${TMPDIR:-/tmp}" && go mod download -json "$module@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] && [ -f "$src/go.mod" ] || { echo "tools/polaris/build.sh: $module@$version not downloaded" >&2; exit 1; }
  work=$(mktemp -d "${TMPDIR:-/tmp}/polaris-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cp -r "$src" "$work/src"
  chmod -R u+w "$work/src"
  # git apply, not patch(1): git is installed by .ci/run, patch is not on a clean Debian.
  # The copy is outside any git work tree, so paths are taken relative to it.
  for p in $(ls "$PWD"/patches/*.patch | sort); do
    (cd "$work/src" && git apply -p1 "$p") || { echo "tools/polaris/build.sh: $p does not apply" >&2; exit 1; }
  done
  mkdir -p "$dir.tmp"
  (cd "$work/src" && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/polaris-server" .)
  cp polaris-server.yaml "$dir.tmp/polaris-server.yaml"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "tools/polaris/build.sh: built in $(( $(date +%s) - start ))s into $dir" >&2
fi
touch "$dir"
# Builds of other versions unused for two weeks go (~40 MB each).
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +14 -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$root/out/polaris/bin"
ln -sfn "$dir/polaris-server" "$root/out/polaris/bin/polaris-server"
ln -sfn "$dir/polaris-server.yaml" "$root/out/polaris/bin/polaris-server.yaml"
echo "$root/out/polaris/bin/polaris-server"
