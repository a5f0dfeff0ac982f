#!/usr/bin/env bash
# Builds tools/dubbo3, a real Dubbo 3 provider and consumer on dubbo-go v3
# (dubbo.apache.org/dubbo-go/v3, tools/dubbo3/go.mod: its own module, so that dubbo-go's
# gRPC and x/net versions stay out of dubbo-istiod's module).
#
# The binary is cached outside the work tree, keyed by the module files, the sources, this
# script and the Go version, so a fresh clone or `make clean` on the same machine does not
# rebuild it:
#   ${DUBBO3_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dubbo-istiod/dubbo3}/<key>/dubbo3
# and linked into out/dubbo3/bin/dubbo3. Prints the path of the link.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
cache=${DUBBO3_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dubbo-istiod/dubbo3}
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0

key=$( (cat go.mod go.sum build.sh; for f in $(ls ./*.go | sort); do echo "$f"; cat "$f"; done; go version) | sha256sum | cut -c1-16)
dir=$cache/$key
if [ ! -x "$dir/dubbo3" ]; then
  mkdir -p "$dir.tmp"
  start=$(date +%s)
  echo "tools/dubbo3/build.sh: building dubbo3 (dubbo-go $(sed -n 's/^require dubbo.apache.org\/dubbo-go\/v3 \(v[^ ]*\).*/\1/p' go.mod); cold: ~1.5 min download + ~5 min build on 2 cores, warm ~8 s)" >&2
  go mod download
  go build -trimpath -ldflags "-s -w" -o "$dir.tmp/dubbo3" .
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "tools/dubbo3/build.sh: built in $(( $(date +%s) - start ))s into $dir" >&2
fi
touch "$dir"
# Builds of other versions unused for two weeks go (~50 MB each).
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +14 -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$root/out/dubbo3/bin"
ln -sfn "$dir/dubbo3" "$root/out/dubbo3/bin/dubbo3"
echo "$root/out/dubbo3/bin/dubbo3"
