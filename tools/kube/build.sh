#!/usr/bin/env bash
# Builds the real Kubernetes control plane the e2e harness runs on loopback:
# kube-apiserver (k8s.io/kubernetes, tools/kube/apiserver/go.mod) and etcd
# (go.etcd.io/etcd/server/v3, tools/kube/etcd/go.mod), both from the Go module proxy.
#
# The binaries are cached outside the work tree, keyed by the module files and build
# flags, so a fresh clone or `make clean` on the same machine does not rebuild them:
#   ${DUBBO_KUBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dubbo-istiod/kube}/<key>/{kube-apiserver,etcd}
# and linked into out/kube/bin. Prints the directory holding the binaries.
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
cache=${DUBBO_KUBE_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/dubbo-istiod/kube}
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0

k8s_version=$(sed -n 's/^\tk8s.io\/kubernetes \(v[^ ]*\).*/\1/p' apiserver/go.mod)
etcd_version=$(sed -n 's/^\tgo.etcd.io\/etcd\/server\/v3 \(v[^ ]*\).*/\1/p' etcd/go.mod)
[ -n "$k8s_version" ] && [ -n "$etcd_version" ] || { echo "tools/kube/build.sh: versions not found in go.mod" >&2; exit 1; }

# As Kubernetes' hack/lib/version.sh: without these the server reports v0.0.0-master and
# clients' version checks (Istio's among them) misbehave.
major=${k8s_version#v}; minor=${major#*.}; major=${major%%.*}; minor=${minor%%.*}
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

key=$( (cat apiserver/go.mod apiserver/go.sum etcd/go.mod etcd/go.sum build.sh; go version) | sha256sum | cut -c1-16)
dir=$cache/$key
if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/etcd" ]; then
  mkdir -p "$dir.tmp"
  start=$(date +%s)
  echo "tools/kube/build.sh: building kube-apiserver $k8s_version and etcd $etcd_version (cold: ~5 min on 2 cores)" >&2
  (cd etcd && go build -trimpath -ldflags "-s -w" -o "$dir.tmp/etcd" go.etcd.io/etcd/server/v3)
  (cd apiserver && go build -trimpath -ldflags "$k8s_ldflags" -o "$dir.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver)
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  echo "tools/kube/build.sh: built in $(( $(date +%s) - start ))s into $dir" >&2
fi
touch "$dir"
# Builds of other module versions unused for two weeks go (~150 MB each).
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name "$key" -mtime +14 -exec rm -rf {} + 2>/dev/null || true
mkdir -p "$root/out/kube/bin"
ln -sfn "$dir/kube-apiserver" "$root/out/kube/bin/kube-apiserver"
ln -sfn "$dir/etcd" "$root/out/kube/bin/etcd"
echo "$root/out/kube/bin"
